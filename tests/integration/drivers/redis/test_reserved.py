"""The Redis list keeps every job until it finished: reserved on fetch, extended while it runs, given back.

These drive the broker the way TaskIQ's receiver does (ask for a job only with a free slot, ack when
done) against the real Redis, and read the keys back with a plain client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq.utils import maybe_awaitable
from taskiq_redis import ListQueueBroker

from drivers.redis.list_broker import RedisListBroker
from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.helpers import cleanup_queue

pytestmark = pytest.mark.usefixtures("clean_env")
URL = "redis://127.0.0.1:6379/0"


def list_broker(queue: str, **options: Any) -> RedisListBroker:
    settings = load_settings({"driver": "redis", "connections": {"redis": {"queue": queue, "options": options}}})
    broker = QueueManager(settings).connection().broker
    assert isinstance(broker, RedisListBroker)
    broker.is_worker_process = True
    return broker


@pytest.fixture
async def redis(queue_name: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(URL)
    yield client
    await cleanup_queue("redis", queue_name)
    await client.aclose()


@pytest.fixture
async def queue_task() -> Any:
    from queue_manager import task

    @task(name="tests.reserved.job")
    async def job(n: int) -> int:
        return n

    return job


async def send(broker: RedisListBroker, task: Any, *numbers: int) -> None:
    for number in numbers:
        await task.kicker().with_broker(broker).kiq(number)


async def acked(broker: RedisListBroker, message: Any) -> None:
    """Acknowledge as TaskIQ's receiver does, then wait for the batch that carries it."""
    await maybe_awaitable(message.ack())
    await broker.batcher.drain()


async def counts(redis: Redis, queue: str) -> tuple[int, int]:
    """(waiting in the list, reserved)"""
    return int(await redis.llen(f"queues:{queue}")), int(await redis.zcard(f"queues:{queue}:reserved"))


async def test_a_fetched_job_is_reserved_until_it_is_acknowledged(
    redis: Redis, queue_name: str, queue_task: Any
) -> None:
    broker = list_broker(queue_name)
    await broker.startup()
    try:
        await send(broker, queue_task, 1, 2, 3)
        jobs = broker.listen()
        before = time.time()
        first = await anext(jobs)
        fetched = time.time()
        assert isinstance(first, AckableMessage)
        assert await counts(redis, queue_name) == (2, 1), "one job moved from the list into :reserved"
        score = await redis.zscore(f"queues:{queue_name}:reserved", first.data)
        assert score is not None and before + 60 <= score <= fetched + 60, "reserved until fetch + retry_after (60 s)"
        await acked(broker, first)
        assert await counts(redis, queue_name) == (2, 0)
        await jobs.aclose()
    finally:
        await broker.shutdown()


async def test_a_killed_workers_job_runs_again_after_retry_after(
    redis: Redis, queue_name: str, queue_task: Any
) -> None:
    dead = list_broker(queue_name, retry_after=2)
    await dead.startup()
    await send(dead, queue_task, 7)
    held = await anext(dead.listen())
    dead.in_flight.stop()  # the worker "dies": no heartbeat, no ack, no shutdown
    # Its reservation as it was left (a heartbeat still on its way can only push it later).
    reserved_until = await redis.zscore(f"queues:{queue_name}:reserved", held.data)  # type: ignore[union-attr]
    assert reserved_until is not None
    other = list_broker(queue_name, retry_after=2)
    await other.startup()
    try:
        jobs = other.listen()
        again = await asyncio.wait_for(anext(jobs), timeout=30)
        assert again.data == held.data  # type: ignore[union-attr]
        assert time.time() >= reserved_until, "not before its reservation expired"
        await acked(other, again)
        assert await counts(redis, queue_name) == (0, 0)
        await jobs.aclose()
    finally:
        await other.shutdown()
        await dead.sender.aclose()


async def test_a_running_jobs_reservation_is_extended_so_no_other_worker_takes_it(
    redis: Redis, queue_name: str, queue_task: Any
) -> None:
    busy = list_broker(queue_name, retry_after=2)
    idle = list_broker(queue_name, retry_after=2)
    await busy.startup()
    await idle.startup()
    try:
        await send(busy, queue_task, 1)
        running = await anext(busy.listen())
        waiting = asyncio.ensure_future(anext(idle.listen()))
        done, _ = await asyncio.wait({waiting}, timeout=5)  # 2.5 x retry_after
        assert not done, "a job whose worker is alive and running it was handed to another worker"
        await acked(busy, running)
        assert await counts(redis, queue_name) == (0, 0)
        waiting.cancel()
    finally:
        await busy.shutdown()
        await idle.shutdown()


