"""Laravel's ``null`` failed-job driver: failures are only logged by the worker, nothing is kept."""

from __future__ import annotations

from datetime import datetime

from queue_manager.failed.record import FailedJob
from queue_manager.failed.store import FailedJobStore
from queue_manager.failed.summary import FailedJobSummary


class NullStore(FailedJobStore):
    where = "nowhere (QUEUE_FAILED__DRIVER=null)"
    identity = "null"

    async def log(self, job: FailedJob) -> None:
        return None

    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        return []

    async def summaries(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJobSummary]:
        return []

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        return 0

    async def close(self) -> None:
        return None

    async def get(self, id: str) -> FailedJob | None:
        return None

    async def has(self, id: str) -> bool:
        return False

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return []

    async def remove(self, id: str) -> bool:
        return False

    async def delete_before(self, before: datetime | None) -> int:
        return 0

    async def claim(self, id: str, token: str, lease: float) -> FailedJob | None:
        return None

    async def release(self, id: str, token: str) -> None:
        return None
