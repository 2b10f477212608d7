"""Batches in this process (the memory driver's apps, and every test through the pytest plugin)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from queue_manager.batches.store import DONE, FAILED, SKIPPED, BatchRow, BatchStore, Outcome, Recorded, oldest, utc_now


class MemoryBatchStore(BatchStore):
    def __init__(self) -> None:
        self.rows: dict[str, BatchRow] = {}
        self.jobs: dict[str, dict[str, str]] = {}
        self.claims: dict[str, str] = {}
        self.claimed_at: dict[str, datetime] = {}  # when each claim was made (prune)

    @property
    def where(self) -> str:
        return "this process's memory"

    def _view(self, id: str) -> BatchRow | None:
        row = self.rows.get(id)
        if row is None:
            return None
        outcomes = self.jobs.get(id, {})
        view = copy.copy(row)
        view.done = sum(1 for state in outcomes.values() if state == DONE)
        view.failed = sum(1 for state in outcomes.values() if state == FAILED)
        view.skipped = len(outcomes) - view.done - view.failed
        view.failed_job_ids = [job for job, state in outcomes.items() if state == FAILED]
        return view

    async def create(self, row: BatchRow) -> None:
        self.rows[row.id] = copy.copy(row)
        self.jobs[row.id] = {}

    async def add_jobs(self, id: str, count: int) -> None:
        row = self.rows.get(id)
        if row is not None:
            row.total_jobs += count
            row.finished_at = None

    async def record(self, id: str, job_id: str, outcome: Outcome) -> Recorded | None:
        if id not in self.rows:
            return None
        outcomes = self.jobs[id]
        before = outcomes.get(job_id)
        if before is None or (before == FAILED and outcome == DONE):
            outcomes[job_id] = outcome
        view = self._view(id)
        assert view is not None
        finished_now = False
        if view.pending == 0 and self.rows[id].finished_at is None:
            self.rows[id].finished_at = view.finished_at = utc_now()
            finished_now = True
        return Recorded(view, finished_now, before is None)

    async def find(self, id: str, with_failed_ids: bool = True) -> BatchRow | None:
        return self._view(id)

    async def all(self, limit: int = 50) -> list[BatchRow]:
        rows = sorted(self.rows.values(), key=lambda row: row.created_at, reverse=True)[:limit]
        return [view for row in rows if (view := self._view(row.id)) is not None]

    async def cancel(self, id: str) -> bool:
        row = self.rows.get(id)
        if row is None or row.cancelled_at is not None:
            return False
        row.cancelled_at = utc_now()
        return True

    async def resume(self, id: str) -> bool:
        row = self.rows.get(id)
        if row is None or row.cancelled_at is None:
            return False
        row.cancelled_at = None
        return True

    async def forget_failures(self, id: str, job_ids: list[str], skipped: Sequence[str] = ()) -> None:
        outcomes = self.jobs.get(id, {})
        for jobs, state in ((job_ids, FAILED), (skipped, SKIPPED)):
            for job in jobs:
                if outcomes.get(job) == state:
                    del outcomes[job]
        if id in self.rows:
            self.rows[id].finished_at = None
        self._forget_claim(f"batch:{id}:finish:sent")  # when they succeed, the batch finishes again

    async def claim(self, key: str, owner: str) -> bool:
        self.claimed_at.setdefault(key, utc_now())
        return self.claims.setdefault(key, owner) == owner

    async def owner(self, key: str) -> str | None:
        return self.claims.get(key)

    async def prune(self, finished_before: datetime, unfinished_before: datetime, cancelled_before: datetime) -> int:
        gone = [
            row.id
            for row in self.rows.values()
            if (row.finished_at is not None and row.finished_at < finished_before)
            or (row.finished_at is None and row.created_at < unfinished_before)
            or (row.cancelled_at is not None and row.cancelled_at < cancelled_before)
        ]
        for id in gone:
            await self.delete(id)
        cutoff = oldest(finished_before, unfinished_before, cancelled_before)
        for key in [key for key, made in self.claimed_at.items() if made < cutoff and key.startswith("chain:")]:
            self._forget_claim(key)
        return len(gone)

    async def delete(self, id: str) -> None:
        self.rows.pop(id, None)
        self.jobs.pop(id, None)
        for key in [key for key in self.claims if key.startswith(f"batch:{id}:")]:
            self._forget_claim(key)

    def _forget_claim(self, key: str) -> None:
        self.claims.pop(key, None)
        self.claimed_at.pop(key, None)
