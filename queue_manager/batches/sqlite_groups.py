"""Recording a group of job outcomes in SQLite in one thread hop.

Through SQLAlchemy's async engine each statement is several round trips to aiosqlite's thread (about 19 for a
group's five statements), which costs more than the statements. Here the whole group runs in one call on a
thread of its own, with the standard ``sqlite3`` module, on the tables the store made: the same statements and
the same rules (the job's row inserted only if new, the counts moved only then, the compare-and-set to finished).
``BEGIN IMMEDIATE`` takes the write lock first, so a concurrent writer waits (busy timeout) instead of failing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

from queue_manager.batches.store import DONE, FAILED, SKIPPED, BatchRow, Outcome, Recorded, utc_now

BUSY_TIMEOUT_S = 30.0
_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite DateTime stores a (naive UTC) datetime


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class SqliteGroups:
    """One ``sqlite3`` connection, used by one thread at a time (the store's single-thread executor)."""

    def __init__(self, path: str, batches: str, jobs: str) -> None:
        self.path, self.batches, self.jobs = path, f'"{batches}"', f'"{jobs}"'
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            self._local.connection = connection
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def record(self, group: list[tuple[str, str, Outcome]]) -> list[Recorded | None]:
        db = self._connection()
        by_batch: dict[str, list[int]] = {}
        for index, (id, _, _) in enumerate(group):
            by_batch.setdefault(id, []).append(index)
        new = [False] * len(group)
        rows: dict[str, BatchRow] = {}
        finished: set[str] = set()
        db.execute("BEGIN IMMEDIATE")
        try:
            for id, indexes in by_batch.items():
                wanted = list(dict.fromkeys(group[i][1] for i in indexes))
                marks = ",".join("?" * len(wanted))
                before = dict(
                    db.execute(
                        f"SELECT job_id, state FROM {self.jobs} WHERE batch_id = ? AND job_id IN ({marks})",
                        [id, *wanted],
                    ).fetchall()
                )
                added: dict[str, Outcome] = {}
                upgraded: list[str] = []
                for index in indexes:
                    _, job, outcome = group[index]
                    if job not in before and job not in added:
                        added[job] = outcome
                        new[index] = True
                    elif before.get(job) == FAILED and outcome == DONE and job not in upgraded:
                        upgraded.append(job)
                if added:
                    db.executemany(
                        f"INSERT INTO {self.jobs} (batch_id, job_id, state) VALUES (?, ?, ?)",
                        [(id, job, outcome) for job, outcome in added.items()],
                    )
                moved = 0
                if upgraded:
                    moved = db.execute(
                        f"UPDATE {self.jobs} SET state = ? WHERE batch_id = ? AND state = ? AND job_id IN "
                        f"({','.join('?' * len(upgraded))})",
                        [DONE, id, FAILED, *upgraded],
                    ).rowcount
                if added or moved:
                    counts = {state: sum(1 for o in added.values() if o == state) for state in (DONE, FAILED, SKIPPED)}
                    db.execute(
                        f"UPDATE {self.batches} SET done_jobs = done_jobs + ?, failed_jobs = failed_jobs + ?, "
                        "skipped_jobs = skipped_jobs + ? WHERE id = ?",
                        [counts[DONE] + moved, counts[FAILED] - moved, counts[SKIPPED], id],
                    )
                now = utc_now().replace(tzinfo=None).strftime(_FORMAT)
                cas = db.execute(  # the one compare-and-set that finishes a batch
                    f"UPDATE {self.batches} SET finished_at = ? WHERE id = ? AND finished_at IS NULL "
                    "AND total_jobs - done_jobs - failed_jobs - skipped_jobs <= 0",
                    [now, id],
                )
                if cas.rowcount == 1:
                    finished.add(id)
                found = db.execute(
                    "SELECT id, name, total_jobs, options, created_at, cancelled_at, finished_at, done_jobs, "
                    f"failed_jobs, skipped_jobs FROM {self.batches} WHERE id = ?",
                    [id],
                ).fetchone()
                if found is not None:
                    rows[id] = BatchRow(
                        id=found[0],
                        name=found[1],
                        total_jobs=int(found[2]),
                        options=json.loads(found[3]),
                        created_at=_when(found[4]) or utc_now(),
                        cancelled_at=_when(found[5]),
                        finished_at=_when(found[6]),
                        done=int(found[7] or 0),
                        failed=int(found[8] or 0),
                        skipped=int(found[9] or 0),
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        last = {id: indexes[-1] for id, indexes in by_batch.items()}
        answers: list[Recorded | None] = []
        for index, (id, _, _) in enumerate(group):
            kept = rows.get(id)
            answers.append(None if kept is None else Recorded(kept, id in finished and last[id] == index, new[index]))
        return answers
