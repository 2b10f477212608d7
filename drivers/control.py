"""Small shared values every worker of a connection can read: the restart signal, paused queues.

Laravel keeps ``illuminate:queue:restart`` in its cache; here each connection keeps such values on its own
server, so workers on every machine see them without another service: a key on Redis, a key-value bucket
on NATS, a one-message queue on RabbitMQ (read by taking the message and putting it back). The memory
driver keeps them in the process (it has no workers elsewhere).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from taskiq import AsyncBroker


class ControlState(ABC):
    """Named values shared by the processes of one connection; None when unset."""

    @abstractmethod
    async def get(self, name: str) -> str | None: ...

    @abstractmethod
    async def set(self, name: str, value: str) -> None: ...

    @abstractmethod
    async def delete(self, name: str) -> None: ...


class RedisControl(ControlState):
    def __init__(self, broker: Any) -> None:
        self.redis = broker.sender
        self.prefix = f"{broker.prefix}control:"

    async def get(self, name: str) -> str | None:
        value = await self.redis.get(self.prefix + name)
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, name: str, value: str) -> None:
        await self.redis.set(self.prefix + name, value)

    async def delete(self, name: str) -> None:
        await self.redis.delete(self.prefix + name)


def nats_key(name: str) -> str:
    """A key-value key may hold letters, digits and ``-/_=.``: anything else is written as ``_<hex>``."""
    return re.sub(r"[^-/=.a-zA-Z0-9]", lambda found: f"_{ord(found.group()):02x}", name)


class NatsControl(ControlState):
    """A key-value bucket beside the connection's stream (``<stream>_control``), made on first use."""

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.bucket = f"{broker.options.stream}_control"
        self._kv: Any = None

    async def _store(self) -> Any:
        if self._kv is None:
            from nats.js.errors import BucketNotFoundError

            js = self.broker.js
            try:
                self._kv = await js.key_value(self.bucket)
            except BucketNotFoundError:
                self._kv = await js.create_key_value(bucket=self.bucket, history=1)
        return self._kv

    async def get(self, name: str) -> str | None:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await (await self._store()).get(nats_key(name))
        except KeyNotFoundError:  # also a deleted key
            return None
        return entry.value.decode() if entry.value is not None else None

    async def set(self, name: str, value: str) -> None:
        await (await self._store()).put(nats_key(name), value.encode())

    async def delete(self, name: str) -> None:
        await (await self._store()).delete(nats_key(name))


class RabbitMQControl(ControlState):
    """One durable queue per value (``<exchange>.control.<name>``) holding its latest message only."""

    ARGUMENTS = {"x-max-length": 1, "x-overflow": "drop-head", "x-queue-type": "classic"}

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.prefix = f"{broker.exchange_name}.control."

    async def _queue(self, name: str) -> Any:
        channel = self.broker.write_channel
        if channel is None:
            raise RuntimeError("RabbitMQ connection is not started")
        return await channel.declare_queue(self.prefix + name, durable=True, arguments=self.ARGUMENTS)

    async def get(self, name: str) -> str | None:
        queue = await self._queue(name)
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            return None
        await message.nack(requeue=True)  # put it back for the other workers
        return bytes(message.body).decode()

    async def set(self, name: str, value: str) -> None:
        import aio_pika

        queue = await self._queue(name)
        message = aio_pika.Message(value.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await self.broker.write_channel.default_exchange.publish(message, routing_key=queue.name)

    async def delete(self, name: str) -> None:
        await (await self._queue(name)).purge()


class MemoryControl(ControlState):
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, name: str) -> str | None:
        return self.values.get(name)

    async def set(self, name: str, value: str) -> None:
        self.values[name] = value

    async def delete(self, name: str) -> None:
        self.values.pop(name, None)


def control_for(broker: AsyncBroker) -> ControlState | None:
    """The control state of one of our brokers (None for a custom driver's broker that has none)."""
    existing = getattr(broker, "control_state", None)
    if isinstance(existing, ControlState):
        return existing
    kind = type(broker).__module__
    state: ControlState | None
    if kind in ("drivers.redis", "drivers.redis_stream"):
        state = RedisControl(broker)
    elif kind == "drivers.nats":
        state = NatsControl(broker)
    elif kind == "drivers.rabbitmq":
        state = RabbitMQControl(broker)
    elif kind == "drivers.memory":
        state = MemoryControl()
    else:
        return None
    broker.control_state = state  # type: ignore[attr-defined]
    return state
