"""The consume loop every broker of ours runs, written once: look at which queues are paused, take what the
worker can hold from the others, back off while the server is away, hand the jobs out one by one, and give
back those taken and never handed out.

A broker supplies the broker-specific steps:

- ``take(queues)``: jobs from these (not paused) queues, each as ``(held, delivery)``: what the broker must
  remember to give it back (a reservation, a stream entry, a message) and the ``AckableMessage`` the worker
  gets. It takes at most what the worker has room for (``InFlight.fetch_size``, a prefetch), may wait a
  bounded time for the first one (a blocking read, a pull with a timeout) and returns ``[]`` when none came;
- ``give_back(held)``: jobs taken and never started go back to their queue now, not after a redelivery timer;
- ``connection_errors``: what a lost server raises: the loop waits (``reconnect_backoff``, doubling) and takes
  again, because an exception out of ``listen()`` would end the TaskIQ worker process (taskiq#658);
- ``lost(error)``: called before each such wait, to drop connections that must not be reused;
- ``refused(error)``: such an error that is the server refusing the credentials, as the driver's
  ``BrokerAuthenticationError``: the loop raises it instead of waiting (no retry can fix a password), and the
  worker stops;
- ``recover(error)``: another error it can mend (a deleted consumer group) before taking again.

What was taken and not handed out is kept on the broker (``taken``), so a broker's ``shutdown`` gives it back
too when the worker stops before the loop's generator is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from taskiq import AckableMessage

from drivers.base.errors import BrokerAuthenticationError
from drivers.base.spec import BrokerSpec
from drivers.common.in_flight import InFlight
from drivers.common.pausing import IDLE_WHILE_PAUSED, PausedQueues
from drivers.common.poison import RejectsPoison

logger = logging.getLogger("queue_manager.drivers")

H = TypeVar("H")
Taken = tuple[H, AckableMessage]


class Consuming(RejectsPoison, Generic[H]):
    """Mixin for brokers (first in the bases): ``deliveries()`` is the consume loop, ``listen()`` (from
    ``RejectsPoison``) hands the worker only the jobs it can run."""

    spec: BrokerSpec
    queues: list[str]
    pausing: PausedQueues
    in_flight: InFlight[Any] | None = None  # the jobs it holds while they run, for a broker that fetches
    connection_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    reconnect_backoff: ClassVar[tuple[float, float]] = (0.2, 10.0)  # seconds: first wait, longest wait

    async def take(self, queues: Sequence[str]) -> Sequence[Taken[H]]:
        raise NotImplementedError

    async def give_back(self, held: list[H]) -> None:
        raise NotImplementedError

    async def rest(self) -> None:
        """Every queue of this worker is paused: wait a little before looking again. A broker that is pushed jobs
        (RabbitMQ) first stops its consumers and hands back what they delivered."""
        await asyncio.sleep(IDLE_WHILE_PAUSED)

    async def lost(self, error: BaseException) -> None:
        """The server went away (``error``, one of ``connection_errors``): drop what should not be reused."""

    def refused(self, error: BaseException) -> BrokerAuthenticationError | None:
        """``error`` (one of ``connection_errors``) as the server's refusal of the credentials, or None."""
        return None

    async def recover(self, error: Exception) -> bool:
        """Mend ``error`` and say True to take again; False lets it end the worker."""
        return False

    def hold_at_most(self, slots: int | None, budget: int | None = None) -> None:
        """The worker's slots and budget (``contract.HoldsJobs``): a fetch takes no more than it has room for."""
        if self.in_flight is not None:
            self.in_flight.hold_at_most(slots, budget)

    def jobs_held(self) -> int:
        """Jobs taken and not finished (running, or waiting for a slot)."""
        return len(self.in_flight) if self.in_flight is not None else len(self.taken)

    @property
    def taken(self) -> deque[Taken[H]]:
        """Taken from the broker, not handed to the worker yet."""
        found: deque[Taken[H]] | None = self.__dict__.get("_taken")
        if found is None:
            found = self.__dict__["_taken"] = deque()
        return found

    async def deliveries(self) -> AsyncGenerator[Any, None]:
        taken = self.taken
        first, longest = self.reconnect_backoff
        wait = first
        try:
            while True:
                if taken:
                    yield taken.popleft()[1]
                    continue
                try:
                    active = await self.pausing.active(self.queues)
                    if not active:
                        await self.rest()
                        continue
                    taken.extend(await self.take(active))
                    wait = first
                except self.connection_errors as error:
                    if (refusal := self.refused(error)) is not None:
                        raise refusal from None
                    logger.warning(
                        "Queue connection '%s' lost its %s server (%s: %s); reconnecting in %.1fs",
                        self.spec.name,
                        self.spec.driver,
                        type(error).__name__,
                        error,
                        wait,
                    )
                    await self.lost(error)
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, longest)
                except Exception as error:
                    if not await self.recover(error):
                        raise
        finally:
            await asyncio.shield(self.give_back_taken())

    async def give_back_taken(self) -> None:
        """Give back whatever was taken and not handed out (the loop ends, or the broker shuts down)."""
        taken = self.taken
        if taken:
            held = [entry[0] for entry in taken]
            taken.clear()
            await self.give_back(held)
