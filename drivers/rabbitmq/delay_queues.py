"""RabbitMQ delays without a plugin: a fixed set of delay queues, shared by every queue of an exchange.

A delay queue holds jobs for a fixed time (its queue-wide ``x-message-ttl``, so expiry keeps the order
they came in) and then dead-letters them into the exchange with their own routing key, i.e. into the
job's target queue. One queue per delay *bucket*, not per (queue, second): the earlier design made one
queue per target and whole second, and piled up thousands of queues (server memory) under varied delays.

A job is published to the headers exchange ``<exchange>.delay`` with its target queue as routing key and
a ``queue-delay`` header naming the bucket; each bucket's queue is bound to that exchange by that header.
The bucket is the smallest one at least as long as the wait if that costs at most ``MAX_LATE`` seconds,
else the longest one shorter than the wait: the job then arrives early, and the worker that receives it
sends it back for the rest (it never runs before its ``eta``). That also makes delays longer than
RabbitMQ's TTL limit (2^32-1 ms, about 49.7 days) work, up to ``drivers.base.delay.MAX_DELAY``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

HEADER = "queue-delay"  # names the bucket; no "x-" prefix (a headers exchange ignores those when matching)
MAX_LATE = 1.0  # seconds a job may run after its eta because of the bucket it waited in
# seconds; the longest stays under RabbitMQ's documented TTL limit (2^32-1 ms)
BUCKETS: tuple[int, ...] = (
    *(1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50),
    *(60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2700),
    *(3600, 5400, 7200, 10_800, 14_400, 21_600, 28_800, 43_200, 64_800),
    *(86_400, 172_800, 345_600, 604_800, 1_209_600, 2_419_200, 3_628_800),
)
# A delay queue is deleted after it has not been declared for its TTL plus this; it is declared again more
# often than that, so it never disappears with a job inside.
EXPIRES_SLACK_MS = 600_000
REDECLARE_EVERY = 300.0


def bucket_for(remaining: float) -> int:
    """The delay bucket (seconds) for a job due in ``remaining`` seconds."""
    above = bisect_left(BUCKETS, remaining)
    if above < len(BUCKETS) and BUCKETS[above] - remaining <= MAX_LATE:
        return BUCKETS[above]
    return BUCKETS[max(0, bisect_right(BUCKETS, remaining) - 1)]


def exchange_name(exchange: str) -> str:
    return f"{exchange}.delay"


def queue_name(exchange: str, bucket: int) -> str:
    return f"{exchange}.delay.{bucket}s"


def queue_arguments(exchange: str, bucket: int) -> dict[str, Any]:
    # No x-dead-letter-routing-key: an expired job keeps its own routing key, its target queue's name.
    return {
        "x-queue-type": "classic",
        "x-message-ttl": bucket * 1000,
        "x-dead-letter-exchange": exchange,
        "x-expires": bucket * 1000 + EXPIRES_SLACK_MS,
    }


def binding(bucket: int) -> dict[str, Any]:
    return {"x-match": "all", HEADER: str(bucket)}
