"""How long a job dispatched now would wait, and how long it may (``QUEUE_WAITS``).

No driver can tell the age of the oldest waiting job without taking it (RabbitMQ cannot peek at all), so the
wait is Horizon's estimate: the jobs waiting divided by the rate the workers finish them, from the per-minute
counters ``queue:work`` keeps on the connection's server (``Connection.throughput``) over the last
``RATE_MINUTES``. A queue with jobs waiting and none finished in that time is *stalled*: its wait is the time
since it was first seen so (``crossings``), however short. A connection that keeps no counters (RabbitMQ) has
no estimate (None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RATE_MINUTES = 5


def finish_rate(per_minute: Sequence[int], seconds_into_minute: float) -> float:
    """Jobs finished per second over ``per_minute`` (oldest first; the last is the current, partial minute)."""
    if not per_minute:
        return 0.0
    elapsed = (len(per_minute) - 1) * 60 + max(1.0, seconds_into_minute)
    return sum(per_minute) / elapsed


def estimate(waiting: int, rate: float) -> float | None:
    """Seconds until the last waiting job starts at ``rate``; 0 for an empty queue, None when nothing moves."""
    if waiting <= 0:
        return 0.0
    if rate <= 0:
        return None
    return waiting / rate


def threshold(waits: Mapping[str, float], connection: str, queue: str, default_queue: str) -> float | None:
    """The seconds ``connection:queue`` may wait: ``redis:emails``, else ``redis:*``, else a bare ``redis`` for its
    own queue (as ``queue:monitor`` reads a bare connection name)."""
    for key in (f"{connection}:{queue}", f"{connection}:*"):
        if key in waits:
            return waits[key]
    if queue == default_queue and connection in waits:
        return waits[connection]
    return None


def named_queues(waits: Mapping[str, float], connections: Mapping[str, str]) -> list[tuple[str, str]]:
    """The queues ``QUEUE_WAITS`` names one by one (``connections``: name -> its own queue), wildcards left out."""
    found: list[tuple[str, str]] = []
    for key in waits:
        name, _, queue = key.partition(":")
        if queue != "*" and name in connections:
            found.append((name, queue or connections[name]))
    return found
