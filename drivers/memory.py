"""In-memory driver: TaskIQ's ``InMemoryBroker``, for tests and local runs with no server.

A job runs inside the process that dispatched it, before ``kiq()`` returns
(``await_inplace``), so a test sees its effects at once; there is no worker
process and nothing survives the process. Dispatching a task this process
never imported raises ``UnknownTaskError`` at once, where a real worker would
log it and drop the job. A delayed job is scheduled on the event
loop and runs when due.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from pydantic import Field
from taskiq import AsyncBroker, BrokerMessage, InMemoryBroker
from taskiq.exceptions import UnknownTaskError

from drivers.base.contract import DriverInfo, QueueCounts
from drivers.base.control import ControlState, Entry, Pushed
from drivers.base.delay import seconds_until_due
from drivers.base.options import DriverOptions
from drivers.base.spec import BrokerSpec


class MemoryOptions(DriverOptions):
    await_inplace: bool = Field(
        True, description="run each job before dispatch returns (tests see its effects at once)"
    )
    max_stored_results: int = Field(
        10_000, ge=-1, description="results kept in memory (oldest dropped first); -1 keeps all"
    )


DRIVER = DriverInfo("drivers.memory", MemoryOptions, shares_results=False, in_process=True)


class MemoryControl(ControlState):
    """The memory driver's control state: in the process (it has no workers elsewhere)."""

    keeps_insight = True

    def __init__(self) -> None:
        self.maps: dict[str, tuple[dict[str, str], float]] = {}  # insight: name -> (fields, when it expires)
        self.lists: dict[str, tuple[list[str], float]] = {}  # insight: name -> (values newest first, expiry)
        self.values: dict[str, str] = {}
        self.claims: dict[str, float] = {}  # name -> when it expires (time.monotonic)
        self.locks: dict[str, tuple[str, float]] = {}  # name -> (owner, when it expires)
        self.hits: dict[str, list[float]] = {}  # name -> the times of the hits still in the window

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

    async def lock(self, name: str, owner: str, ttl: float) -> bool:
        now = time.monotonic()
        holder = self.locks.get(name)
        if holder is not None and holder[0] != owner and holder[1] > now:
            return False
        self.locks[name] = (owner, now + ttl)
        return True

    async def unlock(self, name: str, owner: str) -> bool:
        holder = self.locks.get(name)
        if holder is None or holder[0] != owner or holder[1] <= time.monotonic():
            return False
        del self.locks[name]
        return True

    async def hit(self, name: str, limit: int, window: float) -> float:
        now = time.monotonic()
        hits = [at for at in self.hits.get(name, []) if at > now - window]
        if len(hits) < limit:
            self.hits[name] = [*hits, now]
            return 0.0
        self.hits[name] = hits
        return max(0.001, hits[0] + window - now)

    async def claim(self, name: str, ttl: int) -> bool:
        now = time.monotonic()
        self.claims = {key: until for key, until in self.claims.items() if until > now}
        if name in self.claims:
            return False
        self.claims[name] = now + ttl
        return True

    async def write(self, writes: Sequence[Entry | Pushed]) -> None:
        now = time.monotonic()
        for write in writes:
            if isinstance(write, Entry):
                fields = self._live(self.maps, write.name, {})
                fields[write.field] = write.value
                self.maps[write.name] = (fields, now + write.ttl)
            else:
                values = [*reversed(write.values), *self._live(self.lists, write.name, [])][: write.cap]
                self.lists[write.name] = (values, now + write.ttl)

    @staticmethod
    def _live(store: dict[str, tuple[Any, float]], name: str, empty: Any) -> Any:
        found = store.get(name)
        return found[0] if found is not None and found[1] > time.monotonic() else empty

    async def entries(self, names: list[str]) -> list[dict[str, str]]:
        return [dict(self._live(self.maps, name, {})) for name in names]

    async def listed(self, name: str, count: int) -> list[str]:
        return list(self._live(self.lists, name, []))[:count]

    async def forget(self, name: str, fields: list[str]) -> None:
        for field in fields:
            self._live(self.maps, name, {}).pop(field, None)


class UnknownInMemoryTaskError(UnknownTaskError):
    """TaskIQ's UnknownTaskError (``task_name`` is the task's name), with how to fix it."""

    __template__ = (
        "Cannot send unknown task {task_name!r}: it is not known in this process. The memory driver runs jobs "
        "in-process, so the module that declares the task must be imported before you dispatch it "
        "(a real worker that never imported it would record the job as failed)"
    )


class MemoryBroker(InMemoryBroker):
    def __init__(self, options: MemoryOptions) -> None:
        # TaskIQ keeps only 100 results by default: a batch of 101 jobs loses the first result.
        super().__init__(max_stored_results=options.max_stored_results, await_inplace=options.await_inplace)
        self._delayed: set[asyncio.Task[None]] = set()

    def listen_to(self, queues: Sequence[str]) -> None:
        """Queues mean nothing in memory: every job runs where it was dispatched."""

    def why_no_worker(self) -> str:
        return "the memory driver runs each job inside the process that dispatches it, so it has no worker"

    @cached_property
    def control_state(self) -> MemoryControl:
        return MemoryControl()

    async def kick(self, message: BrokerMessage) -> None:
        if self.find_task(message.task_name) is None:
            raise UnknownInMemoryTaskError(task_name=message.task_name)
        remaining = seconds_until_due(message)
        if remaining is None:
            await super().kick(message)
            return
        task = asyncio.create_task(self._kick_later(remaining, message))
        self._delayed.add(task)
        task.add_done_callback(self._delayed.discard)

    async def _kick_later(self, delay: float, message: BrokerMessage) -> None:
        await asyncio.sleep(delay)
        await super().kick(message)

    async def size(self, queue: str) -> int:
        """Delayed jobs not yet due (any other job ran, or is running, as it was dispatched)."""
        return len(self._delayed)

    async def counts(self, queue: str) -> QueueCounts:
        """Nothing waits: every job runs where it is dispatched; delayed ones wait on the event loop."""
        return QueueCounts(0, len(self._delayed), None)

    async def clear(self, queue: str) -> int:
        """Cancel the delayed jobs not yet due; returns how many."""
        waiting = [task for task in self._delayed if not task.done()]
        for task in waiting:
            task.cancel()
        self._delayed.difference_update(waiting)  # a cancelled task is done only on the next loop turn
        return len(waiting)

    async def shutdown(self) -> None:
        for task in list(self._delayed):
            task.cancel()
        await super().shutdown()


def build(spec: BrokerSpec) -> AsyncBroker:
    return MemoryBroker(MemoryOptions.model_validate(dict(spec.options)))


async def ping(spec: BrokerSpec) -> None:
    """Always reachable: it lives in this process."""
