"""What a list of failed jobs shows of each one: short fields only, never its args, payload or traceback.

A failed job can weigh megabytes (its arguments, a raw payload, a long traceback), and ``queue:failed`` and
the dashboard (every 2 s) list many, so the stores answer a listing from short columns
(``FailedJobStore.summaries``); ``find(id)`` reads one whole record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from queue_manager.failed.record import FailedJob, error_summary, first_line, utc

NAME_CHARS = 255  # of a task name, task id, exception class or connection/queue name in a summary


@dataclass(frozen=True)
class FailedJobSummary:
    """One row of a listing. ``size``: characters of the whole record (None: recorded by an older version)."""

    id: str
    connection: str
    queue: str
    task_name: str
    task_id: str
    exception: str
    first_line: str
    attempts: int
    failed_at: datetime
    size: int | None

    @property
    def summary(self) -> str:
        """``ValueError: job 7 is broken``, as ``FailedJob.summary``."""
        return error_summary(self.exception, self.first_line)

    @classmethod
    def of(cls, job: FailedJob) -> FailedJobSummary:
        return cls.read(job.to_summary_fields())

    @classmethod
    def read(cls, fields: dict[str, object]) -> FailedJobSummary:
        """From a store's short columns (the names of this class; ``message`` may stand for ``first_line``)."""
        message = str(fields.get("first_line", fields.get("message")) or "")
        size, failed_at = fields.get("size"), fields["failed_at"]
        moment = datetime.fromisoformat(failed_at) if isinstance(failed_at, str) else failed_at
        if not isinstance(moment, datetime):
            raise TypeError(f"failed_at is not a time: {failed_at!r}")
        return cls(
            id=str(fields["id"]),
            connection=str(fields["connection"])[:NAME_CHARS],
            queue=str(fields["queue"])[:NAME_CHARS],
            task_name=str(fields["task_name"])[:NAME_CHARS],
            task_id=str(fields.get("task_id") or "")[:NAME_CHARS],
            exception=str(fields["exception"])[:NAME_CHARS],
            first_line=first_line(message),
            attempts=int(str(fields.get("attempts") or 0)),
            failed_at=utc(moment),
            size=None if size is None else int(str(size)),
        )
