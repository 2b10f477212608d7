"""The failed-jobs store contract against the real Redis (unique prefix, removed afterwards), and a private
PostgreSQL and MariaDB (each started for this session on a free port, deleted afterwards)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from drivers.base.errors import QueueConfigurationError
from queue_manager.failed import FailedJobStore, FailedSettings, make_store
from queue_manager.failed.database import DatabaseStore, failed_jobs_table
from queue_manager.failed.store import LazyStore
from tests.helpers import unique
from tests.integration.failed.stores import REDIS_URL, delete_keys
from tests.unit.failed.test_failed_store import StoreContract, make_job, no_redis

DATABASES = ["postgres", "mysql"]


def database_url(request: pytest.FixtureRequest, name: str) -> str:
    """Only the servers a selected test needs are started."""
    return str(request.getfixturevalue(f"{name}_url"))


def redis_store(prefix: str) -> FailedJobStore:
    def redis_url(connection: str | None) -> str:
        assert connection is None
        return REDIS_URL

    return make_store(FailedSettings(driver="redis", prefix=prefix), Path("."), redis_url)


def database(store: FailedJobStore) -> DatabaseStore:
    inner = store.store if isinstance(store, LazyStore) else store
    assert isinstance(inner, DatabaseStore)
    return inner


async def drop_table(store: DatabaseStore) -> None:
    async with (await store.engine()).begin() as conn:
        await conn.run_sync(store.table.drop)
    await store.close()


class TestServerStores(StoreContract):
    @pytest.fixture(params=["redis", *DATABASES])
    async def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FailedJobStore]:
        if request.param == "redis":
            prefix = f"test:{unique('failed')}"
            store = redis_store(prefix)
            try:
                yield store
            finally:
                await store.close()
                await delete_keys(prefix)
        else:
            url = database_url(request, request.param)
            store = make_store(FailedSettings(url=url, table=unique("failed_")), tmp_path, no_redis)
            try:
                yield store
            finally:
                await drop_table(database(store))


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[str, FailedJobStore]]:
    """A Redis store under a unique prefix, and that prefix; its keys are deleted afterwards."""
    prefix = f"test:{unique('failed')}"
    store = redis_store(prefix)
    try:
        yield prefix, store
    finally:
        await store.close()
        await delete_keys(prefix)


async def test_redis_keeps_one_key_per_job_and_an_index_by_time(redis_prefix: tuple[str, FailedJobStore]) -> None:
    prefix, store = redis_prefix
    async with Redis.from_url(REDIS_URL) as client:
        job = make_job(1)
        await store.log(job)
        assert json.loads(await client.get(f"{prefix}:{job.id}"))["task_name"] == "app.jobs:charge"
        assert await client.zscore(f"{prefix}:index", job.id) == pytest.approx(job.failed_at.timestamp())
        assert not await client.exists(prefix)  # the bare prefix is left to the list driver's queues
        assert await store.forget(job.id) is True
        assert [key async for key in client.scan_iter(match=f"{prefix}*")] == []


async def test_redis_flush_removes_keys_in_batches(redis_prefix: tuple[str, FailedJobStore]) -> None:
    prefix, store = redis_prefix
    async with Redis.from_url(REDIS_URL) as client:
        await asyncio.gather(*(store.log(make_job(n)) for n in range(1203)))
        assert await store.count() == 1203
        assert await store.flush() == 1203
        assert [key async for key in client.scan_iter(match=f"{prefix}*")] == []


@pytest.mark.parametrize("server", DATABASES)
async def test_stores_in_several_processes_create_the_table_at_once(
    request: pytest.FixtureRequest, server: str
) -> None:
    url, table = database_url(request, server), unique("failed_")
    stores: list[Any] = [DatabaseStore(url, table) for _ in range(4)]
    try:
        jobs = [make_job(n) for n in range(4)]
        await asyncio.gather(*(store.log(job) for store, job in zip(stores, jobs, strict=True)))
        assert {job.id for job in await stores[0].all()} == {job.id for job in jobs}
    finally:
        await asyncio.gather(*(store.close() for store in stores[1:]))
        await drop_table(stores[0])


@pytest.mark.parametrize(("server", "column_type"), [("postgres", "timestamp with time zone"), ("mysql", "datetime")])
async def test_failed_at_keeps_microseconds(request: pytest.FixtureRequest, server: str, column_type: str) -> None:
    store = DatabaseStore(database_url(request, server), unique("failed_"))
    try:
        job = make_job(1)
        await store.log(job)
        async with (await store.engine()).connect() as conn:
            stored = (await conn.execute(store.table.select())).mappings().one()
            stored_type = await conn.scalar(
                sa.text("SELECT data_type FROM information_schema.columns WHERE table_name = :t AND column_name = :c"),
                {"t": store.table.name, "c": "failed_at"},
            )
        assert stored_type == column_type
        assert stored["failed_at"] == job.failed_at and stored["failed_at"].microsecond == job.failed_at.microsecond
        assert json.loads(stored["args"]) == [1]
    finally:
        await drop_table(store)


NEW_COLUMNS = ("record_size", "claimed_by", "claimed_until")


@pytest.mark.parametrize("server", ["sqlite", *DATABASES])
async def test_a_table_made_by_an_older_version_gets_the_new_columns(
    request: pytest.FixtureRequest, server: str, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite'}" if server == "sqlite" else database_url(request, server)
    table = unique("failed_")
    older = [
        sa.Column(column.name, column.type, primary_key=column.primary_key, nullable=column.nullable)
        for column in failed_jobs_table(table, sa.MetaData()).columns
        if column.name not in NEW_COLUMNS
    ]
    legacy = sa.Table(table, sa.MetaData(), *older)
    old_job = make_job(1, failed_at=datetime.now(UTC) - timedelta(hours=1))
    store, other = DatabaseStore(url, table), DatabaseStore(url, table)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(legacy.create)
            row = {key: value for key, value in DatabaseStore._row(old_job).items() if key not in NEW_COLUMNS}
            await conn.execute(legacy.insert(), row)
        new_job = make_job(2)
        await store.log(new_job)  # the first use adds the columns
        newest, oldest = await store.summaries()
        assert (newest.id, newest.size) == (new_job.id, new_job.size)
        assert (oldest.id, oldest.size) == (old_job.id, None), "recorded before sizes were kept"
        assert await store.claim(old_job.id, "token", 60) == old_job
        await other.log(make_job(3))  # a second process finds them added
        assert await other.count() == 3
    finally:
        await engine.dispose()
        await other.close()
        await drop_table(store)


async def test_redis_lists_a_job_recorded_without_a_summary_and_writes_it(
    redis_prefix: tuple[str, FailedJobStore],
) -> None:
    prefix, store = redis_prefix
    job = make_job(1)
    async with Redis.from_url(REDIS_URL) as client:  # as an older version wrote it: no summary
        await client.set(f"{prefix}:{job.id}", json.dumps(job.to_dict()))
        await client.zadd(f"{prefix}:index", {job.id: job.failed_at.timestamp()})
        [summary] = await store.summaries()
        assert (summary.id, summary.summary, summary.size) == (job.id, job.summary, job.size)
        assert await client.hexists(f"{prefix}:summaries", job.id), "written for the next listing"


async def test_redis_ids_cannot_name_the_stores_own_keys(redis_prefix: tuple[str, FailedJobStore]) -> None:
    """`queue:forget index` used to delete the index (every job vanished from queue:failed while its key stayed);
    `queue:retry index` raised WRONGTYPE."""
    _, store = redis_prefix
    jobs = [make_job(n) for n in range(3)]
    for job in jobs:
        await store.log(job)
    await store.claim(jobs[0].id, "token", 60)
    for key in ("index", "summaries", f"claim:{jobs[0].id}", "INDEX", jobs[0].id + ":x"):
        with pytest.raises(QueueConfigurationError, match="is not a failed job id"):
            await store.forget(key)
        with pytest.raises(QueueConfigurationError, match="is not a failed job id"):
            await store.find(key)
    assert {job.id for job in await store.all()} == {job.id for job in jobs}
    assert await store.count() == 3
