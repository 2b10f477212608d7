"""conn.counts(queue): waiting, delayed and reserved jobs, read from each real server."""

from __future__ import annotations

import pytest

from queue_manager import QueueManager, task, use_manager
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue

pytestmark = pytest.mark.usefixtures("clean_env")


@task(name="tests.counts.job")
async def job(n: int) -> int:
    return n


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_counts_of_a_queue_without_a_worker(driver: str, queue_name: str) -> None:
    manager = QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue_name}}}))
    use_manager(manager)
    conn = manager.connection()
    try:
        for n in range(3):
            await job.kiq(n)
        await job.dispatch(9).delay(600)
        counts = await conn.counts()
        expected = {
            "redis": (3, 1, 0),
            "redis_stream": (3, 1, 0),
            "rabbitmq": (3, None, None),  # delayed jobs wait in shared delay queues; no per-queue unacked count
            "nats": (4, None, 0),  # no consumer yet: every job of the subject (the delayed one too) is waiting
        }[driver]
        assert (counts.waiting, counts.delayed, counts.reserved) == expected
    finally:
        await manager.shutdown()
        use_manager(None)
        await cleanup_queue(driver, queue_name)


async def test_a_fetched_redis_job_counts_as_reserved(queue_name: str) -> None:
    manager = QueueManager(load_settings({"driver": "redis", "connections": {"redis": {"queue": queue_name}}}))
    use_manager(manager)
    conn = manager.connection()
    try:
        await job.kiq(1)
        await job.kiq(2)
        conn.broker.is_worker_process = True
        jobs = conn.broker.listen()
        await anext(jobs)
        counts = await conn.counts()
        assert (counts.waiting, counts.reserved) == (1, 1)
        await jobs.aclose()
    finally:
        await manager.shutdown()
        use_manager(None)
        await cleanup_queue("redis", queue_name)
