"""The RabbitMQ broker's control state (``base.control``): one stream per value that is set, read from its last
entry.

A value is a stream queue (``<exchange>.control <name>``) and setting it appends the new value. A read consumes
from the stream's last entry and leaves it there, so any number of workers and dashboards read at once and all
see it. (A value used to be the one message of a classic queue, read by taking it and putting it back: while one
reader held it every other saw "not set", so a paused queue's jobs ran and workers restarted unasked.) A stream
keeps its recent entries only (``x-max-length-bytes``).

The name holds a space, which no queue name may (``base.names.CONTROL_MARK``), so no work queue is ever named
like a control value; characters AMQP cannot carry are written ``#xx`` (each UTF-8 byte), and a name too long
for AMQP is replaced by its digest.

Reading never makes a stream (workers look at every queue's paused state each second), unsetting deletes it. It
keeps no counters: RabbitMQ has no atomic add, and a queue per counter per minute would be worse.

Reads go over a connection of their own, opened on the first read: a consumer that comes to a stream in the
milliseconds while RabbitMQ (3.10) is making or deleting it is refused (PRECONDITION_FAILED, "no replica on the
local node"), or has the whole connection closed (INTERNAL_ERROR, ``stream_not_found``). That must not take the
broker's publishing connection with it; the read is made again, on a new connection, once the stream is there or
gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, AMQPConnectionError
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed, DeliveryError

from drivers.base.control import ControlState
from drivers.base.names import CONTROL_MARK
from drivers.rabbitmq.connect import connect_first, unreachable
from drivers.rabbitmq.names import MAX_BYTES

READ_ATTEMPTS = 5  # a stream being made or deleted: a read is tried this often, READ_PAUSE s more each time
READ_PAUSE = 0.05
_UNSENDABLE = re.compile(r"[^a-zA-Z0-9\-_.:@,/+]")  # what pamqp refuses, and '#' (the escape) and the space


def _escaped(found: re.Match[str]) -> str:
    return "".join(f"#{byte:02x}" for byte in found.group().encode())


class RabbitMQControl(ControlState):
    # A value's stream: recent entries only (RabbitMQ drops whole segments, never the one being written).
    VALUE_ARGUMENTS = {
        "x-queue-type": "stream",
        "x-max-length-bytes": 1_000_000,
        "x-stream-max-segment-size-bytes": 100_000,
    }
    ARGUMENTS = {"x-max-length": 1, "x-overflow": "drop-head", "x-queue-type": "classic"}  # a claim's queue

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.prefix = f"{broker.exchange_name}.control{CONTROL_MARK}"
        self._reader: AbstractConnection | None = None

    def queue_name(self, name: str) -> str:
        """The queue that holds ``name``: ``<exchange>.control <name>``, written so that AMQP can carry it."""
        queue = self.prefix + _UNSENDABLE.sub(_escaped, name)
        if len(queue.encode()) > MAX_BYTES:
            queue = f"{self.prefix}#h{hashlib.sha256(name.encode()).hexdigest()[:32]}"
        return queue

    def _connection(self) -> Any:
        if self.broker.write_conn is None:
            raise RuntimeError("RabbitMQ connection is not started")
        return self.broker.write_conn

    async def get(self, name: str) -> str | None:
        for attempt in range(1, READ_ATTEMPTS):
            try:
                return await self._read(name)
            except (AMQPConnectionError, ChannelPreconditionFailed):  # the stream is being made or deleted
                await self.close()
                await asyncio.sleep(READ_PAUSE * attempt)
        return await self._read(name)

    async def _read(self, name: str) -> str | None:
        # A channel of its own: asking for a queue that does not exist closes the channel it is asked on.
        async with (await self._reading()).channel(publisher_confirms=False) as channel:
            try:
                queue = await channel.declare_queue(self.queue_name(name), passive=True)
                return await self._last(channel, queue)
            except ChannelNotFoundEntity:  # never set, or unset meanwhile
                return None

    async def _reading(self) -> AbstractConnection:
        """The connection reads go over, opened on first use (and again after RabbitMQ closed it)."""
        self._connection()  # not started: the clear error
        if self._reader is None or self._reader.is_closed:
            spec, named = self.broker.spec, self.broker.connection_options()
            label = f"Queue connection '{spec.name}' (rabbitmq control)"
            try:
                self._reader = await connect_first(
                    spec.url, connect_timeout=self.broker.connect_timeout, label=label, robust=False, **named
                )
            except CONNECTION_EXCEPTIONS as error:
                raise unreachable(spec, error) from None
        return self._reader

    async def close(self) -> None:
        """Close the reading connection (the broker shuts down)."""
        reader, self._reader = self._reader, None
        if reader is not None and not reader.is_closed:
            with contextlib.suppress(Exception):  # RabbitMQ closed it already
                await reader.close()

    async def _last(self, channel: AbstractChannel, queue: AbstractQueue) -> str | None:
        """The stream's last entry (consumed from offset "last", which starts at the last chunk RabbitMQ wrote: a
        value set after another was confirmed is always in a chunk of its own); None if the stream is deleted
        meanwhile or holds nothing within ``send_timeout``."""
        loop = asyncio.get_running_loop()
        found: asyncio.Future[str | None] = loop.create_future()

        async def delivered(message: AbstractIncomingMessage) -> None:
            if not found.done():
                found.set_result(bytes(message.body).decode())

        def cancelled(_frame: Any) -> None:  # the stream was deleted (the value unset) while it was read
            if not found.done():
                found.set_result(None)

        underlay = await channel.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(cancelled)
        await channel.set_qos(prefetch_count=1)  # a stream is consumed with a prefetch
        tag = await queue.consume(delivered, arguments={"x-stream-offset": "last"})
        try:
            async with asyncio.timeout(self.broker.send_timeout):
                return await found
        except TimeoutError:
            return None
        finally:
            with contextlib.suppress(Exception):  # already gone with its stream
                await queue.cancel(tag)

    async def set(self, name: str, value: str) -> None:
        async with self._connection().channel() as channel:
            queue = await channel.declare_queue(self.queue_name(name), durable=True, arguments=self.VALUE_ARGUMENTS)
            message = aio_pika.Message(value.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue.name)  # confirmed: it is written

    async def claim(self, name: str, ttl: int) -> bool:
        """A queue that holds one message and refuses the next (``reject-publish``, under publisher confirms)
        until that one expires; the queue goes too once unused for ``ttl``."""
        expiry = {"x-message-ttl": ttl * 1000, "x-expires": ttl * 1000}
        arguments = {**self.ARGUMENTS, "x-overflow": "reject-publish", **expiry}
        async with self._connection().channel() as channel:
            queue = await channel.declare_queue(self.queue_name(name), arguments=arguments)
            try:
                await channel.default_exchange.publish(aio_pika.Message(b"1"), routing_key=queue.name)
            except DeliveryError:  # nacked: the queue holds another's claim
                return False
        return True

    async def delete(self, name: str) -> None:
        with contextlib.suppress(ChannelNotFoundEntity):  # never set: nothing to delete
            async with self._connection().channel() as channel:
                await channel.queue_delete(self.queue_name(name))
