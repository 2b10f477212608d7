"""Laravel's failed-job commands: ``queue:failed``, ``queue:retry``, ``queue:forget``, ``queue:flush``,
``queue:prune-failed``. Each is a thin shell over ``manager.failed`` (the same calls work from Python); what
goes wrong (a bad id, a store that does not answer, jobs that could not be sent) is one line and exit 1."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cleo.formatters.formatter import Formatter
from cleo.helpers import argument, option

from drivers import QueueConfigurationError
from queue_manager.console.base import ManagerCommand
from queue_manager.errors import RetryError
from queue_manager.failed import FailedStoreUnreachableError, RetryIncompleteError
from queue_manager.text import first_line, printable

if TYPE_CHECKING:
    from queue_manager.failed import Retried

SUMMARY_WIDTH = 70  # characters of the error shown in the table
REFUSED = (QueueConfigurationError, RetryError, FailedStoreUnreachableError)


class FailedJobCommand(ManagerCommand):
    """A failed-jobs command: one call on ``manager.failed``."""

    def hours(self, flag: str, default: float | None = None) -> float | None:
        value = self.option(flag)
        if value in (None, ""):
            return default
        try:
            return float(value)
        except ValueError:
            raise QueueConfigurationError(f"--{flag} must be a number of hours, got {value!r}.") from None

    def run_command(self, handle: Callable[[], int]) -> int:
        """``handle()``; a bad argument, a store that does not answer or a job that could not be sent is one line
        on stderr and exit 1, never a traceback."""
        try:
            return handle()
        except REFUSED as error:
            return self.refuse(error)


class QueueFailedCommand(FailedJobCommand):
    name = "queue:failed"
    description = "List the failed jobs (newest first), or show one whole: its payload and traceback."
    arguments = [
        argument("id", "Show this failed job (its id or job id, or a unique first 6+ characters)", optional=True)
    ]
    options = [
        option("connection", None, "Only the failed jobs of this connection", flag=False),
        option("queue", None, "Only the failed jobs of this queue", flag=False),
    ]

    def handle(self) -> int:
        return self.run_command(self.show_job if self.argument("id") else self.list_jobs)

    def show_job(self) -> int:
        """One failed job whole, as Horizon shows it: what it carried (a job class's payload, a task's arguments)
        and where and why it failed."""
        id = self.argument("id")
        job = self.with_manager(lambda manager: manager.failed.find(id))
        if job is None:
            raise QueueConfigurationError(f"No failed job matches {id!r} (see queue:failed).")
        payload = {"args": job.args, "kwargs": job.kwargs} if job.args else job.kwargs
        for label, value in (
            ("ID", job.id),
            ("Task", job.task_name),
            ("Job id", job.task_id),
            ("Connection", job.connection),
            ("Queue", job.queue),
            ("Attempts", str(job.attempts)),
            ("Failed at", job.failed_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
            ("Payload", json.dumps(payload, default=str)),
            ("Error", f"{job.exception}: {job.message}"),
        ):
            self.line(f"<comment>{label:<11}</comment>{shown(value)}")
        if job.traceback:
            self.line("")
            self.line(shown(job.traceback.rstrip()))
        return 0

    def list_jobs(self) -> int:
        connection, queue = self.option("connection"), self.option("queue")
        jobs = self.with_manager(lambda manager: manager.failed.summaries(connection, queue))
        if not jobs and connection:
            # a typo, most likely (a removed connection whose jobs are still stored lists them above)
            self.manager.check_connection_name(connection)
        if not jobs:
            self.line("<info>No failed jobs.</info>")
            return 0
        rows: Any = [
            [
                shown(job.id),
                shown(job.connection),
                shown(job.queue),
                shown(job.task_name),
                job.failed_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                shown(first_line(job.summary, SUMMARY_WIDTH)),
            ]
            for job in jobs
        ]
        table = self.table(rows=rows)
        table.set_headers(["ID", "Connection", "Queue", "Task", "Failed at", "Error"])
        table.render()
        return 0


class QueueRetryCommand(FailedJobCommand):
    name = "queue:retry"
    description = "Send failed jobs back to their connection and queue: ids, 'all', or --queue=NAME."
    arguments = [
        argument(
            "id", "Failed job ids or job ids (or a unique first 6+ characters), or 'all'", optional=True, multiple=True
        )
    ]
    options = [option("queue", None, "Retry every failed job of this queue", flag=False)]

    def handle(self) -> int:
        return self.run_command(self.retry)

    def retry(self) -> int:
        ids: list[str] = list(self.argument("id") or [])
        queue = self.option("queue")
        if not ids and not queue:
            raise QueueConfigurationError("Give failed job ids, 'all', or --queue=NAME (see queue:failed).")
        which: list[str] | str = "all" if "all" in ids or not ids else ids
        try:
            retried = self.with_manager(lambda manager: manager.failed.retry(which, queue=queue))
        except RetryIncompleteError as incomplete:
            self.report(incomplete.retried)
            for job in incomplete.not_retried:
                self.line_error(f"Could not retry {shown(str(job))}. It stays in the failed jobs.", style="error")
            return self.refused_code
        if not retried:
            meanwhile = " (another retry may have sent them meanwhile)" if which != "all" else ""
            self.line(f"<info>No failed jobs to retry{meanwhile}.</info>")
        self.report(retried)
        return 0

    def report(self, retried: list[Retried]) -> None:
        for job in retried:
            self.line(
                f"<info>Retried</info> failed job {shown(job.id)} on connection '{shown(job.connection)}', "
                f"queue '{shown(job.queue)}'."
            )


class QueueForgetCommand(FailedJobCommand):
    name = "queue:forget"
    description = "Delete a failed job."
    arguments = [argument("id", "The failed job's id or job id (or a unique first 6+ characters)")]

    def handle(self) -> int:
        return self.run_command(self.forget)

    def forget(self) -> int:
        id = self.argument("id")
        if not self.with_manager(lambda manager: manager.failed.forget(id)):
            raise QueueConfigurationError(f"No failed job matches {id!r} (see queue:failed).")
        self.line(f"<info>Failed job {id} deleted.</info>")
        return 0


class QueueFlushCommand(FailedJobCommand):
    name = "queue:flush"
    description = "Delete every failed job, or those older than --hours."
    options = [option("hours", None, "Only those that failed more than this many hours ago", flag=False)]

    def handle(self) -> int:
        return self.run_command(self.flush)

    def flush(self) -> int:
        hours = self.hours("hours")
        deleted = self.with_manager(lambda manager: manager.failed.flush(hours))
        older = f" older than {hours:g} hours" if hours is not None else ""
        self.line(f"<info>Deleted {deleted} failed job{'' if deleted == 1 else 's'}{older}.</info>")
        return 0


class QueuePruneFailedCommand(FailedJobCommand):
    name = "queue:prune-failed"
    description = "Delete failed jobs older than --hours (24)."
    options = [option("hours", None, "Keep the failed jobs of the last this many hours", flag=False, default="24")]

    def handle(self) -> int:
        return self.run_command(self.prune)

    def prune(self) -> int:
        hours = self.hours("hours", 24.0) or 0.0
        deleted = self.with_manager(lambda manager: manager.failed.prune(hours))
        self.line(f"<info>Deleted {deleted} failed job{'' if deleted == 1 else 's'} older than {hours:g} hours.</info>")
        return 0


def shown(text: str) -> str:
    """What a job put into its record (its error, its task's name, a foreign message's queue), as text: control
    characters escaped and cleo's markup (``<fg=red>``) left uninterpreted."""
    escaped: str = Formatter.escape(printable(text))
    return escaped
