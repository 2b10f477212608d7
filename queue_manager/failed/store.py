"""The failed-jobs store contract (Laravel's ``FailedJobProviderInterface``), shared by every driver.

Each store provides a few primitives (get one, list ids by prefix, remove one, delete older than); the id
rules live here once, so every store treats a short id the same way: ``find``/``forget`` take a full id or
a prefix of at least ``MIN_PREFIX`` characters that matches one job; a prefix that matches several raises
``QueueConfigurationError`` naming them (rather than None, which would read as "no such job").
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from drivers.base.errors import QueueConfigurationError
from queue_manager.failed.record import FailedJob, utc

MIN_PREFIX = 6  # shortest id prefix accepted by find/forget
FULL_ID = 36  # a uuid4 as text: no prefix search needed


def hours_ago(hours: float) -> datetime:
    """The moment ``hours`` ago, in UTC (``flush(hours)``, ``queue:prune-failed --hours``)."""
    if not math.isfinite(hours) or hours < 0:
        raise QueueConfigurationError(f"hours must be a number of hours >= 0, got {hours!r}.")
    return datetime.now(UTC) - timedelta(hours=hours)


class FailedJobStore(ABC):
    """Where failed jobs are kept. ``all`` lists newest first; stores connect on first use."""

    @abstractmethod
    async def log(self, job: FailedJob) -> None: ...

    @abstractmethod
    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        """Newest first; at most ``limit`` of them."""

    @abstractmethod
    async def count(self, connection: str | None = None, queue: str | None = None) -> int: ...

    @abstractmethod
    async def close(self) -> None: ...

    # -- primitives behind find/forget/flush/prune --------------------------------------------------
    @abstractmethod
    async def get(self, id: str) -> FailedJob | None:
        """The job with exactly this id."""

    @abstractmethod
    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` ids that start with ``prefix`` (two tell an ambiguous prefix)."""

    @abstractmethod
    async def remove(self, id: str) -> bool:
        """Delete the job with exactly this id; False if there was none."""

    @abstractmethod
    async def delete_before(self, before: datetime | None) -> int:
        """Delete jobs that failed before ``before`` (every job for None); how many were deleted."""

    # -- Laravel's interface ------------------------------------------------------------------------
    async def find(self, id: str) -> FailedJob | None:
        """The job with this id, or with the one id this prefix (>= 6 characters) starts."""
        id = id.strip()
        if not id:
            return None
        job = await self.get(id)
        if job is not None or len(id) < MIN_PREFIX or len(id) >= FULL_ID:
            return job
        matches = await self.ids_starting_with(id, limit=2)
        if len(matches) > 1:
            raise QueueConfigurationError(
                f"The failed job id {id!r} is ambiguous: it starts {', '.join(matches)} (and maybe more). "
                "Give more of the id (python artisan queue:failed lists them)."
            )
        return await self.get(matches[0]) if matches else None

    async def forget(self, id: str) -> bool:
        """Delete one job (full id or unique prefix, as ``find``); False if none matched."""
        if await self.remove(id.strip()):
            return True
        job = await self.find(id)
        return job is not None and await self.remove(job.id)

    async def flush(self, hours: float | None = None) -> int:
        """Delete every job, or those that failed more than ``hours`` ago."""
        return await self.delete_before(None if hours is None else hours_ago(hours))

    async def prune(self, before: datetime) -> int:
        """Delete jobs that failed before ``before`` (a naive datetime is taken as UTC)."""
        return await self.delete_before(utc(before))


class LazyStore(FailedJobStore):
    """Builds the real store on first use, so choosing it at boot imports nothing heavy (SQLAlchemy ~50 ms)."""

    def __init__(self, build: Callable[[], FailedJobStore]) -> None:
        self._build = build
        self._store: FailedJobStore | None = None

    @property
    def store(self) -> FailedJobStore:
        if self._store is None:
            self._store = self._build()
        return self._store

    async def log(self, job: FailedJob) -> None:
        await self.store.log(job)

    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        return await self.store.all(connection, queue, limit)

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        return await self.store.count(connection, queue)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()

    async def get(self, id: str) -> FailedJob | None:
        return await self.store.get(id)

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return await self.store.ids_starting_with(prefix, limit)

    async def remove(self, id: str) -> bool:
        return await self.store.remove(id)

    async def delete_before(self, before: datetime | None) -> int:
        return await self.store.delete_before(before)
