"""A connection on the shared servers with a namespace of its own (Redis prefix, RabbitMQ exchange, NATS stream and
subject prefix), so a test may set control values (restart, pauses) that no other test's workers read, and remove
everything it made afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from queue_manager import Connection, QueueManager
from queue_manager.settings import load_settings
from tests.helpers import unique


def namespace_options(driver: str, namespace: str) -> dict[str, Any]:
    if driver == "redis":
        return {"prefix": f"{namespace}:"}
    if driver == "redis_stream":
        return {"prefix": f"{namespace}:stream:"}
    if driver == "rabbitmq":
        return {"exchange": namespace}
    if driver == "nats":
        return {"stream": namespace.upper(), "subject_prefix": namespace}
    return {}


def isolated_manager(driver: str, queue: str, namespace: str, url: str | None = None, **options: Any) -> QueueManager:
    connection: dict[str, Any] = {
        "queue": queue,
        "result_backend": False,
        "options": {**namespace_options(driver, namespace), **options},
    }
    if url is not None:
        connection["url"] = url
    return QueueManager(load_settings({"driver": driver, "connections": {driver: connection}}))


async def drop_namespace(driver: str, namespace: str, queues: Sequence[str] = (), control: Any = None) -> None:
    """Delete what a namespace holds on the shared servers (``control``: the control names set meanwhile, as
    ``(state, [names])``, deleted through the control state itself)."""
    if control is not None:
        state, names = control
        for name in names:
            with contextlib.suppress(Exception):
                await state.delete(name)
    if driver in ("redis", "redis_stream"):
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            keys = [key async for key in redis.scan_iter(match=f"{namespace}:*", count=1000)]
            if keys:
                await redis.delete(*keys)
    elif driver == "rabbitmq":
        import aio_pika

        async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
            for name in [*queues, f"{namespace}.dead_letter"]:
                channel = await amqp.channel()
                await channel.queue_delete(name)
            for exchange in (namespace, f"{namespace}.delay"):
                channel = await amqp.channel()
                await channel.exchange_delete(exchange)
    elif driver == "nats":
        import nats

        client = await nats.connect("nats://127.0.0.1:4222")
        try:
            js = client.jetstream()
            stream = namespace.upper()
            for name in (stream, f"KV_{stream}_control", f"KV_{stream}_control_metrics"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(name)
        finally:
            await client.close()


@contextlib.asynccontextmanager
async def isolated_connection(driver: str, queue: str | None = None, **options: Any) -> AsyncIterator[Connection]:
    """A started connection in a namespace of its own; ``connection.made_queues`` and ``connection.control_names``
    (lists the test appends to) are removed afterwards."""
    namespace = unique("ns")
    manager = isolated_manager(driver, queue or unique("q"), namespace, **options)
    connection = manager.connection()
    made: list[str] = []
    names: list[str] = []
    connection.made_queues = made  # type: ignore[attr-defined]
    connection.control_names = names  # type: ignore[attr-defined]
    connection.namespace = namespace  # type: ignore[attr-defined]
    await connection.startup()
    try:
        yield connection
    finally:
        from drivers.base.control import control_of

        state = control_of(connection.broker)
        try:
            if driver == "rabbitmq":
                await drop_namespace(driver, namespace, made, (state, names) if state else None)
        finally:
            await manager.shutdown()
            if driver != "rabbitmq":
                await drop_namespace(driver, namespace, made)
