"""Delayed jobs: a job carries its due time as the ``eta`` label (a Unix timestamp).

An absolute time, not a relative delay, so a job that waits in a queue or is
re-sent by a retry still runs when it was due. TaskIQ's own relative ``delay``
label (``.with_labels(delay=5)``) is honoured too: it counts from when the job
is sent. Each driver keeps delayed jobs where its broker can hold them
durably (see each driver's module docstring).

The one rule for every driver (checked here, at dispatch and in every broker's
``kick``): a delay is a finite number of seconds of at most ``MAX_DELAY``
(366 days). An infinite or absurd delay would otherwise be accepted and never
run (Redis), or crash the worker every time it sees the job (NATS). A job that
arrives with an unusable ``eta`` (not a number, not finite, or further ahead
than any dispatch could have set) is a poison message (``drivers.poison``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from taskiq import BrokerMessage

from drivers.base import labels
from drivers.base.errors import InvalidDelayError, QueueConfigurationError

# Delays shorter than this are not worth a round trip through the delayed store.
MIN_DELAY = 0.05
MAX_DELAY_DAYS = 366
MAX_DELAY = MAX_DELAY_DAYS * 86_400.0
# A job that arrives may carry an eta a little beyond the limit (the sender's clock runs ahead).
RECEIPT_SLACK = 86_400.0


def _limit(what: str) -> InvalidDelayError:
    return InvalidDelayError(
        f"A job's delay must be a finite number of seconds up to {MAX_DELAY_DAYS} days ({MAX_DELAY:.0f} s): "
        f"{what}. Pass seconds, a timedelta or a datetime at most {MAX_DELAY_DAYS} days ahead "
        "(a longer wait belongs in a scheduler, e.g. TaskIQ's)."
    )


def _number(value: Any, label: str) -> float:
    if isinstance(value, bool):
        raise InvalidDelayError(f"The job's {label!r} label must be a number of seconds, got a boolean.")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidDelayError(
            f"The job's {label!r} label is not a number ({str(value)[:40]!r}): give seconds "
            f"({labels.DELAY}) or a Unix timestamp ({labels.ETA})."
        ) from None


def checked_due(due: float, now: float | None = None) -> float:
    """``due`` (a Unix timestamp) if it is finite and at most ``MAX_DELAY`` ahead, else InvalidDelayError."""
    now = time.time() if now is None else now
    if not math.isfinite(due):
        raise _limit(f"got {due!r}")
    if due - now > MAX_DELAY:
        raise _limit(f"this one is due in {(due - now) / 86_400:,.0f} days")
    return due


def due_from(job_labels: Mapping[str, Any], now: float | None = None) -> float | None:
    """When a job with these labels is due (a Unix timestamp), from ``eta`` or TaskIQ's ``delay``; None if it has
    neither. Raises InvalidDelayError for a value no driver could honour."""
    now = time.time() if now is None else now
    eta = job_labels.get(labels.ETA)
    if eta not in (None, ""):
        return checked_due(_number(eta, labels.ETA), now)
    delay = job_labels.get(labels.DELAY)
    if delay not in (None, ""):
        return checked_due(now + _number(delay, labels.DELAY), now)
    return None


def due_at(message: BrokerMessage, now: float | None = None) -> float | None:
    """``due_from`` the message's labels: every broker's ``kick`` goes through here."""
    return due_from(message.labels, now)


def seconds_until_due(message: BrokerMessage, now: float | None = None) -> float | None:
    """Seconds until the message is due, or None if it is due now (or has no eta)."""
    now = time.time() if now is None else now
    due = due_at(message, now)
    if due is None:
        return None
    remaining = due - now
    return remaining if remaining > MIN_DELAY else None


def received_eta(value: Any, now: float | None = None) -> float:
    """An ``eta`` read from a message that arrived: a finite number, not further ahead than any dispatch could
    have set (with a day of slack for clocks). InvalidDelayError otherwise: the message is poison."""
    eta = _number(value, labels.ETA)
    now = time.time() if now is None else now
    if not math.isfinite(eta) or eta - now > MAX_DELAY + RECEIPT_SLACK:
        raise _limit("the job arrived with an eta no dispatch could have set")
    return eta


def received_delay(value: Any) -> float:
    """TaskIQ's ``delay`` label of a message that arrived (already honoured when it was sent): a sane number."""
    delay = _number(value, labels.DELAY)
    if not math.isfinite(delay) or abs(delay) > MAX_DELAY + RECEIPT_SLACK:
        raise _limit("the job arrived with a delay no dispatch could have set")
    return delay


def eta_remaining(raw: Any, now: float | None = None) -> float | None:
    """Seconds until an ``eta`` header value is due, or None if due now. InvalidDelayError for a bad value."""
    if raw is None or raw in ("", b""):
        return None
    now = time.time() if now is None else now
    remaining = received_eta(raw.decode(errors="replace") if isinstance(raw, bytes) else raw, now) - now
    return remaining if remaining > MIN_DELAY else None


def parse_backoff(value: Any) -> list[float]:
    """The ``backoff`` label: seconds, a list of seconds (one per retry; the last repeats), or the same as a JSON
    string. Each wait is a delay, so the same limit applies."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise QueueConfigurationError(f"backoff must be seconds or a list of seconds, got {value!r}.") from None
    values = list(value) if isinstance(value, Sequence) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in values):
        raise QueueConfigurationError(f"backoff must be seconds >= 0 or a non-empty list of them, got {value!r}.")
    if any(not math.isfinite(v) or v > MAX_DELAY for v in values):
        raise QueueConfigurationError(
            f"backoff must be finite and at most {MAX_DELAY_DAYS} days ({MAX_DELAY:.0f} s) per retry, got {value!r}."
        )
    return [float(v) for v in values]


def backoff_for(backoff: list[float], retry_index: int) -> float:
    """The wait before retry number ``retry_index`` (0 is the first retry)."""
    return backoff[min(retry_index, len(backoff) - 1)]
