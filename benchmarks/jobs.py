"""The benchmark job, shared by raw TaskIQ and our manager: one Redis round trip that counts the run.

SADD records which ids ran (so a lost job shows), INCR how many runs happened (so a duplicate shows),
and two SETs (in the same round trip) when the first and the last job ran, by the worker's clock, so a
drain is timed from its first job to its last whatever the worker's start-up took.
"""

from __future__ import annotations

import os
import time
from typing import Any

from taskiq import async_shared_broker

COUNTER_URL = os.environ.get("BENCH_COUNTER_URL", "redis://127.0.0.1:6379/15")
_client: Any = None


def counter_keys(run: str) -> tuple[str, str]:
    return f"bench:{run}:ids", f"bench:{run}:runs"


def time_keys(run: str) -> tuple[str, str]:
    return f"bench:{run}:first", f"bench:{run}:last"


@async_shared_broker.task(task_name="bench:job")
async def job(run: str, number: int) -> None:
    global _client
    if _client is None:
        from redis.asyncio import Redis

        _client = Redis.from_url(COUNTER_URL)
    ids, runs = counter_keys(run)
    first, last = time_keys(run)
    now = time.time()
    async with _client.pipeline(transaction=False) as pipe:
        pipe.sadd(ids, number)
        pipe.incr(runs)
        pipe.set(first, now, nx=True)
        pipe.set(last, now)
        await pipe.execute()
