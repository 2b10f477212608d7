"""Failed jobs kept in the process, in order: the store the pytest plugin gives each test, so a failure in an
app's unit test never reaches the app's real failed-jobs store (its SQLite file, its database, its Redis)."""

from __future__ import annotations

import time
from datetime import datetime

from queue_manager.failed.record import FailedJob
from queue_manager.failed.store import FailedJobStore
from queue_manager.failed.summary import FailedJobSummary


class MemoryStore(FailedJobStore):
    where = "this process (the test's own failed-jobs store)"
    identity = "memory"

    def __init__(self) -> None:
        self.jobs: dict[str, FailedJob] = {}
        self.claims: dict[str, tuple[str, float]] = {}  # id -> (token, until)

    def _listed(self, connection: str | None, queue: str | None, limit: int | None) -> list[FailedJob]:
        found = [
            job
            for job in self.jobs.values()
            if (connection is None or job.connection == connection) and (queue is None or job.queue == queue)
        ]
        found.sort(key=lambda job: job.failed_at, reverse=True)
        return found if limit is None else found[:limit]

    async def log(self, job: FailedJob) -> None:
        self.jobs[job.id] = job

    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        return self._listed(connection, queue, limit)

    async def summaries(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJobSummary]:
        return [FailedJobSummary.of(job) for job in self._listed(connection, queue, limit)]

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        return len(self._listed(connection, queue, None))

    async def close(self) -> None:
        return None

    async def get(self, id: str) -> FailedJob | None:
        return self.jobs.get(id)

    async def has(self, id: str) -> bool:
        return id in self.jobs

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return sorted(id for id in self.jobs if id.startswith(prefix))[:limit]

    async def remove(self, id: str) -> bool:
        self.claims.pop(id, None)
        return self.jobs.pop(id, None) is not None

    async def delete_before(self, before: datetime | None) -> int:
        gone = [id for id, job in self.jobs.items() if before is None or job.failed_at < before]
        for id in gone:
            await self.remove(id)
        return len(gone)

    async def claim(self, id: str, token: str, lease: float) -> FailedJob | None:
        job = self.jobs.get(id)
        holder = self.claims.get(id)
        if job is None or (holder is not None and holder[0] != token and holder[1] > time.monotonic()):
            return None
        self.claims[id] = (token, time.monotonic() + lease)
        return job

    async def release(self, id: str, token: str) -> None:
        if self.claims.get(id, ("", 0.0))[0] == token:
            del self.claims[id]
