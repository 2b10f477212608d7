"""The worker's side: ``queue:work`` counts each job in memory and writes what it saw every ``flush_every`` seconds,
in one round trip (``ControlState.write``), never per job: its metrics of the minutes that changed (a field per
worker, rewritten whole, so a lost write is made good by the next), the completed and failed jobs since the last
write (at most as many as are kept: the newest), and its heartbeat. A write that fails (the server is away) logs
one warning; the jobs keep running and the next write carries what was missed, within those caps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError

from drivers.base.control import ControlState, Entry, Pushed
from drivers.base.labels import ATTEMPT, ETA, QUEUE, QUEUED_AT, TAGS
from queue_manager.insight import histogram
from queue_manager.insight.histogram import BOUNDS_MS
from queue_manager.insight.names import (
    METRICS_TTL,
    failed_list,
    metrics_map,
    monitored_map,
    recent_list,
    tag_list,
    workers_map,
)
from queue_manager.insight.records import kept_arguments, named_arguments
from queue_manager.insight.state import InsightUnavailable
from queue_manager.insight.tags import split
from queue_manager.running.interactions import JobReleased
from queue_manager.settings.insight import InsightSettings
from queue_manager.text import error_line

logger = logging.getLogger("queue_manager.worker")

MAX_RUNNING_SHOWN = 20  # jobs running now, in a heartbeat
LOOK_FOR_TAGS_EVERY = 60.0  # seconds between two reads of the tags monitored at run time
Jobs = deque[tuple[Any, ...]]  # jobs that ended: (message, queue, runtime ms, wait ms, finished, error)


def _merged(older: Jobs, newer: Jobs) -> Jobs:
    """Both, oldest first, keeping the newest within the cap."""
    merged: Jobs = deque(older, maxlen=older.maxlen)
    merged.extend(newer)
    return merged


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class InsightRecorder(TaskiqMiddleware):
    """Metrics, recent/failed jobs and the heartbeat of one ``queue:work`` process."""

    def __init__(
        self,
        settings: InsightSettings,
        connection: str,
        queues: list[str],
        default_queue: str,
        state: Callable[[], ControlState],
    ) -> None:
        super().__init__()
        self.settings, self.connection, self.default_queue = settings, connection, default_queue
        self.queues = queues or [default_queue]
        self._state = state
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.done = 0
        self.failed = 0
        self.cells: dict[int, dict[tuple[str, str], list[Any]]] = {}  # minute -> (queue, task) -> its counts
        self.dirty: set[int] = set()
        # What ran since the last write: raw, serialised only when written (and only the newest that are kept).
        self.completed: deque[tuple[Any, ...]] = deque(maxlen=settings.recent_jobs)
        self.failures: deque[tuple[Any, ...]] = deque(maxlen=settings.failed_jobs)
        self.tagged: dict[str, deque[tuple[Any, ...]]] = {
            tag: deque(maxlen=settings.monitored_jobs) for tag in settings.monitored_tags
        }
        self.running: dict[int, tuple[TaskiqMessage, float, float]] = {}  # id -> (message, wall time, perf clock)
        self._errors: dict[int, tuple[BaseException, float]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._failing = False
        self._off = False
        self._metrics, self._recent = settings.metrics, settings.recent  # read once: the hooks run for every job

    # -- hooks ----------------------------------------------------------------------------------------------
    async def startup(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._every())

    # The hooks run for every job: they only note times and add to counts (about 2 us a job, see Performance).
    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self.running[id(message)] = (message, time.time(), perf_counter())
        return message

    def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        if id(message) not in self._errors:  # the first hook to see it: the job's own error, when it ended
            self._errors[id(message)] = (exception, perf_counter())

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        started = self.running.pop(id(message), None)
        if started is None:
            return
        raised: BaseException | None = None
        if self._errors:
            raised, ended = self._errors.pop(id(message), None) or (None, perf_counter())
            if raised is not None and isinstance(raised, JobReleased):
                return  # released: it runs again, and is counted then
        else:
            ended = perf_counter()
        _message, wall, clock = started
        runtime = (ended - clock) * 1000
        job_labels = message.labels
        queued = job_labels.get(QUEUED_AT)
        wait = None
        if queued is not None:  # from the send, or from when a delayed (or retried) job was due
            since = queued if type(queued) is float else _number(queued) or wall  # a float, as sent
            eta = job_labels.get(ETA)
            if eta is not None:
                since = max(since, _number(eta) or 0.0)
            wait = (wall - since) * 1000 if wall > since else 0.0
        failed = result.is_err
        queue = job_labels.get(QUEUE) or self.default_queue
        self.done += 1
        if failed:
            self.failed += 1
        if self._metrics:
            self._count(int(wall // 60), (queue, message.task_name), runtime, wait, failed)
        if not self._recent or (failed and isinstance(result.error, NoResultError)):
            return  # a failed attempt that will be retried is listed once its job ends
        error = error_line(raised or result.error, job_labels) if failed else None
        entry = (message, queue, runtime, wait, wall + runtime / 1000, error)
        (self.failures if failed else self.completed).append(entry)
        if self.tagged:
            tags = job_labels.get(TAGS)
            if tags:
                for tag in split(tags):
                    if tag in self.tagged:
                        self.tagged[tag].append(entry)

    def _count(self, minute: int, key: tuple[str, str], runtime: float, wait: float | None, failed: bool) -> None:
        """A cell is [jobs, failed, runtime histogram, longest runtime, wait histogram, longest wait]."""
        cells = self.cells.get(minute)
        if cells is None:
            cells = self.cells[minute] = {}
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = [0, 0, histogram.empty(), 0.0, histogram.empty(), 0.0]
        cell[0] += 1
        cell[2][bisect_left(BOUNDS_MS, runtime)] += 1
        if runtime > cell[3]:
            cell[3] = runtime
        if failed:
            cell[1] += 1
        if wait is not None:
            cell[4][bisect_left(BOUNDS_MS, wait)] += 1
            if wait > cell[5]:
                cell[5] = wait
        self.dirty.add(minute)

    # -- writing ----------------------------------------------------------------------------------------------
    async def _every(self) -> None:
        next_look = 0.0
        while True:
            await asyncio.sleep(self.settings.flush_every)
            try:
                if self.settings.recent and time.monotonic() >= next_look:
                    next_look = time.monotonic() + LOOK_FOR_TAGS_EVERY
                    await self.look_for_monitored_tags()
                await self.flush()
            except Exception:  # never the worker's end: the next flush tries again
                logger.exception("Could not record metrics")

    async def look_for_monitored_tags(self) -> None:
        """The tags monitored at run time (``conn.monitor_tag``), besides the settings': read once a minute."""
        try:
            (fields,) = await self._state().entries([monitored_map(self.connection)])
        except Exception:  # the server is away, or keeps no insight: the flush says so
            return
        wanted = {*self.settings.monitored_tags, *fields}
        for tag in wanted - set(self.tagged):
            self.tagged[tag] = deque(maxlen=self.settings.monitored_jobs)
        for tag in set(self.tagged) - wanted:
            del self.tagged[tag]

    def _record(self, entry: tuple[Any, ...], status: str) -> str:
        message, queue, runtime, wait, finished, error = entry
        task = self.broker.find_task(message.task_name) if self.broker is not None else None
        function = getattr(task, "original_func", None)
        arguments, cut = kept_arguments(
            named_arguments(function, list(message.args), dict(message.kwargs)), self.settings.argument_limit
        )
        record = {
            "id": message.task_id,
            "task": message.task_name,
            "queue": queue,
            "status": status,
            "tags": split(message.labels.get(TAGS)),
            "attempts": int(_number(message.labels.get(ATTEMPT)) or 0) + 1,
            "runtime_ms": round(runtime, 3),
            "wait_ms": round(wait, 3) if wait is not None else None,
            "finished": round(finished, 3),
            "arguments_cut": cut,
            "worker": self.worker_id,
        }
        if error is not None:
            record["error"] = error[:2000]
        text = json.dumps(record, default=str, ensure_ascii=False)
        return f'{text[:-1]}, "arguments": {arguments}}}'  # the arguments' JSON, made once (to measure it)

    def heartbeat(self) -> dict[str, Any]:
        running = [
            {"id": message.task_id, "task": message.task_name, "queue": message.labels.get(QUEUE)
             or self.default_queue, "since": round(wall, 3)}
            for message, wall, _clock in list(self.running.values())[:MAX_RUNNING_SHOWN]
        ]  # fmt: skip
        host, pid, _token = self.worker_id.rsplit(":", 2)
        return {
            "id": self.worker_id,
            "host": host,
            "pid": int(pid),
            "connection": self.connection,
            "queues": self.queues,
            "started": round(self.started_at, 3),
            "seen": round(time.time(), 3),
            "every": self.settings.flush_every,
            "jobs_done": self.done,
            "jobs_failed": self.failed,
            "running": running,
        }

    def _writes(
        self, dirty: set[int], completed: Jobs, failures: Jobs, tagged: dict[str, Jobs]
    ) -> list[Entry | Pushed]:
        writes: list[Entry | Pushed] = []
        for minute in sorted(dirty):
            cells = {
                f"{queue}\t{task}": {"n": n, "f": f, "r": r, "rm": round(rm, 3), "w": w, "wm": round(wm, 3)}
                for (queue, task), (n, f, r, rm, w, wm) in self.cells.get(minute, {}).items()
            }
            cell = json.dumps(cells, separators=(",", ":"))
            writes.append(Entry(metrics_map(self.connection, minute), self.worker_id, cell, METRICS_TTL))
        s = self.settings
        if completed:
            values = tuple(self._record(entry, "completed") for entry in completed)
            writes.append(Pushed(recent_list(self.connection), values, s.recent_jobs, s.recent_ttl))
        if failures:
            values = tuple(self._record(entry, "failed") for entry in failures)
            writes.append(Pushed(failed_list(self.connection), values, s.failed_jobs, s.failed_ttl))
        for tag, entries in tagged.items():
            if entries:
                values = tuple(self._record(entry, "failed" if entry[5] else "completed") for entry in entries)
                writes.append(Pushed(tag_list(self.connection, tag), values, s.monitored_jobs, s.monitored_ttl))
        if s.workers:
            beat = json.dumps(self.heartbeat(), default=str)
            writes.append(Entry(workers_map(self.connection), self.worker_id, beat, int(s.flush_every * 4) + 60))
        return writes

    async def flush(self) -> None:
        """Write what changed since the last write. What was taken out for it is put back if the write fails, so the
        next one carries it (newest first, within the caps); jobs that end meanwhile wait for the next write."""
        if self._off:
            return
        dirty, self.dirty = self.dirty, set()
        completed, self.completed = self.completed, deque(maxlen=self.completed.maxlen)
        failures, self.failures = self.failures, deque(maxlen=self.failures.maxlen)
        tagged = self.tagged
        self.tagged = {tag: deque(maxlen=entries.maxlen) for tag, entries in tagged.items()}
        writes = self._writes(dirty, completed, failures, tagged)
        if not writes:
            return
        try:
            await self._state().write(writes)
        except (NotImplementedError, InsightUnavailable) as error:  # no insight here, nor a connection named for it
            self._off = True
            logger.warning("Not recording metrics, recent jobs or the heartbeat: %s", error)
            return
        except Exception as error:
            self.dirty |= dirty
            self.completed, self.failures = _merged(completed, self.completed), _merged(failures, self.failures)
            self.tagged = {tag: _merged(entries, self.tagged[tag]) for tag, entries in tagged.items()}
            if not self._failing:
                logger.warning(
                    "Could not record metrics, recent jobs or the heartbeat on connection '%s' (%s); jobs keep "
                    "running, and they are written again once it answers.",
                    self.connection,
                    error_line(error),
                )
            self._failing = True
            return
        if self._failing:
            logger.info("Recording metrics on connection '%s' again.", self.connection)
        self._failing = False
        now = int(time.time() // 60)
        for minute in [minute for minute in self.cells if minute < now - 1 and minute not in self.dirty]:
            del self.cells[minute]

    async def shutdown(self) -> None:
        """Write the last of it and leave the workers list (a worker killed instead drops out after two beats)."""
        if self._loop is not None:
            self._loop.cancel()
            self._loop = None
        await self.flush()
        if self.settings.workers and not self._off:
            with contextlib.suppress(Exception):
                await self._state().forget(workers_map(self.connection), [self.worker_id])
