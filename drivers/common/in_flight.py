"""The jobs a worker has taken from its broker and not finished: kept alive, and bounding the next fetch.

Two duties shared by the drivers that hold a job while it runs (the Redis list's reservations, the
stream's pending entries, NATS's unacknowledged messages):

- **A heartbeat.** One loop per worker tells the broker, every ``interval`` seconds, that every job still
  held is alive (extends a reservation, resets an idle time, sends "in progress"), so a job that runs
  longer than the broker's redelivery timer is not handed to a second worker while it still runs.
- **How much to fetch.** A fetch takes as many jobs as the worker has free slots, so a batch never holds
  jobs the worker cannot start. A worker that knows its slots says so (``hold_at_most``: ``queue:work``'s
  receiver, and the provider in any ``taskiq worker`` process, from ``--max-async-tasks`` plus
  ``--max-prefetch``). Otherwise they are learned: TaskIQ's receiver asks for the next job only when it has
  a free slot, so each time it asks its capacity is at least "jobs held + 1".
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger("queue_manager.drivers")

T = TypeVar("T")
UNLIMITED = 1 << 30  # a worker without a limit: the fetch batch is the bound


class InFlight(Generic[T]):
    def __init__(self, interval: float, beat: Callable[[list[T]], Awaitable[None]], max_fetch: int = 1) -> None:
        self.interval = interval
        self.beat = beat
        self.max_fetch = max_fetch
        self.jobs: dict[int, T] = {}
        self.capacity: int | None = None  # the worker's slots, when it said (None: learn them)
        self.budget: int | None = None  # jobs this worker may still take (queue:work --max-jobs)
        self.proven_capacity = 1
        self._ids = itertools.count()
        self._heartbeat: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, job: T) -> int:
        """Hold ``job`` until ``discard(token)``; returns the token."""
        token = next(self._ids)
        self.jobs[token] = job
        if self.budget is not None:
            self.budget -= 1
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._keep_alive())
        return token

    def discard(self, token: int) -> T | None:
        return self.jobs.pop(token, None)

    def hold_at_most(self, slots: int | None, budget: int | None = None) -> None:
        """The worker's slots (None or 0 or less: no limit but ``max_fetch``) and, if given, how many jobs it may
        still take."""
        self.capacity = slots if slots is not None and slots > 0 else UNLIMITED
        if budget is not None:
            self.budget = budget

    def fetch_size(self) -> int:
        """How many jobs the next fetch may take (at least 1): call it when the worker asks for a job."""
        self.proven_capacity = max(self.proven_capacity, len(self.jobs) + 1)
        slots = self.capacity or self.proven_capacity
        wanted = min(self.max_fetch, slots - len(self.jobs))
        if self.budget is not None:
            wanted = min(wanted, self.budget)
        return max(1, wanted)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.jobs:
                continue
            try:
                await self.beat(list(self.jobs.values()))
            except Exception as error:  # the broker is away: the next beat tries again
                logger.warning("Could not extend running jobs (%s: %s)", type(error).__name__, error)

    def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
