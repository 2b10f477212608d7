"""Delays that cannot work are refused at dispatch, naming the limit, on every driver; a job whose ``eta``
(label or header) is unusable when it arrives is a poison message: recorded, acknowledged, never a crash."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from taskiq import AckableMessage
from taskiq.exceptions import SendTaskError
from taskiq.utils import maybe_awaitable

from drivers.common.poison import PoisonMessage
from queue_manager import Connection, QueueConfigurationError, QueueManager, task
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue, push_foreign, unique

pytestmark = pytest.mark.usefixtures("clean_env")
LIMIT = "366 days"


@task(name="tests.hostile.delays.numbered")
async def numbered(number: int) -> int:
    return number


@pytest.fixture
async def connection_on(queue_name: str) -> AsyncIterator[Callable[..., Connection]]:
    made: list[tuple[QueueManager, str, dict[str, Any]]] = []

    def make(driver: str, worker: bool = False, **options: Any) -> Connection:
        if driver == "rabbitmq":
            options.setdefault("exchange", unique("x"))  # its delay queues are this test's own
        fields: dict[str, Any] = {"queue": queue_name, "options": options}
        manager = QueueManager(load_settings({"driver": driver, "connections": {driver: fields}}))
        made.append((manager, driver, options))
        connection = manager.connection()
        connection.broker.is_worker_process = worker
        return connection

    yield make
    for manager, driver, options in made:
        await manager.shutdown()
        if driver != "memory":
            await cleanup_queue(driver, queue_name)
        if driver == "rabbitmq":
            await delete_exchange(options["exchange"])


async def delete_exchange(exchange: str) -> None:
    """Drop a test's own exchange, its dead-letter queue and every delay queue it may have made."""
    import aio_pika

    from drivers.rabbitmq.delay_queues import BUCKETS, queue_name

    async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
        channel = await amqp.channel()
        for name in [f"{exchange}.dead_letter", *(queue_name(exchange, bucket) for bucket in BUCKETS)]:
            await channel.queue_delete(name)  # a queue that does not exist is fine
        for name in (exchange, f"{exchange}.delay"):
            await channel.exchange_delete(name)


def cause_of(error: BaseException) -> BaseException:
    return error.__cause__ if isinstance(error, SendTaskError) and error.__cause__ else error


IMPOSSIBLE = {
    "inf": float("inf"),
    "nan": float("nan"),
    "a trillion seconds": 1e12,
    "400 days": timedelta(days=400),
    "year 9999": datetime(9999, 1, 1),
}


@pytest.mark.parametrize("driver", [*SERVER_DRIVERS, "memory"])
@pytest.mark.parametrize("when", IMPOSSIBLE.values(), ids=IMPOSSIBLE.keys())
async def test_a_delay_that_cannot_work_is_refused_at_dispatch_naming_the_limit(
    driver: str, when: Any, connection_on: Callable[..., Connection]
) -> None:
    connection = connection_on(driver)
    with pytest.raises((QueueConfigurationError, SendTaskError)) as caught:
        await connection.dispatch(numbered, 1).delay(when)
    error = cause_of(caught.value)
    assert isinstance(error, QueueConfigurationError) and LIMIT in str(error), repr(error)
    if connection.started:
        assert await connection.size() == 0, "nothing was sent"


@pytest.mark.parametrize("driver", [*SERVER_DRIVERS, "memory"])
@pytest.mark.parametrize("labels", [{"delay": float("inf")}, {"delay": 1e12}, {"eta": "abc"}, {"eta": "nan"}])
async def test_taskiq_labels_with_an_impossible_delay_are_refused_by_every_broker(
    driver: str, labels: dict[str, Any], connection_on: Callable[..., Connection]
) -> None:
    connection = connection_on(driver)
    await connection.startup()
    with pytest.raises(SendTaskError) as caught:
        await numbered.kicker().with_broker(connection.broker).with_labels(**labels).kiq(1)
    error = cause_of(caught.value)
    assert isinstance(error, QueueConfigurationError), repr(error)
    assert LIMIT in str(error) or "not a number" in str(error), str(error)
    assert await connection.size() == 0


@pytest.mark.parametrize("driver", [*SERVER_DRIVERS, "memory"])
async def test_the_longest_delay_is_accepted(driver: str, connection_on: Callable[..., Connection]) -> None:
    connection = connection_on(driver)
    handle = await connection.dispatch(numbered, 1).delay(timedelta(days=365))
    assert handle.task_id
    if driver in ("redis", "redis_stream", "nats"):
        assert await connection.size() == 1, "it waits in the broker"


