"""The failed-jobs store contract against the real Redis (unique prefix, removed afterwards), and a private
PostgreSQL and MariaDB (each started for this session on a free port, deleted afterwards)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from queue_manager.failed import FailedJobStore, FailedSettings, make_store
from queue_manager.failed.database import DatabaseStore
from queue_manager.failed.store import LazyStore
from tests.helpers import unique
from tests.servers import private_mariadb, private_postgres
from tests.unit.failed.test_failed_store import StoreContract, make_job, no_redis

REDIS_URL = "redis://127.0.0.1:6379/0"


DATABASES = ["postgres", "mysql"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with private_postgres("failed_jobs") as server:
        yield server.url


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    with private_mariadb("failed_jobs") as server:
        yield server.url


def database_url(request: pytest.FixtureRequest, name: str) -> str:
    """Only the servers a selected test needs are started."""
    return str(request.getfixturevalue(f"{name}_url"))


async def delete_keys(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


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


async def test_redis_keeps_one_key_per_job_and_an_index_by_time() -> None:
    prefix = f"test:{unique('failed')}"
    store = redis_store(prefix)
    client = Redis.from_url(REDIS_URL)
    try:
        job = make_job(1)
        await store.log(job)
        assert json.loads(await client.get(f"{prefix}:{job.id}"))["task_name"] == "app.jobs:charge"
        assert await client.zscore(f"{prefix}:index", job.id) == pytest.approx(job.failed_at.timestamp())
        assert not await client.exists(prefix)  # the bare prefix is left to the list driver's queues
        assert await store.forget(job.id) is True
        assert [key async for key in client.scan_iter(match=f"{prefix}*")] == []
    finally:
        await client.aclose()
        await store.close()
        await delete_keys(prefix)


async def test_redis_flush_removes_keys_in_batches() -> None:
    prefix = f"test:{unique('failed')}"
    store = redis_store(prefix)
    client = Redis.from_url(REDIS_URL)
    try:
        await asyncio.gather(*(store.log(make_job(n)) for n in range(1203)))
        assert await store.count() == 1203
        assert await store.flush() == 1203
        assert [key async for key in client.scan_iter(match=f"{prefix}*")] == []
    finally:
        await client.aclose()
        await store.close()
        await delete_keys(prefix)


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
