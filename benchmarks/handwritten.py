"""The practical limit on one Redis list: a hand-written redis-py consumer, 100 jobs at once, no TaskIQ.

``python -m benchmarks.handwritten`` with BENCH_QUEUE_KEY set. It BRPOPs one TaskIQ message per round
trip, decodes it with ``json`` and runs the benchmark job's function; no reservation, no
acknowledgement, no result, no middleware. What a worker costs beyond this is the price of TaskIQ and
of keeping jobs safe.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal

from redis.asyncio import Redis

from benchmarks.jobs import job

CONCURRENCY = 100


async def main() -> None:
    key = os.environ["BENCH_QUEUE_KEY"]
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    slots = asyncio.Semaphore(CONCURRENCY)
    running: set[asyncio.Task[None]] = set()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def run(message: dict[str, object]) -> None:
        try:
            await job.original_func(*message["args"], **message["kwargs"])  # type: ignore[arg-type]
        finally:
            slots.release()

    while not stop.is_set():
        popped = await redis.brpop([key], timeout=1)  # type: ignore[misc]
        if popped is None:
            continue
        await slots.acquire()
        task = asyncio.create_task(run(json.loads(popped[1])))
        running.add(task)
        task.add_done_callback(running.discard)
    await redis.aclose()


if __name__ == "__main__":
    try:
        import uvloop  # as TaskIQ's worker does when it is installed
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
