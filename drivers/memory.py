"""In-memory driver: TaskIQ's ``InMemoryBroker``, for tests and local runs with no server.

A job runs inside the process that dispatched it; there is no worker process
and nothing survives the process. A delayed job is scheduled on the event
loop and runs when due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from taskiq import AsyncBroker, BrokerMessage, InMemoryBroker

from drivers.delay import seconds_until_due
from drivers.options import MemoryOptions
from drivers.spec import BrokerSpec


class MemoryBroker(InMemoryBroker):
    def __init__(self, options: MemoryOptions) -> None:
        # TaskIQ keeps only 100 results by default: a batch of 101 jobs loses the first result.
        super().__init__(max_stored_results=options.max_stored_results)
        self._delayed: set[asyncio.Task[None]] = set()

    def listen_to(self, queues: Sequence[str]) -> None:
        """Queues mean nothing in memory: every job runs where it was dispatched."""

    async def kick(self, message: BrokerMessage) -> None:
        remaining = seconds_until_due(message)
        if remaining is None:
            await super().kick(message)
            return
        # Unknown tasks fail at dispatch, delayed or not.
        if self.find_task(message.task_name) is None:
            await super().kick(message)
        task = asyncio.create_task(self._kick_later(remaining, message))
        self._delayed.add(task)
        task.add_done_callback(self._delayed.discard)

    async def _kick_later(self, delay: float, message: BrokerMessage) -> None:
        await asyncio.sleep(delay)
        await super().kick(message)

    async def shutdown(self) -> None:
        for task in list(self._delayed):
            task.cancel()
        await super().shutdown()


def build(spec: BrokerSpec) -> AsyncBroker:
    return MemoryBroker(MemoryOptions.model_validate(dict(spec.options)))


async def ping(spec: BrokerSpec) -> None:
    """Always reachable: it lives in this process."""