async def test_fetches_take_as_many_jobs_as_the_worker_has_proven_free_slots(
    redis: Redis, queue_name: str, queue_task: Any
) -> None:
    broker = list_broker(queue_name)
    await broker.startup()
    try:
        await send(broker, queue_task, *range(10))
        jobs = broker.listen()
        one, two = await anext(jobs), await anext(jobs)  # asked while holding one: capacity >= 2
        assert await counts(redis, queue_name) == (8, 2), "one job per fetch until a capacity is proven"
        await acked(broker, one)
        await acked(broker, two)
        three = await anext(jobs)
        assert await counts(redis, queue_name) == (6, 2), "two free slots: one fetch reserved two jobs"
        await acked(broker, three)
        await jobs.aclose()
        assert await counts(redis, queue_name) == (7, 0), "the fetched job it did not hand out went back"
    finally:
        await broker.shutdown()


async def test_shutdown_gives_back_unfinished_jobs_at_once_in_order(
    redis: Redis, queue_name: str, queue_task: Any
) -> None:
    broker = list_broker(queue_name)
    await broker.startup()
    await send(broker, queue_task, 1, 2, 3)
    first = await anext(broker.listen())
    await broker.shutdown()
    assert await counts(redis, queue_name) == (3, 0)
    assert await redis.lindex(f"queues:{queue_name}", -1) == first.data, "back at the head of the queue"  # type: ignore[union-attr]


async def test_jobs_sent_by_a_plain_taskiq_list_broker_are_consumed(
    redis: Redis, queue_name: str, queue_task: Any
) -> None:
    plain = ListQueueBroker(URL, queue_name=f"queues:{queue_name}")
    await plain.startup()
    await queue_task.kicker().with_broker(plain).kiq(5)
    await plain.shutdown()
    ours = list_broker(queue_name)
    await ours.startup()
    try:
        message = await asyncio.wait_for(anext(ours.listen()), timeout=10)
        assert ours.formatter.loads(message.data).args == [5]  # type: ignore[union-attr]
    finally:
        await ours.shutdown()


async def test_an_idle_worker_wakes_at_once_when_a_job_arrives(redis: Redis, queue_name: str, queue_task: Any) -> None:
    broker = list_broker(queue_name, block_timeout=30)
    name = f"idle-{queue_name}"  # its connections' name, to find its blocking BLMOVE among the server's clients
    broker.sender.connection_pool.connection_kwargs["client_name"] = name
    await broker.startup()
    try:
        waiting = asyncio.ensure_future(anext(broker.listen()))

        async def blocked() -> bool:
            return any(
                c.get("name") == name and c.get("cmd") == "blmove" and "b" in c.get("flags", "")
                for c in await redis.client_list()
            )

        deadline = time.monotonic() + 30
        while not await blocked():  # it found no job and blocks, waiting for one
            assert not waiting.done() and time.monotonic() < deadline, "the idle worker never blocked on its queue"
            await asyncio.sleep(0.05)
        sent = time.monotonic()
        await send(broker, queue_task, 1)
        await asyncio.wait_for(waiting, timeout=20)  # the block would have lasted 30 s
        assert time.monotonic() - sent < 20, "woken by the job, not by the 30 s block timeout"
    finally:
        await broker.shutdown()


async def test_result_and_acknowledgement_are_written_together(redis: Redis, queue_name: str, queue_task: Any) -> None:
    """A finished job's result and its acknowledgement go out in one MULTI/EXEC, the result first: read from the
    pipelines the batcher sends (not from a window in which the result is not written yet)."""
    broker = list_broker(queue_name)
    sent: list[tuple[bool, list[str]]] = []
    make_pipeline = broker.batcher.redis.pipeline

    def recording_pipeline(transaction: bool = True, **kwargs: Any) -> Any:
        pipe = make_pipeline(transaction=transaction, **kwargs)
        execute = pipe.execute

        async def recorded(*args: Any, **kw: Any) -> Any:
            sent.append((transaction, [str(command[0][0]).upper() for command in pipe.command_stack]))
            return await execute(*args, **kw)

        pipe.execute = recorded
        return pipe

    broker.batcher.redis.pipeline = recording_pipeline  # type: ignore[method-assign]
    await broker.startup()
    try:
        handle = await queue_task.kicker().with_broker(broker).kiq(4)
        message = await anext(broker.listen())
        from taskiq.receiver import Receiver

        await Receiver(broker, run_startup=False).callback(message)
        await broker.batcher.drain()
        assert await counts(redis, queue_name) == (0, 0)
        writes = [(transaction, commands) for transaction, commands in sent if "ZREM" in commands]
        assert len(writes) == 1, sent
        transaction, commands = writes[0]
        assert transaction, "one MULTI/EXEC"
        assert "SET" in commands and commands.index("SET") < commands.index("ZREM"), commands
        result = await handle.wait_result(timeout=5)
        assert result.return_value == 4
    finally:
        await broker.shutdown()
