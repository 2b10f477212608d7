"""The RabbitMQ broker's control state (``base.control``): one durable queue per value that is set
(``<exchange>.control.<name>``), holding its latest message only.

Reading never makes one (workers look at every queue's paused state each second), unsetting deletes it. It
keeps no counters: RabbitMQ has no atomic add, and a queue per counter per minute would be worse.
"""

from __future__ import annotations

import contextlib
from typing import Any

import aio_pika
from aiormq.exceptions import ChannelNotFoundEntity

from drivers.base.control import ControlState


class RabbitMQControl(ControlState):
    ARGUMENTS = {"x-max-length": 1, "x-overflow": "drop-head", "x-queue-type": "classic"}

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.prefix = f"{broker.exchange_name}.control."

    def _connection(self) -> Any:
        if self.broker.write_conn is None:
            raise RuntimeError("RabbitMQ connection is not started")
        return self.broker.write_conn

    async def get(self, name: str) -> str | None:
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
        async with self._connection().channel() as channel:
            queue = await channel.declare_queue(self.prefix + name, durable=True, arguments=self.ARGUMENTS)
            message = aio_pika.Message(value.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue.name)

    async def delete(self, name: str) -> None:
        with contextlib.suppress(ChannelNotFoundEntity):  # never set: nothing to delete
            async with self._connection().channel() as channel:
                await channel.queue_delete(self.prefix + name)
