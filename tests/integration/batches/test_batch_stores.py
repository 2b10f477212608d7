"""The batch store against real servers: SQLite (a file), a private PostgreSQL and MariaDB, and the shared Redis.
Each job is counted once by its id however often it is recorded, and exactly one record finishes the batch, with
two writers racing over 1,000 completions each (the counter race every anchor lost)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from queue_manager.batches import DONE, FAILED, SKIPPED, BatchRow, BatchStore, MemoryBatchStore
from queue_manager.batches.store import hours_ago, utc_now
from tests.helpers import unique
from tests.integration.failed.stores import REDIS_URL, delete_keys, drop_table
from tests.servers import private_mariadb, private_postgres

STORES = ["sqlite", "postgres", "mysql", "redis", "memory"]
JOBS = 1000


@pytest.fixture(scope="session")
def batches_postgres_url() -> Iterator[str]:
    with private_postgres("batches") as server:
        yield server.url


@pytest.fixture(scope="session")
def batches_mysql_url() -> Iterator[str]:
    with private_mariadb("batches") as server:
        yield server.url


@pytest.fixture(params=STORES)
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """Makes stores of one kind over the same data (each its own connections: two workers)."""
    kind = request.param
    made: list[BatchStore] = []
    table = unique("batches_")
    prefix = f"test:{unique('batches')}"
    url = None
    if kind in ("postgres", "mysql"):
        url = str(request.getfixturevalue(f"batches_{kind}_url"))

    def make() -> BatchStore:
        if kind == "memory":  # one process: every "worker" shares the one store
            if not made:
                made.append(MemoryBatchStore())
            return made[0]
        if kind == "redis":
            from queue_manager.batches.redis import RedisBatchStore

            store: BatchStore = RedisBatchStore(REDIS_URL, prefix)
        else:
            from queue_manager.batches.database import DatabaseBatchStore

            store = DatabaseBatchStore(url, table, tmp_path / "batches.sqlite")
        made.append(store)
        return store

    try:
        yield make
    finally:
        for store in made:
            await store.close()
        if kind == "redis":
            await delete_keys(prefix)
        elif url is not None:
            for name in (f"{table}_jobs", f"{table}_claims", table):
                await drop_table(url, name)


async def test_two_writers_racing_over_2000_completions_count_each_once_and_finish_once(make_store: Any) -> None:
    one, two = make_store(), make_store()
    id = unique("b")
    await one.create(BatchRow(id, "Race", 2 * JOBS, {"allow_failures": True}, utc_now()))
    finished: list[bool] = []

    async def writer(store: BatchStore, ids: list[str]) -> None:
        async def each(job: str) -> None:
            outcome = FAILED if job.endswith("7") else DONE
            recorded = await store.record(id, job, outcome)
            assert recorded is not None
            finished.append(recorded.finished_now)

        for first in range(0, len(ids), 25):  # 25 at a time per writer, as a worker runs jobs side by side
            await asyncio.gather(*(each(job) for job in ids[first : first + 25]))

    mine = [f"job-{n}" for n in range(JOBS)]
    theirs = [f"job-{n}" for n in range(JOBS, 2 * JOBS)]
    # each writer also records 100 of the other's jobs again: a job delivered twice, to two workers
    await asyncio.gather(writer(one, mine + theirs[:100]), writer(two, theirs + mine[:100]))
    row = await one.find(id)
    assert row is not None
    failed = sum(1 for n in range(2 * JOBS) if str(n).endswith("7"))
    assert (row.done, row.failed, row.pending) == (2 * JOBS - failed, failed, 0)
    assert sorted(row.failed_job_ids) == sorted(f"job-{n}" for n in range(2 * JOBS) if str(n).endswith("7"))
    assert finished.count(True) == 1, "exactly one record finished the batch"
    assert row.finished_at is not None


async def test_a_failed_job_retried_then_done_and_added_jobs_and_skips(make_store: Any) -> None:
    store = make_store()
    id = unique("b")
    await store.create(BatchRow(id, "Retry", 2, {}, utc_now()))
    await store.record(id, "a", FAILED)
    last = await store.record(id, "b", DONE)
    assert last is not None and last.finished_now
    await store.forget_failures(id, ["a"])
    again = await store.find(id)
    assert again is not None and again.pending == 1 and again.finished_at is None
    done = await store.record(id, "a", DONE)
    assert done is not None and done.finished_now and done.row.failed == 0 and done.row.done == 2
    await store.add_jobs(id, 2)
    grown = await store.find(id)
    assert grown is not None and grown.total_jobs == 4 and grown.pending == 2 and grown.finished_at is None
    await store.record(id, "c", SKIPPED)
    end = await store.record(id, "d", DONE)
    assert end is not None and end.finished_now and end.row.skipped == 1


async def test_retrying_a_failed_chain_link_makes_its_skipped_later_links_pending_again(make_store: Any) -> None:
    """queue:retry-batch on a chain that failed at a link: the links after it (recorded skipped so the batch could
    finish) are pending again in the same write, so the batch finishes only after they run."""
    store = make_store()
    id = unique("b")
    await store.create(BatchRow(id, "Chain", 5, {}, utc_now()))
    for job, outcome in (("a", DONE), ("k", FAILED), ("k1", SKIPPED), ("k2", SKIPPED), ("other", SKIPPED)):
        await store.record(id, job, outcome)
    await store.forget_failures(id, ["k"], ["k1", "k2", "a"])  # "a" is done, not skipped: it stays done
    row = await store.find(id)
    assert row is not None and (row.done, row.failed, row.skipped, row.pending) == (1, 0, 1, 3), row
    assert row.finished_at is None
    for job in ("k", "k1"):
        recorded = await store.record(id, job, DONE)
        assert recorded is not None and recorded.new and not recorded.finished_now
    last = await store.record(id, "k2", DONE)
    assert last is not None and last.finished_now and (last.row.done, last.row.skipped, last.row.pending) == (4, 1, 0)


async def test_a_batch_made_finished_is_found_finished(make_store: Any) -> None:
    """An empty batch is finished when it is made (nothing would ever finish it): the store keeps that."""
    store = make_store()
    id, now = unique("b"), utc_now()
    await store.create(BatchRow(id, "Empty", 0, {}, now, finished_at=now))
    found = await store.find(id)
    assert found is not None and found.total_jobs == 0 and found.pending == 0
    assert found.finished_at is not None and abs((found.finished_at - now).total_seconds()) < 1


async def test_prune_deletes_the_claims_older_than_its_longest_window(make_store: Any) -> None:
    """Chain links' and callbacks' claims (no batch row owns a chain's) are deleted by queue:prune-batches once older
    than the longest of its windows; a deleted batch's own claims go with it."""
    store = make_store()
    id, chain = unique("b"), unique("c")
    await store.create(BatchRow(id, "Claims", 1, {}, utc_now()))
    keys = [f"chain:{chain}:1:run", f"chain:{chain}:2:sent", f"chain:{chain}:finally:sent", f"chain:{chain}:finally"]
    for key in [*keys, f"batch:{id}:then:0:done"]:
        assert await store.claim(key, "n1")
    soon = utc_now() + timedelta(minutes=1)
    assert await store.prune(soon, hours_ago(72), soon) == 0, "unfinished, made now: kept"
    assert [await store.owner(key) for key in keys] == ["n1"] * 4, "made after the longest window's cutoff: kept"
    assert await store.prune(soon, soon, soon) == 1
    assert [await store.owner(key) for key in keys] == [None] * 4
    assert await store.owner(f"batch:{id}:then:0:done") is None


async def test_resume_clears_the_cancelled_mark_for_every_reader(make_store: Any) -> None:
    """queue:retry-batch resumes a cancelled batch (its retried jobs would skip themselves otherwise): another
    process reading the same store sees it not cancelled, and it can be cancelled again."""
    store, other = make_store(), make_store()
    id = unique("b")
    await store.create(BatchRow(id, "Resume", 2, {}, utc_now()))
    assert not await store.resume(id), "not cancelled: nothing to resume"
    assert not await store.resume(unique("unknown"))
    assert await store.cancel(id)
    cancelled = await other.find(id)
    assert cancelled is not None and cancelled.cancelled_at is not None
    assert await store.resume(id) and not await store.resume(id)
    resumed = await other.find(id)
    assert resumed is not None and resumed.cancelled_at is None and resumed.total_jobs == 2
    assert await other.cancel(id), "a resumed batch can be cancelled again"


async def test_claims_have_one_owner_and_cancel_prune_and_listing(make_store: Any) -> None:
    store = make_store()
    id = unique("b")
    await store.create(BatchRow(id, "Claims", 1, {"x": 1}, utc_now()))
    assert await store.claim(f"batch:{id}:then", "n1")
    assert await store.claim(f"batch:{id}:then", "n1"), "its owner may claim it again (a re-delivery)"
    assert not await store.claim(f"batch:{id}:then", "n2")
    assert await store.owner(f"batch:{id}:then") == "n1"
    assert await store.cancel(id) and not await store.cancel(id)
    listed = await store.all()
    assert id in [row.id for row in listed] and listed[0].options in ({"x": 1}, listed[0].options)
    assert await store.prune(hours_ago(24), hours_ago(72), utc_now()) >= 1  # cancelled before now
    assert await store.find(id) is None and await store.owner(f"batch:{id}:then") is None


async def test_sqlite_groups_written_in_the_event_loop_never_checkpoint_there(tmp_path: Path) -> None:
    """The event loop's connection does not checkpoint the WAL (a checkpoint fsyncs): the store's thread does, every
    CHECKPOINT_EVERY groups written from the loop, so the WAL does not grow without end."""
    from queue_manager.batches import database
    from queue_manager.batches.sqlite_groups import SqliteGroups

    path = tmp_path / "batches.sqlite"
    store = database.DatabaseBatchStore(f"sqlite+aiosqlite:///{path}")
    threads: list[str] = []
    checkpoint = SqliteGroups.checkpoint

    def counted(self: SqliteGroups) -> None:
        import threading

        threads.append(threading.current_thread().name)
        checkpoint(self)

    try:
        SqliteGroups.checkpoint = counted  # type: ignore[method-assign]
        await store.create(BatchRow("wal", "", 5000, {}, utc_now()))
        for n in range(database.CHECKPOINT_EVERY * 2 + 10):
            await store.record("wal", f"j{n}", DONE)
        assert store._sqlite is not None and store._checkpoint is not None
        await store._checkpoint
        loop_connection = store._sqlite._local.now
        assert loop_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        assert len(threads) >= 1 and all(name.startswith("batch-store") for name in threads), threads
        row = await store.find("wal")
        assert row is not None and row.done == database.CHECKPOINT_EVERY * 2 + 10
    finally:
        SqliteGroups.checkpoint = checkpoint  # type: ignore[method-assign]
        await store.close()