# -- on receipt -----------------------------------------------------------------------------------------


def raw_job(labels: dict[str, Any]) -> bytes:
    """A TaskIQ message of a task this process knows, as some other producer might send it."""
    return json.dumps(
        {
            "task_id": unique("id"),
            "task_name": numbered.task_name,
            "labels": labels,
            "labels_types": {},
            "args": [7],
            "kwargs": {},
        }
    ).encode()


async def serve_until_good(connection: Connection, wanted: int, within: float = 60) -> tuple[list[Any], list[str]]:
    """Run the worker side of ``connection`` until ``wanted`` good jobs came; returns them and the poison
    reasons the broker reported (it acknowledges poison itself)."""
    broker: Any = connection.broker
    poisoned: list[str] = []

    async def record(poison: PoisonMessage) -> None:
        poisoned.append(f"{poison.reason}: {poison.error}")

    broker.poison_handler = record
    await connection.startup()
    good: list[Any] = []
    deliveries = broker.listen()

    async def take() -> None:
        async for delivery in deliveries:
            data = delivery.data if isinstance(delivery, AckableMessage) else delivery
            good.append(json.loads(data)["args"])
            if isinstance(delivery, AckableMessage):
                await maybe_awaitable(delivery.ack())
            if len(good) >= wanted:
                return

    try:
        await asyncio.wait_for(take(), within)
    finally:
        await deliveries.aclose()
    return good, poisoned


async def leftover(driver: str, queue: str, within: float = 30) -> int:
    """Messages still held anywhere for ``queue`` (waiting, reserved or unacknowledged), read until none is left
    or ``within`` seconds passed: a server may apply an acknowledgement a moment after it was sent (NATS
    processes acks apart from the requests of other clients)."""
    deadline = time.monotonic() + within
    while True:
        held = await held_now(driver, queue)
        if not held or time.monotonic() > deadline:
            return held
        await asyncio.sleep(0.1)


async def held_now(driver: str, queue: str) -> int:
    if driver in ("redis", "redis_stream"):
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            if driver == "redis":
                return int(await redis.llen(f"queues:{queue}")) + int(await redis.zcard(f"queues:{queue}:reserved"))
            return int(await redis.xlen(f"queues:stream:{queue}"))
    from tests.helpers import queued

    return await queued(driver, queue)


BAD_ETA_LABELS = ["abc", "inf", "nan", str(time.time() + 10 * 366 * 86400)]


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_a_bad_eta_label_on_receipt_is_poison_not_a_crash(
    driver: str, queue_name: str, connection_on: Callable[..., Connection]
) -> None:
    connection = connection_on(driver, worker=True)
    await connection.startup()
    for eta in BAD_ETA_LABELS:
        await push_foreign(driver, queue_name, [raw_job({"eta": eta})])
    await connection.dispatch(numbered, 1)
    good, poisoned = await serve_until_good(connection, 1)
    assert good == [[1]]
    assert len(poisoned) == len(BAD_ETA_LABELS) and all("eta" in reason for reason in poisoned), poisoned
    await connection.shutdown()
    assert await leftover(driver, queue_name) == 0, "the poison messages were acknowledged"


@pytest.mark.parametrize("driver", ["nats", "rabbitmq"])
@pytest.mark.parametrize("eta", ["abc", "inf", "-inf", "nan", "1e300"])
async def test_a_bad_eta_header_on_receipt_is_poison_not_a_crash(
    driver: str, eta: str, queue_name: str, connection_on: Callable[..., Connection]
) -> None:
    connection = connection_on(driver, worker=True)
    await connection.startup()
    await push_foreign(driver, queue_name, [raw_job({})], headers={"eta": eta})
    await connection.dispatch(numbered, 1)
    good, poisoned = await serve_until_good(connection, 1)
    assert good == [[1]] and len(poisoned) == 1 and "eta" in poisoned[0], (good, poisoned)
    await connection.shutdown()
    assert await leftover(driver, queue_name) == 0, "the poison message was acknowledged"


async def test_a_nats_job_due_later_is_still_handed_back_until_due(
    queue_name: str, connection_on: Callable[..., Connection]
) -> None:
    connection = connection_on("nats", worker=True)
    await connection.startup()
    due = time.time() + 2
    await push_foreign("nats", queue_name, [raw_job({})], headers={"eta": str(due)})
    good, poisoned = await serve_until_good(connection, 1)
    assert good == [[7]] and poisoned == []
    assert time.time() >= due - 0.1 and not math.isnan(due)
