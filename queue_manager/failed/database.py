"""Failed jobs in a SQL database through SQLAlchemy's async engine: SQLite by default, PostgreSQL, MySQL.

Imported on first use only (``make_store`` wraps it in a ``LazyStore``): SQLAlchemy costs ~50 ms to import.
The table is created when missing, and the columns a newer version added are added to an older table
(``record_size``, ``claimed_by``, ``claimed_until``: nullable, so adding them is instant); two processes
doing either at once is fine (the loser's statement fails, and the retry finds the work done). SQLite runs
in WAL mode with a busy timeout, so several worker processes on one machine can record failures at once
without "database is locked".

A claim is one ``UPDATE ... WHERE id = :id AND (claimed_until IS NULL OR claimed_until < now)``: every
database lets one of several such statements match the row.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from queue_manager.failed.record import FIRST_LINE_CHARS, FailedJob, utc
from queue_manager.failed.store import FailedJobStore
from queue_manager.failed.summary import NAME_CHARS, FailedJobSummary

BUSY_TIMEOUT_MS = 30_000  # how long an SQLite writer waits for another process's write to finish
CREATE_ATTEMPTS = 5
NAME_LENGTH = 255  # indexed text columns (MySQL needs a length to index)
MYSQL = ("mysql", "mariadb")
# MySQL's TEXT holds 64 KB: a traceback or the args of a job can be longer.
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), *MYSQL)
# What the drivers raise, unwrapped, while connecting to a server that is starting, stopping or full.
CONNECTING_ERRORS = frozenset(
    {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "ConnectionRejectionError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
    }
)


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
    """One column per ``FailedJob`` field; args/kwargs/labels as JSON text, payload as base64 text.

    The short columns a listing reads come first: SQLite keeps a row as one record, so reading a column that
    follows a large one walks its overflow pages (a table made by an older version has them after)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("connection", sa.String(NAME_LENGTH), nullable=False),
        sa.Column("queue", sa.String(NAME_LENGTH), nullable=False),
        sa.Column("task_name", LONG_TEXT, nullable=False),
        sa.Column("task_id", LONG_TEXT, nullable=False),
        sa.Column("exception", LONG_TEXT, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("failed_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("record_size", sa.BigInteger, nullable=True),  # FailedJob.size, for listings
        sa.Column("claimed_by", sa.String(36), nullable=True),  # a retry's token while it sends the job
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("message", LONG_TEXT, nullable=False),
        sa.Column("args", LONG_TEXT, nullable=False),
        sa.Column("kwargs", LONG_TEXT, nullable=False),
        sa.Column("labels", LONG_TEXT, nullable=False),
        sa.Column("traceback", LONG_TEXT, nullable=False),
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
                async with engine.begin() as conn:
                    await conn.run_sync(self._add_missing_columns)
                return
            except sa.exc.DBAPIError:
                # Another process created it (or added a column) between our check and our statement: check again.
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))

    def _add_missing_columns(self, conn: sa.Connection) -> None:
        """A table made by an older version lacks the newer (nullable) columns: add them."""
        existing = {column["name"] for column in sa.inspect(conn).get_columns(self.table.name)}
        quote = conn.dialect.identifier_preparer.quote
        for column in self.table.columns:
            if column.name not in existing:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE {quote(self.table.name)} ADD COLUMN {quote(column.name)} {kind}"))

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

    # -- what it is ------------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        url = self._url()
        if url.get_backend_name() == "sqlite":
            return f"the SQLite file {url.database}, table {self.table.name}"
        port = f":{url.port}" if url.port else ""
        shown = url.render_as_string(hide_password=True)
        return f"{url.get_backend_name()} at {url.host}{port} ({shown}), table {self.table.name}"

    @property
    def secret_url(self) -> str:
        return self._url().render_as_string(hide_password=False)

    @property
    def identity(self) -> str:
        return f"{self.secret_url}#{self.table.name}"

    def unreachable(self, error: BaseException) -> bool:
        if isinstance(error, OSError | TimeoutError | sa.exc.OperationalError | sa.exc.InterfaceError):
            return True
        if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
            return True
        return type(error).__name__ in CONNECTING_ERRORS

    # -- rows ----------------------------------------------------------------------------------------
    @staticmethod
    def _row(job: FailedJob) -> dict[str, Any]:
        data = job.to_dict()
        for name in ("args", "kwargs", "labels"):
            data[name] = json.dumps(data[name])
        for name in ("connection", "queue"):
            data[name] = data[name][:NAME_LENGTH]
        data["failed_at"] = job.failed_at
        data["record_size"] = job.size
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
        try:
            async with (await self.engine()).begin() as conn:
                await conn.execute(self.table.insert(), self._row(job))
        except sa.exc.IntegrityError:
            if not await self.has(job.id):  # not a copy of a record already kept (a spooled one)
                raise

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

    async def summaries(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJobSummary]:
        columns = self.table.c
        query = sa.select(
            columns.id,
            columns.connection,
            columns.queue,
            *(
                sa.func.substr(columns[name], 1, NAME_CHARS).label(name)
                for name in ("task_name", "task_id", "exception")
            ),
            sa.func.substr(columns.message, 1, FIRST_LINE_CHARS).label("message"),
            columns.attempts,
            columns.failed_at,
            columns.record_size.label("size"),
        )
        query = self._filtered(query, connection, queue).order_by(columns.failed_at.desc(), columns.id.desc())
        if limit is not None:
            query = query.limit(limit)
        async with (await self.engine()).connect() as conn:
            return [FailedJobSummary.read(dict(row)) for row in (await conn.execute(query)).mappings()]

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        query = self._filtered(sa.select(sa.func.count()).select_from(self.table), connection, queue)
        async with (await self.engine()).connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def get(self, id: str) -> FailedJob | None:
        async with (await self.engine()).connect() as conn:
            row = (await conn.execute(sa.select(self.table).where(self.table.c.id == id))).mappings().first()
        return None if row is None else self._job(row)

    async def has(self, id: str) -> bool:
        async with (await self.engine()).connect() as conn:
            found = await conn.scalar(sa.select(self.table.c.id).where(self.table.c.id == id))
        return found is not None

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        column = self.table.c.id
        query = sa.select(column).where(column.startswith(prefix, autoescape=True)).order_by(column).limit(limit)
        async with (await self.engine()).connect() as conn:
            return [str(id) for id in (await conn.execute(query)).scalars()]

    async def ids_for_task(self, prefix: str, limit: int) -> list[tuple[str, str]]:
        columns = self.table.c
        query = (
            sa.select(columns.id, columns.task_id)
            .where(sa.func.lower(columns.task_id).startswith(prefix, autoescape=True))
            .order_by(columns.failed_at.desc(), columns.id.desc())
            .limit(limit)
        )
        async with (await self.engine()).connect() as conn:
            return [(str(id), str(task_id).lower()) for id, task_id in await conn.execute(query)]

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

    async def claim(self, id: str, token: str, lease: float) -> FailedJob | None:
        columns, now = self.table.c, datetime.now(UTC)
        free = sa.or_(columns.claimed_until.is_(None), columns.claimed_until < now)
        take = (
            sa.update(self.table)
            .where(columns.id == id, free)
            .values(claimed_by=token, claimed_until=now + timedelta(seconds=lease))
        )
        async with (await self.engine()).begin() as conn:
            if (await conn.execute(take)).rowcount != 1:
                return None
            row = (await conn.execute(sa.select(self.table).where(columns.id == id))).mappings().first()
        return None if row is None else self._job(row)

    async def release(self, id: str, token: str) -> None:
        columns = self.table.c
        give_back = (
            sa.update(self.table)
            .where(columns.id == id, columns.claimed_by == token)
            .values(claimed_by=None, claimed_until=None)
        )
        async with (await self.engine()).begin() as conn:
            await conn.execute(give_back)
