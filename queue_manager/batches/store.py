"""The batch store contract: a batch's row, each of its jobs' outcomes by job id, and claims.

Laravel keeps a ``pending_jobs`` counter that each run decrements, so a job delivered twice (a worker killed after
the job ran, before it was acknowledged) counts twice and the batch finishes early or never. Here a store keeps
each job's outcome under its job id (a set, not a counter): recording the same outcome twice changes nothing,
and the counts are the sizes of those sets. The move to "finished" is one compare-and-set (``finished_at`` set
only where it is still empty), so of several workers recording the last jobs at once exactly one is told
``finished_now``. ``claim`` is the same idea for callbacks and chain links: a key taken once, by one owner.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from drivers.base.errors import QueueConfigurationError

Outcome = Literal["d", "f", "s"]
DONE: Outcome = "d"  # a job's outcome: succeeded,
FAILED: Outcome = "f"  # failed for good,
SKIPPED: Outcome = "s"  # never ran (the chain it was in stopped before it)


def utc_now() -> datetime:
    return datetime.now(UTC)


def oldest(*moments: datetime) -> datetime:
    """The cutoff of the longest prune window: a claim older than that belongs to no batch or chain kept."""
    return min(moments)


def hours_ago(hours: float) -> datetime:
    if not math.isfinite(hours) or hours < 0:
        raise QueueConfigurationError(f"hours must be a number of hours >= 0, got {hours!r}.")
    return utc_now() - timedelta(hours=hours)


@dataclass
class BatchRow:
    """What a store keeps of one batch."""

    id: str
    name: str
    total_jobs: int
    options: dict[str, Any]
    created_at: datetime
    done: int = 0
    failed: int = 0
    skipped: int = 0
    failed_job_ids: list[str] = field(default_factory=list)
    cancelled_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def pending(self) -> int:
        return max(0, self.total_jobs - self.done - self.failed - self.skipped)


@dataclass
class Recorded:
    """A job's outcome recorded: the batch after it, whether this call moved the batch to finished (the one
    caller that did), and whether this job was new to the store (False: a re-delivered job)."""

    row: BatchRow
    finished_now: bool
    new: bool


class BatchStore(ABC):
    @property
    @abstractmethod
    def where(self) -> str:
        """The store for people (host:port, masked URL): what an error names."""

    @abstractmethod
    async def create(self, row: BatchRow) -> None: ...

    @abstractmethod
    async def add_jobs(self, id: str, count: int) -> None:
        """``count`` more jobs (``batch.add``): the batch is not finished any more."""

    @abstractmethod
    async def record(self, id: str, job_id: str, outcome: Outcome) -> Recorded | None:
        """Record one job's outcome by its id; None for an unknown batch. A job recorded failed may later be
        recorded done (``queue:retry-batch``); anything else recorded twice is a no-op."""

    @abstractmethod
    async def find(self, id: str, with_failed_ids: bool = True) -> BatchRow | None:
        """The batch with its counts (and the ids of its failed jobs, unless ``with_failed_ids`` is False)."""

    @abstractmethod
    async def all(self, limit: int = 50) -> list[BatchRow]:
        """Newest first."""

    @abstractmethod
    async def cancel(self, id: str) -> bool:
        """Mark it cancelled (its queued jobs skip themselves); False if unknown or cancelled already."""

    @abstractmethod
    async def resume(self, id: str) -> bool:
        """Clear its cancelled mark (``queue:retry-batch``: a retried job of a cancelled batch would skip itself
        and its work would never be done); False if unknown or not cancelled."""

    @abstractmethod
    async def forget_failures(self, id: str, job_ids: list[str], skipped: Sequence[str] = ()) -> None:
        """Those failed jobs are being retried: pending again, the batch not finished, and its finish callbacks
        sendable again (``queue:retry-batch``): ``then`` runs if they all succeed; ``finally`` ran once already.
        ``skipped``: the later links of a retried chain link, recorded skipped when it failed, pending again too
        (in the same write, so the batch cannot finish before they run)."""

    @abstractmethod
    async def claim(self, key: str, owner: str) -> bool:
        """Take ``key`` for ``owner`` if nobody holds it: True if it was free or is already ``owner``'s."""

    @abstractmethod
    async def owner(self, key: str) -> str | None: ...

    @abstractmethod
    async def prune(self, finished_before: datetime, unfinished_before: datetime, cancelled_before: datetime) -> int:
        """Delete finished batches older than the first, unfinished ones older than the second, cancelled ones
        older than the third (Laravel's queue:prune-batches); returns how many. A deleted batch's claims go with it;
        chains' claims (which no batch row owns) made before the oldest of the three go too."""

    @abstractmethod
    async def delete(self, id: str) -> None: ...

    async def close(self) -> None:
        return None


class LazyStore(BatchStore):
    """Builds the real store on first use, so an app that never makes a batch never imports SQLAlchemy."""

    def __init__(self, build: Callable[[], BatchStore], where: str) -> None:
        self._build = build
        self._where = where
        self._store: BatchStore | None = None

    @property
    def store(self) -> BatchStore:
        if self._store is None:
            self._store = self._build()
        return self._store

    @property
    def where(self) -> str:
        return self._where if self._store is None else self._store.where

    async def create(self, row: BatchRow) -> None:
        await self.store.create(row)

    async def add_jobs(self, id: str, count: int) -> None:
        await self.store.add_jobs(id, count)

    async def record(self, id: str, job_id: str, outcome: Outcome) -> Recorded | None:
        return await self.store.record(id, job_id, outcome)

    async def find(self, id: str, with_failed_ids: bool = True) -> BatchRow | None:
        return await self.store.find(id, with_failed_ids)

    async def all(self, limit: int = 50) -> list[BatchRow]:
        return await self.store.all(limit)

    async def cancel(self, id: str) -> bool:
        return await self.store.cancel(id)

    async def resume(self, id: str) -> bool:
        return await self.store.resume(id)

    async def forget_failures(self, id: str, job_ids: list[str], skipped: Sequence[str] = ()) -> None:
        await self.store.forget_failures(id, job_ids, skipped)

    async def claim(self, key: str, owner: str) -> bool:
        return await self.store.claim(key, owner)

    async def owner(self, key: str) -> str | None:
        return await self.store.owner(key)

    async def prune(self, finished_before: datetime, unfinished_before: datetime, cancelled_before: datetime) -> int:
        return await self.store.prune(finished_before, unfinished_before, cancelled_before)

    async def delete(self, id: str) -> None:
        await self.store.delete(id)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
