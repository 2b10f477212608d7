"""The failed-jobs store contract (Laravel's ``FailedJobProviderInterface``), shared by every driver.

Each store provides a few primitives (get one, list ids by prefix, remove one, delete older than, claim one);
the id rules live here once, so every store treats an id the same way: ``find``/``forget`` take a full id or
a prefix of at least ``MIN_PREFIX`` characters that matches one job; a prefix that matches several raises
``QueueConfigurationError`` naming them (rather than None, which would read as "no such job"). Ids are uuids:
anything else (``index``, ``*``) is refused before it reaches a store, so no input can name one of a store's
own keys.

A listing (``summaries``) reads short columns only; ``find``/``get`` read one whole record. A retry
``claim``s a record first: of several callers at once one wins, and the claim lapses after its lease, so a
caller that died mid-retry leaves the record to the next retry rather than losing it.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from drivers.base.errors import QueueConfigurationError
from drivers.base.reach import scrub
from queue_manager.failed.record import FailedJob, utc
from queue_manager.failed.summary import FailedJobSummary

MIN_PREFIX = 6  # shortest id prefix accepted by find/forget
FULL_ID = 36  # a uuid4 as text: no prefix search needed
TASK_MATCHES = 10  # jobs read for a task id (one task id may have failed more than once)
_ID = re.compile(r"[0-9a-f-]{1,36}", re.ASCII)


def hours_ago(hours: float) -> datetime:
    """The moment ``hours`` ago, in UTC (``flush(hours)``, ``queue:prune-failed --hours``)."""
    if not math.isfinite(hours) or hours < 0:
        raise QueueConfigurationError(f"hours must be a number of hours >= 0, got {hours!r}.")
    return datetime.now(UTC) - timedelta(hours=hours)


def check_id(id: str) -> str:
    """``id`` as the stores look it up (stripped, lower case), or QueueConfigurationError if no failed job can
    have it: ids are uuids, so a store key (``index``) or a pattern (``*``, ``%``) never reaches a store."""
    wanted = str(id).strip().lower()
    if not _ID.fullmatch(wanted):
        raise QueueConfigurationError(
            f"{str(id)[:60]!r} is not a failed job id: ids are uuids such as 1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d "
            "(or their first 6 or more characters). `python artisan queue:failed` lists them."
        )
    return wanted


class FailedJobStore(ABC):
    """Where failed jobs are kept. Listings are newest first; stores connect on first use."""

    @property
    @abstractmethod
    def where(self) -> str:
        """The store for people: kind, host:port, URL with its password masked (an error names it)."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """A stable text naming this store exactly (it may hold a password: never shown, only hashed)."""

    @property
    def secret_url(self) -> str | None:
        """The URL whose password must never be shown (``describe`` masks it)."""
        return None

    def unreachable(self, error: BaseException) -> bool:
        """Does ``error`` mean the store did not answer (so the record is kept for later), rather than a bug?"""
        return isinstance(error, OSError | TimeoutError)

    def describe(self, error: BaseException) -> str:
        """``error`` in one short line without a password: a database's own error, not the SQL statement and
        parameters (a whole record) SQLAlchemy adds to it."""
        cause = getattr(error, "orig", None) or error
        lines = str(cause).strip().splitlines()
        text = f"{type(cause).__name__}: {lines[0][:200]}" if lines else type(cause).__name__
        return scrub(text, self.secret_url)

    @abstractmethod
    async def log(self, job: FailedJob) -> None:
        """Keep ``job``; logging the same record again (a spooled copy) keeps one."""

    @abstractmethod
    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        """Whole records, newest first; at most ``limit`` of them."""

    @abstractmethod
    async def summaries(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJobSummary]:
        """What a listing shows of each job, newest first, without reading args, payloads or tracebacks."""

    @abstractmethod
    async def count(self, connection: str | None = None, queue: str | None = None) -> int: ...

    @abstractmethod
    async def close(self) -> None: ...

    # -- primitives behind find/forget/flush/prune/retry ---------------------------------------------
    @abstractmethod
    async def get(self, id: str) -> FailedJob | None:
        """The job with exactly this id."""

    @abstractmethod
    async def has(self, id: str) -> bool:
        """Is there a job with exactly this id (without reading it)?"""

    @abstractmethod
    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` ids that start with ``prefix`` (two tell an ambiguous prefix)."""

    @abstractmethod
    async def remove(self, id: str) -> bool:
        """Delete the job with exactly this id; False if there was none."""

    @abstractmethod
    async def delete_before(self, before: datetime | None) -> int:
        """Delete jobs that failed before ``before`` (every job for None); how many were deleted."""

    @abstractmethod
    async def claim(self, id: str, token: str, lease: float) -> FailedJob | None:
        """The whole job if this caller now holds it (for ``lease`` seconds, under ``token``); None if there is
        no such job or another caller holds it. Of several callers at once, one gets it."""

    @abstractmethod
    async def release(self, id: str, token: str) -> None:
        """Give back a claim (its send failed): the job can be claimed again at once."""

    # -- Laravel's interface ------------------------------------------------------------------------
    async def resolve(self, id: str) -> str | None:
        """The full id of the job with this id, or with the one id this prefix (>= 6 characters) starts; failing
        that, of the one job whose task id (what ``queue:batch`` and the worker's log show) is this or starts
        with this prefix. A record's own id wins over a task id."""
        if not str(id).strip():
            return None
        wanted = check_id(id)
        if await self.has(wanted):
            return wanted
        if MIN_PREFIX <= len(wanted) < FULL_ID:
            matches = await self.ids_starting_with(wanted, limit=2)
            if len(matches) > 1:
                raise QueueConfigurationError(
                    f"The failed job id {wanted!r} is ambiguous: it starts {', '.join(matches)} (and maybe more). "
                    "Give more of the id (python artisan queue:failed lists them)."
                )
            if matches:
                return matches[0]
        return await self._resolve_task_id(wanted)

    async def _resolve_task_id(self, wanted: str) -> str | None:
        found = await self.ids_for_task(wanted, TASK_MATCHES)
        exact = [id for id, task_id in found if task_id == wanted]
        ids = list(dict.fromkeys(exact if exact or len(wanted) < MIN_PREFIX else [id for id, _ in found]))
        if len(ids) > 1:
            raise QueueConfigurationError(
                f"The job id {wanted!r} matches several failed jobs: {', '.join(ids)}. Give one of their ids "
                "(python artisan queue:failed lists them)."
            )
        return ids[0] if ids else None

    async def ids_for_task(self, prefix: str, limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` (id, task id) of the jobs whose task id starts with ``prefix`` (read from the
        summaries; a store with a task id column asks it)."""
        jobs = [(job.id, job.task_id.lower()) for job in await self.summaries()]
        found = [(id, task_id) for id, task_id in jobs if task_id.startswith(prefix)]
        return found[:limit]

    async def find(self, id: str) -> FailedJob | None:
        """The whole job with this id, or with the one id this prefix (>= 6 characters) starts."""
        found = await self.resolve(id)
        return None if found is None else await self.get(found)

    async def forget(self, id: str) -> bool:
        """Delete one job (full id or unique prefix, as ``find``); False if none matched."""
        found = await self.resolve(id)
        return found is not None and await self.remove(found)

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

    @property
    def where(self) -> str:
        return self.store.where

    @property
    def identity(self) -> str:
        return self.store.identity

    @property
    def secret_url(self) -> str | None:
        return self.store.secret_url

    def unreachable(self, error: BaseException) -> bool:
        return self.store.unreachable(error)

    def describe(self, error: BaseException) -> str:
        return self.store.describe(error)

    async def log(self, job: FailedJob) -> None:
        await self.store.log(job)

    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        return await self.store.all(connection, queue, limit)

    async def summaries(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJobSummary]:
        return await self.store.summaries(connection, queue, limit)

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        return await self.store.count(connection, queue)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()

    async def get(self, id: str) -> FailedJob | None:
        return await self.store.get(id)

    async def has(self, id: str) -> bool:
        return await self.store.has(id)

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return await self.store.ids_starting_with(prefix, limit)

    async def ids_for_task(self, prefix: str, limit: int) -> list[tuple[str, str]]:
        return await self.store.ids_for_task(prefix, limit)

    async def remove(self, id: str) -> bool:
        return await self.store.remove(id)

    async def delete_before(self, before: datetime | None) -> int:
        return await self.store.delete_before(before)

    async def claim(self, id: str, token: str, lease: float) -> FailedJob | None:
        return await self.store.claim(id, token, lease)

    async def release(self, id: str, token: str) -> None:
        await self.store.release(id, token)
