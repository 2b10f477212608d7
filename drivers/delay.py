"""Delayed jobs: a job carries its due time as the ``eta`` label (a Unix timestamp).

An absolute time, not a relative delay, so a job that waits in a queue or is
re-sent by a retry still runs when it was due. Each driver keeps delayed jobs
where its broker can hold them durably (see each driver's module docstring).
"""

from __future__ import annotations

import time

from taskiq import BrokerMessage

ETA_LABEL = "eta"
# Delays shorter than this are not worth a round trip through the delayed store.
MIN_DELAY = 0.05


def seconds_until_due(message: BrokerMessage, now: float | None = None) -> float | None:
    """Seconds until the message is due, or None if it is due now (or has no eta)."""
    raw = message.labels.get(ETA_LABEL)
    if raw in (None, ""):
        return None
    remaining = float(raw) - (time.time() if now is None else now)
    return remaining if remaining > MIN_DELAY else None


def eta_remaining(raw: str | bytes | None) -> float | None:
    """Seconds until an ``eta`` header value is due, or None if due now."""
    if not raw:
        return None
    remaining = float(raw) - time.time()
    return remaining if remaining > MIN_DELAY else None
