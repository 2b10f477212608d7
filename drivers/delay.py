"""Delayed jobs: a job carries its due time as the ``eta`` label (a Unix timestamp).

An absolute time, not a relative delay, so a job that waits in a queue or is
re-sent by a retry still runs when it was due. TaskIQ's own relative ``delay``
label (``.with_labels(delay=5)``) is honoured too: it counts from when the job
is sent. Each driver keeps delayed jobs where its broker can hold them
durably (see each driver's module docstring).
"""

from __future__ import annotations

import time

from taskiq import BrokerMessage

from drivers import labels

# Delays shorter than this are not worth a round trip through the delayed store.
MIN_DELAY = 0.05


def due_at(message: BrokerMessage, now: float | None = None) -> float | None:
    """When the message is due (a Unix timestamp), from its ``eta`` or TaskIQ's ``delay`` label; None if it has
    neither."""
    eta = message.labels.get(labels.ETA)
    if eta not in (None, ""):
        return float(eta)
    delay = message.labels.get(labels.DELAY)
    if delay not in (None, ""):
        return (time.time() if now is None else now) + float(delay)
    return None


def seconds_until_due(message: BrokerMessage, now: float | None = None) -> float | None:
    """Seconds until the message is due, or None if it is due now (or has no eta)."""
    now = time.time() if now is None else now
    due = due_at(message, now)
    if due is None:
        return None
    remaining = due - now
    return remaining if remaining > MIN_DELAY else None


def eta_remaining(raw: str | bytes | None) -> float | None:
    """Seconds until an ``eta`` header value is due, or None if due now."""
    if not raw:
        return None
    remaining = float(raw) - time.time()
    return remaining if remaining > MIN_DELAY else None
