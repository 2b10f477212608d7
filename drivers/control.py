"""Small shared values every worker of a connection can read: the restart signal, paused queues.

Laravel keeps ``illuminate:queue:restart`` in its cache; here each connection keeps such values on its own
server, so workers on every machine see them without another service: a key on Redis, a key-value bucket
on NATS, a one-message queue on RabbitMQ (read by taking the message and putting it back). The memory
driver keeps them in the process (it has no workers elsewhere).
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from typing import Any

from taskiq import AsyncBroker

RESTART_KEY = "restart"  # the value queue:restart sets (a timestamp); workers stop when it changes


def paused_key(queue: str) -> str:
    """The control value that marks ``queue`` paused (``Connection.pause`` sets it, workers read it)."""
    return f"paused:{queue}"


class ControlState(ABC):
    """Named values shared by the processes of one connection; None when unset."""

    @abstractmethod
    async def get(self, name: str) -> str | None: ...

    @abstractmethod
    async def set(self, name: str, value: str) -> None: ...

    @abstractmethod
    async def delete(self, name: str) -> None: ...

    async def add(self, name: str, amount: int, ttl: int) -> None:
        """Add to a counter that expires ``ttl`` seconds after it was made (the dashboard's throughput)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no counters")

    async def counters(self, names: list[str]) -> list[int] | None:
        """The counters' values (0 for one never added to); None if this state keeps no counters."""
        return None


class RedisControl(ControlState):
    def __init__(self, broker: Any) -> None:
        self.redis = broker.sender
        self.prefix = f"{broker.prefix}control:"
        self.cluster = bool(getattr(broker, "cluster", False))

    async def get(self, name: str) -> str | None:
        value = await self.redis.get(self.prefix + name)
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, name: str, value: str) -> None:
        await self.redis.set(self.prefix + name, value)

    async def delete(self, name: str) -> None:
        await self.redis.delete(self.prefix + name)

    async def add(self, name: str, amount: int, ttl: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(self.prefix + name, amount)
            pipe.expire(self.prefix + name, ttl, nx=True)
            await pipe.execute()

    async def counters(self, names: list[str]) -> list[int] | None:
        keys = [self.prefix + name for name in names]
        # A cluster refuses MGET across slots; redis-py's mget_nonatomic asks each slot's node and keeps the order.
        values = await (self.redis.mget_nonatomic(keys) if self.cluster else self.redis.mget(keys))
        return [int(value or 0) for value in values]


def nats_key(name: str) -> str:
    """A key-value key may hold letters, digits and ``-/_=.``: anything else is written as ``_<hex>``."""
    return re.sub(r"[^-/=.a-zA-Z0-9]", lambda found: f"_{ord(found.group()):02x}", name)


class NatsControl(ControlState):
    """A key-value bucket beside the connection's stream (``<stream>_control``), made on first use."""

    METRICS_TTL = 3600.0  # counters live in a bucket of their own, whose entries expire

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.bucket = f"{broker.options.stream}_control"
        self._kv: dict[bool, Any] = {}

    async def _store(self, metrics: bool = False) -> Any:
        if metrics not in self._kv:
            from drivers.nats import replicas_setting
            from drivers.nats_results import open_bucket

            bucket = f"{self.bucket}_metrics" if metrics else self.bucket
            ttl = self.METRICS_TTL if metrics else None
            replicas = self.broker.options.replicas
            setting = replicas_setting(self.broker.spec)
            self._kv[metrics] = await open_bucket(self.broker.js, bucket, replicas, setting, ttl=ttl)
        return self._kv[metrics]

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

    async def add(self, name: str, amount: int, ttl: int) -> None:
        """Read, add, write back only if nobody wrote meanwhile (the key's revision), else again."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        store, key = await self._store(metrics=True), nats_key(name)
        for _ in range(20):
            try:
                entry = await store.get(key)
            except KeyNotFoundError:
                try:
                    await store.create(key, str(amount).encode())
                    return
                except KeyWrongLastSequenceError:
                    continue
            try:
                await store.update(key, str(int(entry.value or b"0") + amount).encode(), last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue

    async def counters(self, names: list[str]) -> list[int] | None:
        from nats.js.errors import KeyNotFoundError

        store, values = await self._store(metrics=True), []
        for name in names:
            try:
                values.append(int((await store.get(nats_key(name))).value or b"0"))
            except KeyNotFoundError:
                values.append(0)
        return values


class RabbitMQControl(ControlState):
    """One durable queue per value that is set (``<exchange>.control.<name>``), holding its latest message only;
    reading never makes one (workers look at every queue's paused state each second), unsetting deletes it.
    It keeps no counters: RabbitMQ has no atomic add, and a queue per counter per minute would be worse."""

    ARGUMENTS = {"x-max-length": 1, "x-overflow": "drop-head", "x-queue-type": "classic"}

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.prefix = f"{broker.exchange_name}.control."

    def _connection(self) -> Any:
        if self.broker.write_conn is None:
            raise RuntimeError("RabbitMQ connection is not started")
        return self.broker.write_conn

    async def get(self, name: str) -> str | None:
        from aiormq.exceptions import ChannelNotFoundEntity

        # A channel of its own: asking for a queue that does not exist closes the channel it is asked on.
        async with self._connection().channel() as channel:
            try:
                queue = await channel.declare_queue(self.prefix + name, passive=True)
            except ChannelNotFoundEntity:
                return None
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                return None
            await message.nack(requeue=True)  # put it back for the other workers
            return bytes(message.body).decode()

    async def set(self, name: str, value: str) -> None:
        import aio_pika

        async with self._connection().channel() as channel:
            queue = await channel.declare_queue(self.prefix + name, durable=True, arguments=self.ARGUMENTS)
            message = aio_pika.Message(value.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue.name)

    async def delete(self, name: str) -> None:
        from aiormq.exceptions import ChannelNotFoundEntity

        with contextlib.suppress(ChannelNotFoundEntity):  # never set: nothing to delete
            async with self._connection().channel() as channel:
                await channel.queue_delete(self.prefix + name)


class MemoryControl(ControlState):
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, name: str) -> str | None:
        return self.values.get(name)

    async def set(self, name: str, value: str) -> None:
        self.values[name] = value

    async def delete(self, name: str) -> None:
        self.values.pop(name, None)

    async def add(self, name: str, amount: int, ttl: int) -> None:
        self.values[name] = str(int(self.values.get(name, "0")) + amount)

    async def counters(self, names: list[str]) -> list[int] | None:
        return [int(self.values.get(name, "0")) for name in names]


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
