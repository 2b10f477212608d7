"""RabbitMQ pushes jobs; the consume loop takes them. One consumer per queue a worker serves and that is not
paused, each putting what RabbitMQ delivers into one inbox, which ``take`` drains (up to the prefetch).

Pausing a queue cancels its consumer, so RabbitMQ sends this worker nothing more from it; what it delivered
before the cancel is handed back (``nack``, requeued) as the loop meets it. aio-pika's robust channel
re-creates the consumers after a reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

Delivered = tuple[str, AbstractIncomingMessage]  # (the queue it came from, the message)


class Inbox:
    def __init__(self) -> None:
        self.messages: asyncio.Queue[Delivered] = asyncio.Queue()
        self.consuming: dict[str, tuple[AbstractQueue, str]] = {}  # queue name -> (queue, consumer tag)

    async def follow(self, queues: Mapping[str, tuple[AbstractQueue, dict[str, Any]]], active: Sequence[str]) -> None:
        """Consume exactly the ``active`` queues of ``queues`` (name -> declared queue, consumer arguments)."""
        for name in [name for name in self.consuming if name not in active]:
            queue, tag = self.consuming.pop(name)
            await queue.cancel(tag)
        for name in active:
            if name not in self.consuming:
                queue, arguments = queues[name]
                tag = await queue.consume(self._receiver(name), **arguments)
                self.consuming[name] = (queue, tag)

    def _receiver(self, name: str) -> Any:
        async def receive(message: AbstractIncomingMessage) -> None:
            self.messages.put_nowait((name, message))

        return receive

    async def get(self, most: int, wait: float) -> list[Delivered]:
        """Up to ``most`` deliveries; waits at most ``wait`` seconds for the first, else returns none."""
        got: list[Delivered] = []
        if self.messages.empty():
            try:
                async with asyncio.timeout(wait):
                    got.append(await self.messages.get())
            except TimeoutError:
                return got
        while len(got) < most and not self.messages.empty():
            got.append(self.messages.get_nowait())
        return got

    def drain(self) -> list[AbstractIncomingMessage]:
        """Whatever is still waiting (the worker stops: hand it back)."""
        left = []
        while not self.messages.empty():
            left.append(self.messages.get_nowait()[1])
        return left
