"""What ``queue:work`` prints: a line when each job starts and when it ends, Laravel-style, or JSON.

``2026-12-01 17:05:01 app.jobs:send_email 1a2b3c4d ............ RUNNING`` then
``2026-12-01 17:05:01 app.jobs:send_email 1a2b3c4d ...... 12.31ms DONE`` (or ``FAIL`` and the error's
first line); ``--format=json`` writes one object per line instead, for log shippers; ``-q`` nothing.
The lines are written to stdout directly, not through ``logging``.

The worker's own log records (a job that gave up, a message set aside) get a handler of their own with a
formatter that reads the clock when a record is written: fastapi-startkit's LogProvider replaces the
root logger's handlers with ones whose format has a timestamp and a level baked in when they were made,
so through the root logger an ERROR came out as "INFO" with the time of an earlier line. When the app
has a framework logger, records are also handed to it (``Logger.log``), which writes them to
``storage/logs`` with their own level and the current time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from datetime import datetime
from typing import Any, TextIO

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError

from queue_manager.running.interactions import JobReleased
from queue_manager.text import error_line, printable

FORMATS = ("text", "json", "quiet")
COLOURS = {"RUNNING": "33", "DONE": "32", "FAIL": "31", "RELEASED": "36"}  # yellow, green, red, cyan (ANSI)
LINE_WIDTH = 100  # when stdout is not a terminal
MAX_PENDING_ERRORS = 10_000
RELEASED = "\0released "  # marks a release among the errors the lines keep


def short_id(task_id: str) -> str:
    return task_id.replace("-", "")[:8]


class JobLines(TaskiqMiddleware):
    """One line when a job starts, one when it ends (DONE or FAIL, with its duration)."""

    def __init__(self, format: str = "text", stream: TextIO | None = None, default_queue: str | None = None) -> None:
        super().__init__()
        self.format = format
        self.default_queue = default_queue  # the queue of a job that names none
        self.stream = stream or sys.stdout
        self.colour = format == "text" and self.stream.isatty() and "NO_COLOR" not in os.environ
        self.width = shutil.get_terminal_size((LINE_WIDTH, 24)).columns if self.stream.isatty() else LINE_WIDTH
        # What each running job raised, as its line shows it (a retry replaces the result's error), and when it
        # ended. Keyed by the message object, the same in on_error and post_execute; a string, no traceback.
        self._errors: dict[int, tuple[str, float]] = {}
        self._started: dict[int, float] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self._started[id(message)] = time.perf_counter()
        self._write(message, "RUNNING", None, None)
        return message

    def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        """The first on_error hook to run (TaskIQ runs them in reverse, and this middleware is added last): the
        job's end, before the retry middleware writes a failed job's record or runs its on_failure hook."""
        if len(self._errors) > MAX_PENDING_ERRORS:  # post_execute never ran for some (a middleware raised)
            self._errors.clear()
            self._started.clear()
        line = (
            RELEASED + str(exception) if isinstance(exception, JobReleased) else error_line(exception, message.labels)
        )
        self._errors[id(message)] = (line, time.perf_counter())

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        started = self._started.pop(id(message), None)
        raised, ended = self._errors.pop(id(message), (None, time.perf_counter()))
        seconds = ended - started if started is not None else result.execution_time
        if isinstance(result.error, NoResultError) and raised is not None and raised.startswith(RELEASED):
            self._write(message, "RELEASED", seconds, raised.removeprefix(RELEASED))
            return
        if not result.is_err:
            self._write(message, "DONE", seconds, None)
            return
        # The retry middleware turns a failed attempt's error into NoResultError (nothing is stored: the
        # handle waits for the retry), so the line shows what the job raised, and that it will run again.
        error = error_line(result.error, message.labels)
        retrying = raised is not None and raised != error and isinstance(result.error, NoResultError)
        self._write(message, "FAIL", seconds, raised if raised is not None else error, retrying)

    def _write(
        self,
        message: TaskiqMessage,
        status: str,
        seconds: float | None,
        error: str | None,
        retrying: bool = False,
    ) -> None:
        if self.format == "quiet":
            return
        now = datetime.now().astimezone()
        if self.format == "json":
            record: dict[str, Any] = {
                "time": now.isoformat(timespec="milliseconds"),
                "status": status.lower(),
                "task": message.task_name,
                "job_id": message.task_id,
                "queue": message.labels.get("queue_name") or self.default_queue,
                "attempt": int(message.labels.get("attempt", 0) or 0) + 1,
            }
            if seconds is not None:
                record["duration_ms"] = round(seconds * 1000, 2)
            if error is not None:
                record["error"] = error
            if retrying:
                record["retrying"] = True
            line = json.dumps(record, default=str)
        else:
            left = f"  {now:%Y-%m-%d %H:%M:%S} {printable(message.task_name)} {short_id(printable(message.task_id))} "
            right = (f"{seconds * 1000:.2f}ms " if seconds is not None else "") + status
            dots = "." * max(3, self.width - len(left) - len(right) - 2)
            if self.colour:
                right = right.replace(status, f"\033[{COLOURS[status]}m{status}\033[0m")
            line = f"{left}{dots} {right}"
            if error is not None:
                line += f"\n      {error}" + (" (will be retried)" if retrying else "")
        self.stream.write(line + "\n")
        self.stream.flush()


class PrintableFormatter(logging.Formatter):
    """A log line (and its traceback) with the control characters a job put into its error escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


class QuietReleases(logging.Filter):
    """A job that released itself leaves its code with ``JobReleased``: not an error, so TaskIQ's "Exception found
    while executing function" traceback for it is dropped in every process (the memory driver's too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info is not None and isinstance(record.exc_info[1], JobReleased))


class WorkerTracebacks(logging.Filter):
    """TaskIQ logs every failed attempt at ERROR with its traceback; our job line already says it failed, and the
    give-up record carries the traceback once (a retried attempt's, with ``-vvv``): drop TaskIQ's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith("Exception found while executing function"))


class FrameworkLogger(logging.Handler):
    """Hand records to fastapi-startkit's logger (LogProvider's channels: storage/logs, the terminal): its
    drivers stamp each line with its level and the current time when they write it."""

    def __init__(self, logger: Any) -> None:
        super().__init__()
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            method = getattr(self.logger, record.levelname.lower(), self.logger.error)
            method(self.format(record))
        except Exception:
            self.handleError(record)


def configure_worker_logging(app: Any, log_format: str, level: int | str = logging.INFO) -> None:
    """Our records go through a handler of ours, not the root logger's: to the app's framework logger if it
    registers LogProvider, else to stderr, timed when written."""
    ours = logging.getLogger("queue_manager")
    if any(getattr(handler, "queue_worker", False) for handler in ours.handlers):
        return
    handler: Any
    if app is not None and app.has("logger"):
        handler = FrameworkLogger(app.make("logger"))
        handler.setFormatter(PrintableFormatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PrintableFormatter(log_format))
    logging.getLogger("taskiq.receiver.receiver").addFilter(WorkerTracebacks())
    handler.queue_worker = True
    ours.addHandler(handler)
    ours.setLevel(level)
    ours.propagate = False
