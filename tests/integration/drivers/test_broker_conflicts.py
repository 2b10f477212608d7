"""A broker that already holds an incompatible queue or stream gets a clear, actionable error."""

from __future__ import annotations

import pytest

from queue_manager import QueueConfigurationError, QueueManager
from queue_manager.settings import load_settings
from tests.helpers import cleanup_queue, unique

pytestmark = pytest.mark.usefixtures("clean_env")


async def test_rabbitmq_queue_declared_with_other_arguments(queue_name: str) -> None:
    import aio_pika

    async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
        channel = await amqp.channel()
        await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "classic"})
    connection = QueueManager(
        load_settings({"driver": "rabbitmq", "connections": {"rabbitmq": {"queue": queue_name}}})
    ).connection()
    try:
        with pytest.raises(QueueConfigurationError) as caught:
            await connection.startup()
        message = str(caught.value)
        assert "PRECONDITION_FAILED" in message and queue_name in message
        assert "QUEUE_CONNECTIONS__RABBITMQ__OPTIONS__QUEUE_TYPE=classic" in message
        assert not connection.started
    finally:
        await cleanup_queue("rabbitmq", queue_name)


async def test_nats_stream_with_another_retention() -> None:
    import nats
    from nats.js.api import RetentionPolicy, StreamConfig

    stream, prefix = unique("S").upper(), unique("p")
    client = await nats.connect("nats://127.0.0.1:4222")
    js = client.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"], retention=RetentionPolicy.LIMITS))
    try:
        options = {"stream": stream, "subject_prefix": prefix}
        connection = QueueManager(
            load_settings({"driver": "nats", "connections": {"nats": {"options": options}}})
        ).connection()
        with pytest.raises(QueueConfigurationError) as caught:
            await connection.startup()
        message = str(caught.value)
        assert f"NATS stream '{stream}' already exists with retention=limits" in message
        assert f"nats stream rm {stream}" in message and "OPTIONS__STREAM" in message
        assert connection.broker.client.is_closed  # type: ignore[attr-defined]
    finally:
        await js.delete_stream(stream)
        await client.close()
