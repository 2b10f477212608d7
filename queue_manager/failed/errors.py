"""What the failed jobs raise besides the queue's own errors: a store that does not answer, a retry that sent
only some jobs. Each message says what to do, and never holds a password."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from queue_manager.errors import RetryError

if TYPE_CHECKING:
    from queue_manager.failed.retrying import Retried

SHOWN = 5  # jobs named in a RetryIncompleteError's message (all are in its ``not_retried``)


class FailedStoreUnreachableError(ConnectionError):
    """The failed-jobs store did not answer; the message names it (host:port, the password masked)."""


@dataclass(frozen=True)
class NotRetried:
    """A failed job a retry could not send, and why; it stays in the store."""

    id: str
    task_name: str
    connection: str
    queue: str
    reason: str

    def __str__(self) -> str:
        return (
            f"failed job {self.id} ({self.task_name}) on connection '{self.connection}', queue '{self.queue}': "
            f"{self.reason}"
        )


class RetryIncompleteError(RetryError):
    """Some failed jobs could not be sent again: ``retried`` holds those that were, ``not_retried`` the others
    (each with its reason); those stay in the store."""

    def __init__(self, retried: list[Retried], not_retried: list[NotRetried]) -> None:
        self.retried = retried
        self.not_retried = not_retried
        named = "; ".join(str(job) for job in not_retried[:SHOWN])
        more = f"; and {len(not_retried) - SHOWN} more" if len(not_retried) > SHOWN else ""
        super().__init__(
            f"{len(not_retried)} failed job{'' if len(not_retried) == 1 else 's'} could not be retried and stay in "
            f"the failed jobs ({len(retried)} retried): {named}{more}."
        )
