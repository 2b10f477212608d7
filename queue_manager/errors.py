"""The errors a user of the queue can see; all carry a message that says how to fix them."""

from __future__ import annotations

from typing import Any

from taskiq.exceptions import SendTaskError

from drivers.base.errors import (
    BrokerAuthenticationError,
    BrokerUnreachableError,
    InvalidDelayError,
    MissingExtraError,
    QueueConfigurationError,
    UnrunnableJobError,
)


class BulkDispatchError(SendTaskError):
    """Some jobs of a ``bulk()`` were not sent: ``sent`` has the handles of those that were (a retry can skip
    them), ``failed`` the (index in the jobs given, exception) of the others."""

    __template__ = (
        "{failed_count} of {total} jobs were not sent (first error: {first_error}). The error's `sent` holds the "
        "handles of the jobs that were sent, its `failed` the (index, exception) of the others: retry only those."
    )
    failed_count: int
    total: int
    first_error: str
    sent: list[Any]
    failed: list[tuple[int, BaseException]]


class DispatchUnreachableError(BrokerUnreachableError, SendTaskError):
    """A send that failed because its broker did not answer. It is both errors, so ``except
    BrokerUnreachableError`` (this package's README) and ``except SendTaskError`` (TaskIQ's, what
    ``kiq()`` raises for any failed send) catch it, whichever way the job was sent."""

    def __init__(self, message: str) -> None:
        BrokerUnreachableError.__init__(self, message)

    def __repr__(self) -> str:  # TaskIQ's errors show their template fields, of which this has none
        return f"{type(self).__name__}({str(self)!r})"


class DispatchAuthenticationError(DispatchUnreachableError, BrokerAuthenticationError):
    """A send the broker refused for its credentials: ``except BrokerAuthenticationError`` catches it too."""


def raise_if_unreachable(error: BaseException) -> None:
    """Raise ``DispatchUnreachableError`` (from the original cause) instead of ``error`` when a send failed
    because the broker is unreachable: TaskIQ's ``SendTaskError`` caused by it, or that cause itself. Returns
    otherwise, and the caller re-raises ``error`` as it is."""
    cause = error.__cause__ if isinstance(error, SendTaskError) else error
    if isinstance(cause, BrokerUnreachableError) and not isinstance(cause, DispatchUnreachableError):
        refused = isinstance(cause, BrokerAuthenticationError)
        raise (DispatchAuthenticationError if refused else DispatchUnreachableError)(str(cause)) from cause


class JobPayloadError(TypeError):
    """A job class's attribute cannot travel as JSON (refused at dispatch), or the payload a worker got does not
    fit the class (the job fails for good: it would not fit the next time either)."""


class NeverAwaitedWarning(RuntimeWarning):
    """A dispatch that was never awaited, so nothing was sent: Laravel sends a pending dispatch when it is
    destroyed; Python needs the ``await``. The pytest plugin fails a test that leaves one behind."""


class RetryError(RuntimeError):
    """A failed job could not be sent again (its broker is down, its task unknown here); it stays recorded."""


__all__ = [
    "BrokerAuthenticationError",
    "BrokerUnreachableError",
    "BulkDispatchError",
    "DispatchUnreachableError",
    "InvalidDelayError",
    "MissingExtraError",
    "QueueConfigurationError",
    "RetryError",
    "UnrunnableJobError",
]
