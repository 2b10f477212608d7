"""What both Redis brokers do with the jobs they hold (a list's reservations, a stream's pending entries).

Jobs taken and never started go back to their queue at once, and a stopping worker first writes what its
batcher queued (results, acknowledgements), then gives back every job it still holds, so none waits for
``retry_after`` or the idle timeout. Each broker says how its jobs go back (``return_jobs``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from redis.exceptions import ReadOnlyError

from drivers.base.errors import BrokerAuthenticationError
from drivers.base.spec import BrokerSpec
from drivers.common.consuming import Consuming
from drivers.common.in_flight import InFlight
from drivers.redis.batch import RedisBatcher
from drivers.redis.connecting import FETCH_ERRORS, refusal


class RedisHolding(Consuming[int]):
    connection_errors: ClassVar[tuple[type[BaseException], ...]] = FETCH_ERRORS
    in_flight: InFlight[Any]
    batcher: RedisBatcher
    sender: Any
    spec: BrokerSpec

    async def lost(self, error: BaseException) -> None:
        """READONLY: the pooled connections point at a server that is no master now; new ones ask Sentinel
        again (a cluster's client follows its own redirects)."""
        pool = getattr(self.sender, "connection_pool", None)
        if isinstance(error, ReadOnlyError) and pool is not None:
            await pool.disconnect()

    def refused(self, error: BaseException) -> BrokerAuthenticationError | None:
        """The user or password changed under a running worker: its reconnects are refused (WRONGPASS)."""
        return refusal(self.spec, error)

    async def return_jobs(self, held: list[Any]) -> None:
        """Put these held jobs back where another worker takes them now."""
        raise NotImplementedError

    async def give_back(self, held: list[int]) -> None:
        jobs = [job for token in held if (job := self.in_flight.discard(token)) is not None]
        if jobs:
            await self.return_jobs(jobs)

    async def shutdown(self) -> None:
        """Every job still held, running or not, goes back now."""
        self.in_flight.stop()
        self.taken.clear()  # their jobs are in in_flight too: given back below
        await self.batcher.drain()
        if self.in_flight.jobs:
            await self.return_jobs(list(self.in_flight.jobs.values()))
            self.in_flight.jobs.clear()
        await super().shutdown()  # type: ignore[misc]
