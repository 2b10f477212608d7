"""Recording a group of job outcomes in SQLite in one call, with the standard ``sqlite3`` module.

Through SQLAlchemy's async engine each statement is several round trips to aiosqlite's thread (about 19 for a
group's five statements), which costs more than the statements; a hop to a thread of our own still cost more than
the group's own work (about 0.1 ms: an insert and an update, each returning what the worker needs). So a group runs
in the event loop when the write lock is free, and on the store's thread, waiting for the lock, when another
writer holds it. Same tables, same rules: a job's row inserted only if new, the counts moved only then, and the
one compare-and-set to finished. ``BEGIN IMMEDIATE`` takes the write lock first; in WAL mode nothing after it waits.
"""

from __future__ import annotations

import contextlib
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


class Busy(Exception):
    """Another writer holds the database's write lock: the group goes to the store's thread, which waits for it."""


class SqliteGroups:
    """Per thread, one ``sqlite3`` connection that waits for the write lock (the store's single-thread executor) and
    one that does not (the event loop's: a group there costs no thread hop, and never blocks the loop on a lock)."""

    def __init__(self, path: str, batches: str, jobs: str) -> None:
        self.path, self.batches, self.jobs = path, f'"{batches}"', f'"{jobs}"'
        self._local = threading.local()
        self._parsed_options: dict[str, dict[str, Any]] = {}
        self._loop_ok = True  # False once the database showed it is not in WAL mode

    def _connection(self, wait: bool) -> sqlite3.Connection:
        name = "waiting" if wait else "now"
        connection: sqlite3.Connection | None = getattr(self._local, name, None)
        if connection is None:
            if not wait and not self._loop_ok:
                raise Busy("this database cannot be written from the event loop")
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S if wait else 0, isolation_level=None)
            mode = str(connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            connection.execute("PRAGMA synchronous = NORMAL")
            if not wait:
                if mode != "wal":  # a COMMIT could then wait for readers: never in the event loop
                    connection.close()
                    self._loop_ok = False
                    raise Busy(f"journal mode {mode}, not WAL")
                connection.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints (fsyncs) only on the store's thread
            setattr(self._local, name, connection)
        return connection

    def checkpoint(self) -> None:
        """Move the WAL into the database (the event loop's commits never do): on the store's thread, now and then."""
        with contextlib.suppress(sqlite3.Error):  # the next one catches up
            self._connection(wait=True).execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Close the calling thread's connections."""
        for name in ("waiting", "now"):
            connection = getattr(self._local, name, None)
            if connection is not None:
                connection.close()
                setattr(self._local, name, None)

    def record(self, group: list[tuple[str, str, Outcome]], wait: bool = True) -> list[Recorded | None]:
        """Record the group in one transaction; without ``wait``, raise ``Busy`` at once if another writer holds
        the lock (once ``BEGIN IMMEDIATE`` has it, a WAL database lets the transaction finish without waiting)."""
        by_batch: dict[str, list[int]] = {}
        for index, (id, _, _) in enumerate(group):
            by_batch.setdefault(id, []).append(index)
        new = [False] * len(group)
        rows: dict[str, BatchRow] = {}
        finished: set[str] = set()
        try:
            db = self._connection(wait)
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if wait or "locked" not in str(error):
                raise
            raise Busy from error
        try:
            for id, indexes in by_batch.items():
                row = self._record_batch(db, id, [(index, group[index][1], group[index][2]) for index in indexes], new)
                if row is None:
                    continue
                if row.finished_at is None and row.pending <= 0:  # the one compare-and-set that finishes a batch
                    now = utc_now()
                    cas = db.execute(
                        f"UPDATE {self.batches} SET finished_at = ? WHERE id = ? AND finished_at IS NULL "
                        "AND total_jobs - done_jobs - failed_jobs - skipped_jobs <= 0",
                        [now.replace(tzinfo=None).strftime(_FORMAT), id],
                    )
                    if cas.rowcount == 1:
                        finished.add(id)
                        row.finished_at = now
                rows[id] = row
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already (I/O error, disk full)
                db.execute("ROLLBACK")
            raise
        last = {id: indexes[-1] for id, indexes in by_batch.items()}
        answers: list[Recorded | None] = []
        for index, (id, _, _) in enumerate(group):
            kept = rows.get(id)
            answers.append(None if kept is None else Recorded(kept, id in finished and last[id] == index, new[index]))
        return answers

    def _record_batch(
        self, db: sqlite3.Connection, id: str, outcomes: list[tuple[int, str, Outcome]], new: list[bool]
    ) -> BatchRow | None:
        """One batch's part of the group in two statements for the usual case (all new): the insert, which says
        which jobs it added, and the count update, which returns the row."""
        first: dict[str, tuple[int, Outcome]] = {}  # a job twice in the group: its first outcome counts
        for index, job, outcome in outcomes:
            first.setdefault(job, (index, outcome))
        values = [value for job, (_, outcome) in first.items() for value in (id, job, outcome)]
        added = {
            job
            for (job,) in db.execute(
                f"INSERT INTO {self.jobs} (batch_id, job_id, state) VALUES {','.join(['(?, ?, ?)'] * len(first))} "
                "ON CONFLICT DO NOTHING RETURNING job_id",
                values,
            ).fetchall()
        }
        for job in added:
            new[first[job][0]] = True
        again = [job for job, (_, outcome) in first.items() if job not in added and outcome == DONE]
        moved = 0
        if again:  # delivered again: a job recorded failed that now succeeded moves to done
            moved = db.execute(
                f"UPDATE {self.jobs} SET state = ? WHERE batch_id = ? AND state = ? AND job_id IN "
                f"({','.join('?' * len(again))})",
                [DONE, id, FAILED, *again],
            ).rowcount
        columns = (
            "id, name, total_jobs, options, created_at, cancelled_at, finished_at, done_jobs, failed_jobs, skipped_jobs"
        )
        if added or moved:
            counts = {state: sum(1 for job in added if first[job][1] == state) for state in (DONE, FAILED, SKIPPED)}
            found = db.execute(
                f"UPDATE {self.batches} SET done_jobs = done_jobs + ?, failed_jobs = failed_jobs + ?, "
                f"skipped_jobs = skipped_jobs + ? WHERE id = ? RETURNING {columns}",
                [counts[DONE] + moved, counts[FAILED] - moved, counts[SKIPPED], id],
            ).fetchone()
        else:
            found = db.execute(f"SELECT {columns} FROM {self.batches} WHERE id = ?", [id]).fetchone()
        if found is None:
            return None
        return BatchRow(
            id=found[0],
            name=found[1],
            total_jobs=int(found[2]),
            options=self._options(found[3]),
            created_at=_when(found[4]) or utc_now(),
            cancelled_at=_when(found[5]),
            finished_at=_when(found[6]),
            done=int(found[7] or 0),
            failed=int(found[8] or 0),
            skipped=int(found[9] or 0),
        )

    def _options(self, raw: str) -> dict[str, Any]:
        """A batch's options never change: parsed once per batch (a copy each time, as a fresh read would give)."""
        cached = self._parsed_options.get(raw)
        if cached is None:
            if len(self._parsed_options) > 1000:
                self._parsed_options.clear()
            cached = self._parsed_options[raw] = json.loads(raw)
        return dict(cached)
