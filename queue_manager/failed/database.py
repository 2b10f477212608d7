"""Failed jobs in a SQL database through SQLAlchemy's async engine: SQLite by default, PostgreSQL, MySQL.

Imported on first use only (``make_store`` wraps it in a ``LazyStore``): SQLAlchemy costs ~50 ms to import.
The table is created when missing; two processes doing that at once is fine (the loser's CREATE fails,
and the retry finds the table). SQLite runs in WAL mode with a busy timeout, so several worker processes
on one machine can record failures at once without "database is locked".
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from queue_manager.failed.record import FailedJob, utc
from queue_manager.failed.store import FailedJobStore

BUSY_TIMEOUT_MS = 30_000  # how long an SQLite writer waits for another process's write to finish
CREATE_ATTEMPTS = 5
NAME_LENGTH = 255  # indexed text columns (MySQL needs a length to index)
MYSQL = ("mysql", "mariadb")
# MySQL's TEXT holds 64 KB: a traceback or the args of a job can be longer.
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC in and out. SQLite and MySQL keep no zone (UTC is stored naive); MySQL keeps microseconds."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


def failed_jobs_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """One column per ``FailedJob`` field; args/kwargs/labels as JSON text, payload as base64 text."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("connection", sa.String(NAME_LENGTH), nullable=False),
        sa.Column("queue", sa.String(NAME_LENGTH), nullable=False),
        sa.Column("task_name", LONG_TEXT, nullable=False),
        sa.Column("task_id", LONG_TEXT, nullable=False),
        sa.Column("args", LONG_TEXT, nullable=False),
        sa.Column("kwargs", LONG_TEXT, nullable=False),
        sa.Column("labels", LONG_TEXT, nullable=False),
        sa.Column("exception", LONG_TEXT, nullable=False),
        sa.Column("message", LONG_TEXT, nullable=False),
        sa.Column("traceback", LONG_TEXT, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("payload", LONG_TEXT, nullable=True),
        sa.Index(f"ix_{name}_connection_queue", "connection", "queue"),
        mysql_charset="utf8mb4",
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Each new SQLite connection: wait for other writers instead of failing, and let readers not block them."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # first: switching to WAL may itself wait
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


class DatabaseStore(FailedJobStore):
    """``url`` None means SQLite at ``default_path`` (its directory is created on first use)."""

    def __init__(self, url: str | None, table: str = "failed_jobs", default_path: Path | None = None) -> None:
        if url is None and default_path is None:
            raise ValueError("DatabaseStore needs a url or a default_path")
        self.url = url
        self.default_path = default_path
        self.table = failed_jobs_table(table, sa.MetaData())
        self._engine: AsyncEngine | None = None
        self._created = False
        self._lock = asyncio.Lock()

    # -- connecting --------------------------------------------------------------------------------
    def _url(self) -> URL:
        if self.url is None:
            return URL.create("sqlite+aiosqlite", database=str(self.default_path))
        return make_url(self.url)

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
        # pre_ping: a worker outlives database restarts; recycle: MySQL drops idle connections after 8 h.
        return create_async_engine(url, pool_pre_ping=True, pool_recycle=3600, connect_args=connect_args)

    async def _create_table(self, engine: AsyncEngine) -> None:
        for attempt in range(CREATE_ATTEMPTS):
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(self.table.metadata.create_all)
                return
            except sa.exc.DBAPIError:
                # Another process created it between create_all's check and its CREATE: check again.
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))

    async def engine(self) -> AsyncEngine:
        """The engine, built and the table created on first use."""
        if self._engine is not None and self._created:
            return self._engine
        async with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
            if not self._created:
                await self._create_table(self._engine)
                self._created = True
            return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    # -- rows ----------------------------------------------------------------------------------------
    @staticmethod
    def _row(job: FailedJob) -> dict[str, Any]:
        data = job.to_dict()
        for name in ("args", "kwargs", "labels"):
            data[name] = json.dumps(data[name])
        for name in ("connection", "queue"):
            data[name] = data[name][:NAME_LENGTH]
        data["failed_at"] = job.failed_at
        return data

    @staticmethod
    def _job(row: Any) -> FailedJob:
        data = dict(row)
        for name in ("args", "kwargs", "labels"):
            data[name] = json.loads(data[name])
        return FailedJob.from_dict(data)

    def _filtered(self, query: Any, connection: str | None, queue: str | None) -> Any:
        if connection is not None:
            query = query.where(self.table.c.connection == connection)
        if queue is not None:
            query = query.where(self.table.c.queue == queue)
        return query

    # -- the store -----------------------------------------------------------------------------------
    async def log(self, job: FailedJob) -> None:
        async with (await self.engine()).begin() as conn:
            await conn.execute(self.table.insert(), self._row(job))

    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        columns = self.table.c
        query = self._filtered(sa.select(self.table), connection, queue)
        query = query.order_by(columns.failed_at.desc(), columns.id.desc())
        if limit is not None:
            query = query.limit(limit)
        async with (await self.engine()).connect() as conn:
            rows = (await conn.execute(query)).mappings()
            return [self._job(row) for row in rows]

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        query = self._filtered(sa.select(sa.func.count()).select_from(self.table), connection, queue)
        async with (await self.engine()).connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def get(self, id: str) -> FailedJob | None:
        async with (await self.engine()).connect() as conn:
            row = (await conn.execute(sa.select(self.table).where(self.table.c.id == id))).mappings().first()
        return None if row is None else self._job(row)

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        column = self.table.c.id
        query = sa.select(column).where(column.startswith(prefix, autoescape=True)).order_by(column).limit(limit)
        async with (await self.engine()).connect() as conn:
            return [str(id) for id in (await conn.execute(query)).scalars()]

    async def remove(self, id: str) -> bool:
        async with (await self.engine()).begin() as conn:
            result = await conn.execute(sa.delete(self.table).where(self.table.c.id == id))
        return result.rowcount > 0

    async def delete_before(self, before: datetime | None) -> int:
        query = sa.delete(self.table)
        if before is not None:
            query = query.where(self.table.c.failed_at < before)
        async with (await self.engine()).begin() as conn:
            result = await conn.execute(query)
        return int(result.rowcount)
