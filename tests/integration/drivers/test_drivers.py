"""Each server driver against the real server on loopback: start, ping, results as JSON, clear errors."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from taskiq import TaskiqResult

from queue_manager import BrokerUnreachableError, Connection, QueueManager
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue

pytestmark = pytest.mark.usefixtures("clean_env")

CLOSED_PORT_URLS = {
    "redis": "redis://:hunter2@127.0.0.1:1/0",
    "redis_stream": "redis://:hunter2@127.0.0.1:1/0",
    "rabbitmq": "amqp://guest:hunter2@127.0.0.1:1/",
    "nats": "nats://user:hunter2@127.0.0.1:1",
}


def manager_for(driver: str, queue: str, **fields: object) -> QueueManager:
    return QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue, **fields}}}))


@pytest.fixture
async def connection(request: pytest.FixtureRequest, queue_name: str) -> AsyncIterator[Connection]:
    driver = request.param
    conn = manager_for(driver, queue_name).connection()
    await conn.startup()
    try:
        yield conn
    finally:
        await conn.shutdown()
        await cleanup_queue(driver, queue_name)


@pytest.mark.parametrize("connection", SERVER_DRIVERS, indirect=True)
async def test_startup_ping_and_shutdown(connection: Connection) -> None:
    assert connection.started
    await connection.ping()
    await connection.shutdown()
    assert not connection.started


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_unreachable_server_names_host_and_port_not_the_password(
    driver: str, queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    conn = manager_for(driver, queue_name, url=CLOSED_PORT_URLS[driver]).connection()
    for attempt in (conn.ping, conn.startup):
        started = time.monotonic()
        with pytest.raises(BrokerUnreachableError) as caught:
            await attempt()
        message = str(caught.value)
        assert "127.0.0.1:1" in message and f"'{driver}'" in message
        assert "hunter2" not in message and "hunter2" not in repr(caught.value)
        assert "***" in message
        hint = message.rpartition("for a local one: ")[2]
        assert re.search(r"(--port |-p |_PORT=)1\b", hint) and ".." not in message, f"not the URL's port: {message}"
        assert time.monotonic() - started < 15, "an unreachable server must fail fast"
    assert not conn.started
    assert "hunter2" not in caplog.text


async def test_wrong_rabbitmq_password_is_a_clear_error_without_the_password(
    queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    conn = manager_for("rabbitmq", queue_name, url="amqp://guest:not-the-password@127.0.0.1:5672/").connection()
    with pytest.raises(BrokerUnreachableError) as caught:
        await conn.startup()
    assert "127.0.0.1:5672" in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    assert "not-the-password" not in caplog.text


async def ready_soon(backend: Any, task_id: str, why: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not await backend.is_result_ready(task_id):
        if time.monotonic() > deadline:
            raise AssertionError(why)
        await asyncio.sleep(0.02)


def sample_result() -> TaskiqResult[dict[str, int]]:
    return TaskiqResult(is_err=False, return_value={"answer": 42}, execution_time=0.5)


async def read_raw_result(connection: Connection, task_id: str) -> bytes:
    """The bytes the result backend stored, read with the broker's own client library."""
    if connection.driver in ("redis", "redis_stream"):
        from redis.asyncio import Redis

        async with Redis.from_url(str(connection.spec.url)) as redis:
            raw = await redis.get(f"queues:results:{task_id}")
            ttl = await redis.ttl(f"queues:results:{task_id}")
            await redis.delete(f"queues:results:{task_id}")
        assert 0 < ttl <= 86_400, "results expire by default"
        return bytes(raw)
    if connection.driver == "rabbitmq":
        import aio_pika

        async with await aio_pika.connect(str(connection.spec.url)) as amqp:
            channel = await amqp.channel()
            queue = await channel.get_queue(f"queues.results.{task_id}")
            message = await queue.get(no_ack=True)
            await queue.delete(if_unused=False, if_empty=False)
            return message.body
    import nats

    client = await nats.connect(str(connection.spec.url))
    try:
        bucket = await client.jetstream().key_value("queue_results")
        assert 0 < ((await bucket.status()).ttl or 0) <= 86_400, "results expire by default"
        entry = await bucket.get(task_id)
        await bucket.purge(task_id)
    finally:
        await client.close()
    return bytes(entry.value or b"")


@pytest.mark.parametrize("connection", SERVER_DRIVERS, indirect=True)
async def test_results_are_stored_as_json_and_read_back(connection: Connection) -> None:
    backend = connection.broker.result_backend
    task_id = uuid.uuid4().hex
    await backend.set_result(task_id, sample_result())
    # RabbitMQ stores without waiting for a confirm, and requeues a read result asynchronously:
    # a reader polls (as wait_result does) and finds it within moments, and reading never consumes it.
    await ready_soon(backend, task_id, "a stored result is ready")
    result = await backend.get_result(task_id)
    assert result.return_value == {"answer": 42} and not result.is_err
    await ready_soon(backend, task_id, "reading a result does not consume it")
    stored = json.loads(await read_raw_result(connection, task_id))
    assert stored["return_value"] == {"answer": 42}


async def test_redis_list_and_stream_share_one_server_without_collision(queue_name: str) -> None:
    from redis.asyncio import Redis
    from taskiq import async_shared_broker

    @async_shared_broker.task(task_name=f"tests.noop.{queue_name}")
    async def noop() -> None:
        return None

    manager = QueueManager(
        load_settings(
            {"driver": "redis", "connections": {"redis": {"queue": queue_name}, "redis_stream": {"queue": queue_name}}}
        )
    )
    try:
        for name in ("redis", "redis_stream"):
            connection = manager.connection(name)
            await connection.dispatch(noop)
            await connection.dispatch(noop)
        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            assert await redis.type(f"queues:{queue_name}") == b"list"
            assert await redis.type(f"queues:stream:{queue_name}") == b"stream"
            assert await redis.llen(f"queues:{queue_name}") == 2
            assert await redis.xlen(f"queues:stream:{queue_name}") == 2
    finally:
        await manager.shutdown()
        await cleanup_queue("redis", queue_name)


@pytest.mark.parametrize("durable", [False, True])
async def test_rabbitmq_result_queues_are_transient_unless_asked(queue_name: str, durable: bool) -> None:
    import aio_pika
    from aiormq.exceptions import ChannelPreconditionFailed

    options = {"result_durable": True} if durable else {}
    conn = manager_for("rabbitmq", queue_name, options=options).connection()
    await conn.startup()
    task_id = uuid.uuid4().hex
    name = f"queues.results.{task_id}"
    try:
        await conn.broker.result_backend.set_result(task_id, sample_result())
        await ready_soon(conn.broker.result_backend, task_id, "a stored result is ready")
        async with await aio_pika.connect(str(conn.spec.url)) as amqp:
            # RabbitMQ refuses to re-declare a queue with the other durability: that tells which it is.
            channel = await amqp.channel()
            with pytest.raises(ChannelPreconditionFailed, match="durable"):
                await channel.declare_queue(name, durable=not durable, arguments=conn.broker.result_backend.arguments)
            channel = await amqp.channel()
            await channel.queue_delete(name)
    finally:
        await conn.shutdown()
        await cleanup_queue("rabbitmq", queue_name)
