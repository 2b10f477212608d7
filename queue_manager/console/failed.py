"""Laravel's failed-job commands: ``queue:failed``, ``queue:retry``, ``queue:forget``, ``queue:flush``,
``queue:prune-failed``. Each is a thin shell over ``manager.failed`` (the same calls work from Python)."""

from __future__ import annotations

from typing import Any, TypeVar

from cleo.helpers import argument, option

from drivers import QueueConfigurationError
from queue_manager.console.base import ManagerCommand
from queue_manager.errors import RetryError

T = TypeVar("T")
SUMMARY_WIDTH = 70  # characters of the error shown in the table


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


class QueueFailedCommand(FailedJobCommand):
    name = "queue:failed"
    description = "List the failed jobs (newest first)."
    options = [
        option("connection", None, "Only the failed jobs of this connection", flag=False),
        option("queue", None, "Only the failed jobs of this queue", flag=False),
    ]

    def handle(self) -> int:
        connection, queue = self.option("connection"), self.option("queue")
        jobs = self.with_manager(lambda manager: manager.failed.all(connection, queue))
        if not jobs and connection:
            try:  # a typo, most likely (a removed connection whose jobs are still stored lists them above)
                self.manager.check_connection_name(connection)
            except QueueConfigurationError as error:
                return self.refuse(error)
        if not jobs:
            self.line("<info>No failed jobs.</info>")
            return 0
        rows: Any = [
            [
                job.id,
                job.connection,
                job.queue,
                job.task_name,
                job.failed_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                _shorten(job.summary),
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
        argument("id", "Failed job ids (or a unique first 6+ characters), or 'all'", optional=True, multiple=True)
    ]
    options = [option("queue", None, "Retry every failed job of this queue", flag=False)]

    def handle(self) -> int:
        ids: list[str] = list(self.argument("id") or [])
        queue = self.option("queue")
        if not ids and not queue:
            return self.refuse(
                QueueConfigurationError("Give failed job ids, 'all', or --queue=NAME (see queue:failed).")
            )
        which: list[str] | str = "all" if "all" in ids or not ids else ids
        try:
            retried = self.with_manager(lambda manager: manager.failed.retry(which, queue=queue))
        except (QueueConfigurationError, RetryError) as error:
            return self.refuse(error)
        if not retried:
            self.line("<info>No failed jobs to retry.</info>")
        for job in retried:
            self.line(
                f"<info>Retried</info> failed job {job.id} on connection '{job.connection}', queue '{job.queue}'."
            )
        return 0


class QueueForgetCommand(FailedJobCommand):
    name = "queue:forget"
    description = "Delete a failed job."
    arguments = [argument("id", "The failed job's id (or a unique first 6+ characters)")]

    def handle(self) -> int:
        id = self.argument("id")
        try:
            forgotten = self.with_manager(lambda manager: manager.failed.forget(id))
        except QueueConfigurationError as error:
            return self.refuse(error)
        if not forgotten:
            return self.refuse(QueueConfigurationError(f"No failed job matches {id!r} (see queue:failed)."))
        self.line(f"<info>Failed job {id} deleted.</info>")
        return 0


class QueueFlushCommand(FailedJobCommand):
    name = "queue:flush"
    description = "Delete every failed job, or those older than --hours."
    options = [option("hours", None, "Only those that failed more than this many hours ago", flag=False)]

    def handle(self) -> int:
        try:
            hours = self.hours("hours")
            deleted = self.with_manager(lambda manager: manager.failed.flush(hours))
        except QueueConfigurationError as error:
            return self.refuse(error)
        older = f" older than {hours:g} hours" if hours is not None else ""
        self.line(f"<info>Deleted {deleted} failed job{'' if deleted == 1 else 's'}{older}.</info>")
        return 0


class QueuePruneFailedCommand(FailedJobCommand):
    name = "queue:prune-failed"
    description = "Delete failed jobs older than --hours (24)."
    options = [option("hours", None, "Keep the failed jobs of the last this many hours", flag=False, default="24")]

    def handle(self) -> int:
        try:
            hours = self.hours("hours", 24.0) or 0.0
            deleted = self.with_manager(lambda manager: manager.failed.prune(hours))
        except QueueConfigurationError as error:
            return self.refuse(error)
        self.line(f"<info>Deleted {deleted} failed job{'' if deleted == 1 else 's'} older than {hours:g} hours.</info>")
        return 0


def _shorten(text: str) -> str:
    return text if len(text) <= SUMMARY_WIDTH else text[: SUMMARY_WIDTH - 1] + "…"
