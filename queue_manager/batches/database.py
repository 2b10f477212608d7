"""Batches in a SQL database through SQLAlchemy's async engine: SQLite by default, PostgreSQL, MySQL/MariaDB.

Three tables: ``<table>`` (one row per batch, with its counts), ``<table>_jobs`` (one row per job outcome, keyed
by batch and job id: inserting it twice inserts nothing, whatever the database) and ``<table>_claims`` (callbacks
and chain links, one owner per key). A count moves only in the transaction whose insert added the job's row (or
moved it from failed to done), so a job delivered twice counts once; there is no ``SELECT ... FOR UPDATE`` to
deadlock on (laravel/framework#36478), and the move to finished is one ``UPDATE ... WHERE finished_at IS NULL AND
<nothing pending>``. Jobs finishing together share one transaction (a group commit). Imported on first use only
(SQLAlchemy costs ~50 ms to import).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from queue_manager.batches.sqlite_groups import SqliteGroups

from queue_manager.batches.store import (
    DONE,
    FAILED,
    SKIPPED,
    BatchRow,
    BatchStore,
    Outcome,
    Recorded,
    oldest,
    utc_now,
)

BUSY_TIMEOUT_MS = 30_000
CREATE_ATTEMPTS = 5
MYSQL = ("mysql", "mariadb")
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL)
NAME_LENGTH = 255
RETURNING_SINCE = (3, 35)  # SQLite's RETURNING, which the one-hop group uses (older: SQLAlchemy's path)
CHECKPOINT_EVERY = 500  # groups between two WAL checkpoints on the store's thread
GROUP_WAIT = 0.005  # seconds a group waits for the jobs finishing with it: one transaction for them all
GROUP_MAX = 500  # job outcomes per transaction at most
GROUP_ATTEMPTS = 5  # tries of a group whose insert met another writer's row


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC in and out (SQLite and MySQL keep no zone: UTC is stored naive; MySQL keeps microseconds)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _tables(name: str) -> tuple[sa.Table, sa.Table, sa.Table]:
    metadata = sa.MetaData()
    batches = sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(NAME_LENGTH), nullable=False, default=""),
        sa.Column("total_jobs", sa.Integer, nullable=False),
        # the sizes of the job set by outcome, moved only in the transaction that added (or changed) a job's row
        sa.Column("done_jobs", sa.Integer, nullable=False, default=0),
        sa.Column("failed_jobs", sa.Integer, nullable=False, default=0),
        sa.Column("skipped_jobs", sa.Integer, nullable=False, default=0),
        sa.Column("created_at", UTCDateTime, nullable=False, index=True),
        sa.Column("cancelled_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("options", LONG_TEXT, nullable=False),
    )
    jobs = sa.Table(
        f"{name}_jobs",
        metadata,
        sa.Column("batch_id", sa.String(36), primary_key=True),
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(1), nullable=False),
    )
    claims = sa.Table(
        f"{name}_claims",
        metadata,
        sa.Column("claim_key", sa.String(191), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False, index=True),  # (made with a new table only)
    )
    return batches, jobs, claims


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")  # in WAL: a commit survives the process being killed
    cursor.close()


class DatabaseBatchStore(BatchStore):
    """``url`` None means SQLite at ``default_path`` (its directory is made on first use)."""

    def __init__(self, url: str | None, table: str = "job_batches", default_path: Path | None = None) -> None:
        if url is None and default_path is None:
            raise ValueError("DatabaseBatchStore needs a url or a default_path")
        self.url = url
        self.default_path = default_path
        self.batches, self.jobs, self.claims = _tables(table)
        self._engine: AsyncEngine | None = None
        self._created = False
        self._lock = asyncio.Lock()
        self._waiting: list[tuple[str, str, Outcome, asyncio.Future[Recorded | None]]] = []
        self._flushing: asyncio.Future[None] | None = None
        self._sqlite: SqliteGroups | None = None  # SQLite: a group in one thread hop (``sqlite_groups``)
        self._sqlite_thread: ThreadPoolExecutor | None = None
        self._parsed: URL | None = None
        self._groups_here = 0  # groups written from the event loop, which never checkpoints the WAL itself
        self._checkpoint: asyncio.Future[None] | None = None

    def _url(self) -> URL:
        """Parsed once: every group of job outcomes asks (SQLAlchemy's parse costs more than a SQLite write)."""
        if self._parsed is None:
            if self.url is None:
                self._parsed = URL.create("sqlite+aiosqlite", database=str(self.default_path))
            else:
                self._parsed = make_url(self.url)
        return self._parsed

    def _create_engine(self) -> AsyncEngine:
        url = self._url()
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url)
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            return engine
        connect_args = {"charset": "utf8mb4"} if url.get_backend_name() in MYSQL and "charset" not in url.query else {}
        return create_async_engine(url, pool_pre_ping=True, pool_recycle=3600, connect_args=connect_args)

    async def engine(self) -> AsyncEngine:
        if self._engine is not None and self._created:
            return self._engine
        async with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
            if not self._created:
                for attempt in range(CREATE_ATTEMPTS):
                    try:
                        async with self._engine.begin() as conn:
                            await conn.run_sync(self.batches.metadata.create_all)
                        break
                    except sa.exc.DBAPIError:  # another process made them meanwhile: check again
                        if attempt == CREATE_ATTEMPTS - 1:
                            raise
                        await asyncio.sleep(0.05 * (attempt + 1))
                self._created = True
            return self._engine

    async def close(self) -> None:
        if self._sqlite is not None and self._sqlite_thread is not None:
            sqlite, thread, self._sqlite, self._sqlite_thread = self._sqlite, self._sqlite_thread, None, None
            await asyncio.get_running_loop().run_in_executor(thread, sqlite.close)
            sqlite.close()  # the event loop's own
            thread.shutdown(wait=False)
        if self._engine is not None:
            engine, self._engine = self._engine, None
            self._created = False
            await engine.dispose()

    @property
    def where(self) -> str:
        url = self._url()
        if url.get_backend_name() == "sqlite":
            return f"the SQLite file {url.database}, table {self.batches.name}"
        port = f":{url.port}" if url.port else ""
        return f"{url.get_backend_name()} at {url.host}{port} ({url.render_as_string(hide_password=True)})"

    # -- inserting once, whatever the database --------------------------------------------------------------
    def _insert_ignoring(self, conn: AsyncConnection, table: sa.Table, values: dict[str, Any]) -> Any:
        name = conn.dialect.name
        if name == "postgresql":
            return postgresql.insert(table).values(**values).on_conflict_do_nothing()
        if name == "sqlite":
            return sqlite.insert(table).values(**values).on_conflict_do_nothing()
        if name in MYSQL:
            return sa.insert(table).values(**values).prefix_with("IGNORE")
        return sa.insert(table).values(**values)

    # -- the contract ------------------------------------------------------------------------------------
    async def create(self, row: BatchRow) -> None:
        engine = await self.engine()
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(self.batches).values(
                    id=row.id,
                    name=row.name[:NAME_LENGTH],
                    total_jobs=row.total_jobs,
                    done_jobs=0,
                    failed_jobs=0,
                    skipped_jobs=0,
                    created_at=row.created_at,
                    finished_at=row.finished_at,  # set for an empty batch: finished when made
                    options=json.dumps(row.options),
                )
            )

    async def add_jobs(self, id: str, count: int) -> None:
        engine = await self.engine()
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(self.batches)
                .where(self.batches.c.id == id)
                .values(total_jobs=self.batches.c.total_jobs + count, finished_at=None)
            )

    async def record(self, id: str, job_id: str, outcome: Outcome) -> Recorded | None:
        """Jobs finishing at the same moment share one transaction (a group commit): each still returns only once
        its outcome is committed, so a worker acknowledges no job whose outcome could be lost."""
        done: asyncio.Future[Recorded | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((id, job_id, outcome, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._waiting:
            await asyncio.sleep(GROUP_WAIT)  # let the jobs finishing now join this transaction
            group, self._waiting = self._waiting[:GROUP_MAX], self._waiting[GROUP_MAX:]
            try:
                outcomes = await self._record_group([(id, job, outcome) for id, job, outcome, _ in group])
            except BaseException as error:
                for *_, done in group:
                    if not done.done():
                        done.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for (*_, done), outcome in zip(group, outcomes, strict=True):
                if not done.done():
                    done.set_result(outcome)

    async def _record_group(self, group: list[tuple[str, str, Outcome]]) -> list[Recorded | None]:
        """One transaction for the group, a few statements per batch whatever its size; another writer adding one
        of the same jobs meanwhile makes the insert fail, and the group is tried again (it then finds that job)."""
        engine = await self.engine()
        if (
            engine.dialect.name == "sqlite"
            and self._url().database not in (None, "", ":memory:")
            and sqlite3.sqlite_version_info >= RETURNING_SINCE
        ):
            if self._sqlite is None:
                from queue_manager.batches.sqlite_groups import SqliteGroups

                self._sqlite = SqliteGroups(str(self._url().database), self.batches.name, self.jobs.name)
                self._sqlite_thread = ThreadPoolExecutor(1, thread_name_prefix="batch-store")
            from queue_manager.batches.sqlite_groups import Busy

            loop = asyncio.get_running_loop()
            try:
                recorded = self._sqlite.record(group, wait=False)  # about 0.1 ms here; a thread hop costs more
            except Busy:
                return await loop.run_in_executor(self._sqlite_thread, self._sqlite.record, group)
            self._groups_here += 1
            if self._groups_here % CHECKPOINT_EVERY == 0 and (self._checkpoint is None or self._checkpoint.done()):
                self._checkpoint = loop.run_in_executor(self._sqlite_thread, self._sqlite.checkpoint)
            return recorded
        for attempt in range(GROUP_ATTEMPTS):
            try:
                return await self._record_once(group)
            except sa.exc.DBAPIError as error:
                again = isinstance(error, sa.exc.IntegrityError) or any(
                    word in str(error.orig).lower() for word in ("deadlock", "locked", "serializ")
                )
                if not again or attempt == GROUP_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _record_once(self, group: list[tuple[str, str, Outcome]]) -> list[Recorded | None]:
        engine = await self.engine()
        b, j = self.batches.c, self.jobs.c
        new = [False] * len(group)
        rows: dict[str, BatchRow] = {}
        finished: set[str] = set()
        by_batch: dict[str, list[int]] = {}
        for index, (id, _, _) in enumerate(group):
            by_batch.setdefault(id, []).append(index)
        async with engine.begin() as conn:
            for id, indexes in by_batch.items():
                wanted = list(dict.fromkeys(group[i][1] for i in indexes))
                found = await conn.execute(sa.select(j.job_id, j.state).where(j.batch_id == id, j.job_id.in_(wanted)))
                before = {job: state for job, state in found}
                added: dict[str, Outcome] = {}
                upgraded: set[str] = set()
                for index in indexes:
                    _, job, outcome = group[index]
                    if job not in before and job not in added:
                        added[job] = outcome
                        new[index] = True
                    elif before.get(job) == FAILED and outcome == DONE:
                        upgraded.add(job)
                if added:
                    await conn.execute(
                        sa.insert(self.jobs),
                        [{"batch_id": id, "job_id": job, "state": outcome} for job, outcome in added.items()],
                    )
                moved = 0
                if upgraded:
                    result = await conn.execute(
                        sa.update(self.jobs)
                        .where(j.batch_id == id, j.job_id.in_(list(upgraded)), j.state == FAILED)
                        .values(state=DONE)
                    )
                    moved = int(result.rowcount)
                counts = {state: sum(1 for o in added.values() if o == state) for state in (DONE, FAILED, SKIPPED)}
                if added or moved:
                    await conn.execute(
                        sa.update(self.batches)
                        .where(b.id == id)
                        .values(
                            done_jobs=b.done_jobs + counts[DONE] + moved,
                            failed_jobs=b.failed_jobs + counts[FAILED] - moved,
                            skipped_jobs=b.skipped_jobs + counts[SKIPPED],
                        )
                    )
                cas = await conn.execute(  # the one compare-and-set that finishes a batch
                    sa.update(self.batches)
                    .where(
                        b.id == id,
                        b.finished_at.is_(None),
                        b.total_jobs - b.done_jobs - b.failed_jobs - b.skipped_jobs <= 0,
                    )
                    .values(finished_at=utc_now())
                )
                if cas.rowcount == 1:
                    finished.add(id)
                read = (await conn.execute(sa.select(self.batches).where(b.id == id))).first()
                if read is not None:
                    rows[id] = self._row(read)
        answers: list[Recorded | None] = []
        last = {id: indexes[-1] for id, indexes in by_batch.items()}
        for index, (id, _, _) in enumerate(group):
            kept = rows.get(id)
            answers.append(None if kept is None else Recorded(kept, id in finished and last[id] == index, new[index]))
        return answers

    def _row(self, found: Any) -> BatchRow:
        return BatchRow(
            id=found.id,
            name=found.name,
            total_jobs=found.total_jobs,
            options=json.loads(found.options),
            created_at=found.created_at,
            cancelled_at=found.cancelled_at,
            finished_at=found.finished_at,
            done=int(found.done_jobs or 0),
            failed=int(found.failed_jobs or 0),
            skipped=int(found.skipped_jobs or 0),
        )

    async def find(self, id: str, with_failed_ids: bool = True) -> BatchRow | None:
        engine = await self.engine()
        async with engine.connect() as conn:
            found = (await conn.execute(sa.select(self.batches).where(self.batches.c.id == id))).first()
            if found is None:
                return None
            row = self._row(found)
            if with_failed_ids and row.failed:
                failed = await conn.execute(
                    sa.select(self.jobs.c.job_id).where(self.jobs.c.batch_id == id, self.jobs.c.state == FAILED)
                )
                row.failed_job_ids = [job for (job,) in failed]
        return row

    async def all(self, limit: int = 50) -> list[BatchRow]:
        engine = await self.engine()
        async with engine.connect() as conn:
            found = await conn.execute(sa.select(self.batches).order_by(self.batches.c.created_at.desc()).limit(limit))
            rows = [self._row(item) for item in found]
        return rows

    async def cancel(self, id: str) -> bool:
        return await self._mark_cancelled(id, utc_now())

    async def resume(self, id: str) -> bool:
        return await self._mark_cancelled(id, None)

    async def _mark_cancelled(self, id: str, when: datetime | None) -> bool:
        """Cancel (``when``) or resume (None) it: True only if that changed it."""
        engine = await self.engine()
        cancelled_at = self.batches.c.cancelled_at
        changes = cancelled_at.is_(None) if when is not None else cancelled_at.is_not(None)
        async with engine.begin() as conn:
            moved = await conn.execute(
                sa.update(self.batches).where(self.batches.c.id == id, changes).values(cancelled_at=when)
            )
        return bool(moved.rowcount == 1)

    async def forget_failures(self, id: str, job_ids: list[str], skipped: Sequence[str] = ()) -> None:
        engine = await self.engine()
        b = self.batches.c
        async with engine.begin() as conn:
            for jobs, state, count in ((job_ids, FAILED, b.failed_jobs), (list(skipped), SKIPPED, b.skipped_jobs)):
                if not jobs:
                    continue
                gone = await conn.execute(
                    sa.delete(self.jobs).where(
                        self.jobs.c.batch_id == id, self.jobs.c.job_id.in_(jobs), self.jobs.c.state == state
                    )
                )
                await conn.execute(sa.update(self.batches).where(b.id == id).values({count: count - gone.rowcount}))
            await conn.execute(sa.update(self.batches).where(self.batches.c.id == id).values(finished_at=None))
            # when they succeed, the batch finishes again (then runs if it never did; finally ran once already)
            await conn.execute(sa.delete(self.claims).where(self.claims.c.claim_key == f"batch:{id}:finish:sent"))

    async def claim(self, key: str, owner: str) -> bool:
        engine = await self.engine()
        async with engine.begin() as conn:
            await conn.execute(
                self._insert_ignoring(conn, self.claims, {"claim_key": key, "owner": owner, "created_at": utc_now()})
            )
        return await self.owner(key) == owner

    async def owner(self, key: str) -> str | None:
        engine = await self.engine()
        async with engine.connect() as conn:
            found = await conn.execute(sa.select(self.claims.c.owner).where(self.claims.c.claim_key == key))
            value = found.scalar()
        return None if value is None else str(value)

    async def prune(self, finished_before: datetime, unfinished_before: datetime, cancelled_before: datetime) -> int:
        engine = await self.engine()
        c = self.batches.c
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.select(c.id).where(
                    sa.or_(
                        sa.and_(c.finished_at.is_not(None), c.finished_at < finished_before),
                        sa.and_(c.finished_at.is_(None), c.created_at < unfinished_before),
                        sa.and_(c.cancelled_at.is_not(None), c.cancelled_at < cancelled_before),
                    )
                )
            )
            ids = [id for (id,) in found]
        for id in ids:
            await self.delete(id)
        async with engine.begin() as conn:  # chains' claims older than the longest window (a batch's go with it)
            cutoff = oldest(finished_before, unfinished_before, cancelled_before)
            claims = self.claims.c
            await conn.execute(
                sa.delete(self.claims).where(claims.created_at < cutoff, claims.claim_key.like("chain:%"))
            )
        return len(ids)

    async def delete(self, id: str) -> None:
        engine = await self.engine()
        async with engine.begin() as conn:
            await conn.execute(sa.delete(self.jobs).where(self.jobs.c.batch_id == id))
            await conn.execute(sa.delete(self.claims).where(self.claims.c.claim_key.like(f"batch:{id}:%")))
            await conn.execute(sa.delete(self.batches).where(self.batches.c.id == id))
