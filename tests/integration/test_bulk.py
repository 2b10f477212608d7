"""connection.bulk(): many jobs in few round trips, on every driver, and recorded by the fake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from queue_manager import QueueManager, task
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue

pytestmark = pytest.mark.usefixtures("clean_env")
SEEN: list[int] = []


@task
async def collect(number: int) -> int:
    SEEN.append(number)
    return number * 10


async def queued(driver: str, queue: str) -> int:
    """How many jobs wait in the queue, read with the broker's own client."""
    if driver == "redis":
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            return int(await redis.llen(f"queues:{queue}"))
    if driver == "redis_stream":
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            return int(await redis.xlen(f"queues:stream:{queue}"))
    if driver == "rabbitmq":
        import aio_pika

        async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
            channel = await amqp.channel()
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)
    import nats

    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        info = await client.jetstream().consumer_info("QUEUES", f"workers_{queue}")
        return int(info.num_pending)
    finally:
        await client.close()


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_bulk_sends_every_job(driver: str, queue_name: str) -> None:
    manager = QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue_name}}}))
    connection = manager.connection()
    try:
        handles = await connection.bulk(collect, [(n,) for n in range(2500)])
        assert len({h.task_id for h in handles}) == 2500
        assert await queued(driver, queue_name) == 2500
    finally:
        await manager.shutdown()
        await cleanup_queue(driver, queue_name)


async def test_bulk_on_memory_runs_and_returns_handles(make_app: Callable[..., Any]) -> None:
    SEEN.clear()
    app = make_app(QUEUE_DRIVER="memory")
    handles = await app.make("queue.connection").bulk(collect, [(1,), (2,), (3,)])
    assert SEEN == [1, 2, 3]
    assert [(await h.wait_result(timeout=1)).return_value for h in handles] == [10, 20, 30]


async def test_the_fake_records_bulk_dispatches(make_app: Callable[..., Any]) -> None:
    app = make_app(QUEUE_DRIVER="memory")
    manager = app.make("queue.manager")
    with manager.fake() as fake:
        await manager.connection("redis").bulk(collect, [(n,) for n in range(5)], queue="numbers")
    fake.assert_pushed(collect, times=5, connection="redis", queue="numbers")
