"""The errors a user of the queue can see; all carry a message that says how to fix them."""

from __future__ import annotations

from typing import Any

from taskiq.exceptions import SendTaskError

from drivers.errors import BrokerUnreachableError, InvalidDelayError, MissingExtraError, QueueConfigurationError


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


class RetryError(RuntimeError):
    """A failed job could not be sent again (its broker is down, its task unknown here); it stays recorded."""


__all__ = [
    "BrokerUnreachableError",
    "BulkDispatchError",
    "InvalidDelayError",
    "MissingExtraError",
    "QueueConfigurationError",
    "RetryError",
]
