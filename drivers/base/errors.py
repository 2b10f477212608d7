"""Errors raised while building or reaching a broker.

They live here (not in ``queue_manager``) because drivers must not import the
manager; ``queue_manager.errors`` re-exports them under the public names.
"""

from __future__ import annotations

from collections.abc import Iterable

from taskiq import ResultGetError


class QueueConfigurationError(ValueError):
    """The queue settings cannot work: raised at boot, never at first use."""


class MissingExtraError(QueueConfigurationError, ImportError):
    """A driver's broker library is not installed; the message names the extra."""


class InvalidDelayError(QueueConfigurationError):
    """A job's delay (``delay()``, or its ``eta`` / ``delay`` label) is not a finite time within the limit."""


class UnrunnableJobError(RuntimeError):
    """The result of a job no worker can run (unknown task, unusable labels): its caller's ``wait_result``
    gets this at once instead of waiting out its timeout."""


class BrokerUnreachableError(ConnectionError):
    """The broker did not answer; the message names host and port, never the password."""

    maybe_sent = False  # True: a job went out and no answer came back, so the server may have stored it


class BrokerAuthenticationError(BrokerUnreachableError):
    """The broker answered and refused the credentials (which user, where; never the password). Trying again cannot
    help, so a worker stops on it. A ``BrokerUnreachableError`` still: code that catches that goes on working."""


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest valid name, or an empty string."""
    valid_list = sorted(valid)
    import difflib  # only on the error path: it costs a millisecond of every boot otherwise

    match = difflib.get_close_matches(name.lower(), valid_list, n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def unknown_name_error(kind: str, name: str, valid: Iterable[str], fix: str) -> QueueConfigurationError:
    """Build the error for an unknown connection or driver name: valid names plus a suggestion."""
    valid_list = sorted(valid)
    return QueueConfigurationError(
        f"Unknown queue {kind} '{name}'.{did_you_mean(name, valid_list)} Valid {kind}s: {', '.join(valid_list)}. {fix}"
    )


class ResultBackendNotStartedError(ResultGetError):
    """Raised by the result stores we ship (RabbitMQ, NATS): TaskIQ's ResultGetError, with the fix."""

    __template__ = "The result backend is not started: call broker.startup() first (the web app's lifespan does)."


class ResultMissingError(ResultGetError):
    __template__ = "No result is stored for task {task_id} (it has not finished, or its result expired)."

    task_id: str
