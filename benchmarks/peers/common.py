"""The same job as benchmarks/jobs.py: one Redis round trip recording the run (ids, runs, first and last time)."""

from __future__ import annotations

import os
import time

import redis

COUNTER_URL = os.environ.get("BENCH_COUNTER_URL", "redis://127.0.0.1:6379/15")
BROKER_URL = os.environ.get("BENCH_PEER_BROKER_URL", "redis://127.0.0.1:6379/14")
_client: redis.Redis | None = None


def count(run: str, number: int) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(COUNTER_URL)
    now = time.time()
    pipe = _client.pipeline(transaction=False)
    pipe.sadd(f"bench:{run}:ids", number)
    pipe.incr(f"bench:{run}:runs")
    pipe.set(f"bench:{run}:first", now, nx=True)
    pipe.set(f"bench:{run}:last", now)
    pipe.execute()


async def acount(run: str, number: int) -> None:
    from redis.asyncio import Redis

    global _aclient
    try:
        client = _aclient
    except NameError:
        client = _aclient = Redis.from_url(COUNTER_URL)
    now = time.time()
    async with client.pipeline(transaction=False) as pipe:
        pipe.sadd(f"bench:{run}:ids", number)
        pipe.incr(f"bench:{run}:runs")
        pipe.set(f"bench:{run}:first", now, nx=True)
        pipe.set(f"bench:{run}:last", now)
        await pipe.execute()
