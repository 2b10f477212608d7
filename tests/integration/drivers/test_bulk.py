"""connection.bulk(): many jobs in few round trips, on every driver, and recorded by the fake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel
from taskiq import TaskiqMessage, TaskiqMiddleware

from queue_manager import QueueManager, task
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue, queued

pytestmark = pytest.mark.usefixtures("clean_env")
SEEN: list[int] = []


@task
async def collect(number: int) -> int:
    SEEN.append(number)
    return number * 10


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


async def test_a_redis_list_bulk_keeps_the_order_of_its_jobs_across_queues_and_delays(queue_name: str) -> None:
    """Due jobs in a row for one queue go in one LPUSH (1,000 values at most): a worker still takes them in the
    order they were given, and delayed ones and those of another queue land where they belong."""
    import json

    from redis.asyncio import Redis

    other = f"{queue_name}-other"
    manager = QueueManager(load_settings({"driver": "redis", "connections": {"redis": {"queue": queue_name}}}))
    connection = manager.connection()
    try:
        await connection.bulk(collect, [(n,) for n in range(2500)])
        await connection.bulk(collect, [(n,) for n in range(2500, 2510)], queue=other)
        await connection.dispatch(collect, -1).delay(600)
        key_for = connection.broker.key_for  # type: ignore[attr-defined]
        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            taken = [json.loads(raw)["args"][0] for raw in reversed(await redis.lrange(key_for(queue_name), 0, -1))]
            assert taken == list(range(2500)), "taken from the tail: the first job given is the first run"
            others = await redis.lrange(key_for(other), 0, -1)
            assert [json.loads(raw)["args"][0] for raw in reversed(others)] == list(range(2500, 2510))
        assert await queued("redis", queue_name) == 2500
    finally:
        await manager.shutdown()
        await cleanup_queue("redis", queue_name)
        await cleanup_queue("redis", other)


class Customer(BaseModel):
    id: int


@task
async def bill(customer: Any, amount: int) -> None:
    return None


class Hooks(TaskiqMiddleware):
    """Records each hook as TaskIQ's ``kiq`` calls it; refuses one job in ``pre_send``."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, int]] = []

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        if message.args[1] == 3:
            raise ValueError("amount 3 is refused")
        self.calls.append(("pre", message.args[1]))
        return message

    async def post_send(self, message: TaskiqMessage) -> None:
        self.calls.append(("post", message.args[1]))


async def test_a_bulk_runs_every_hook_once_per_job_and_gives_each_job_its_own_tags(queue_name: str) -> None:
    """Each job's message is its own (its models' tags, not its group's first job's), each middleware's pre_send
    and post_send run once for each job sent, and a job a middleware refuses fails alone."""
    import json

    from redis.asyncio import Redis

    from queue_manager.errors import BulkDispatchError

    manager = QueueManager(load_settings({"driver": "redis", "connections": {"redis": {"queue": queue_name}}}))
    connection = manager.connection()
    hooks = Hooks()
    connection.broker.add_middlewares(hooks)
    try:
        with pytest.raises(BulkDispatchError) as caught:
            await connection.bulk(bill, [(Customer(id=n), n) for n in range(5)])
        assert [index for index, _ in caught.value.failed] == [3]
        assert "amount 3 is refused" in str(caught.value.failed[0][1])
        assert len(caught.value.sent) == 4
        assert sorted(hooks.calls) == sorted([(hook, n) for n in (0, 1, 2, 4) for hook in ("pre", "post")])
        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            raw = await redis.lrange(connection.broker.key_for(queue_name), 0, -1)  # type: ignore[attr-defined]
        tags = {json.loads(r)["args"][1]: json.loads(r)["labels"].get("tags") for r in raw}
        assert tags == {n: f"Customer:{n}" for n in (0, 1, 2, 4)}
    finally:
        await manager.shutdown()
        await cleanup_queue("redis", queue_name)
