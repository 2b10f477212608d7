"""The failed-jobs store: the contract every store passes (run here on SQLite, on Redis and PostgreSQL in
tests/integration/test_failed_store_servers.py), SQLite under concurrent writers, settings and lazy imports."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from taskiq import TaskiqMessage

from drivers.base.errors import MissingExtraError, QueueConfigurationError
from queue_manager.failed import FailedJob, FailedJobStore, FailedSettings, make_store
from queue_manager.failed.database import DatabaseStore
from queue_manager.failed.libraries import check_libraries
from queue_manager.failed.record import UNDECODABLE
from queue_manager.failed.store import LazyStore, hours_ago
from tests.helpers import ROOT, clean_environ


def no_redis(connection: str | None) -> str:
    raise AssertionError(f"the database store asked for a Redis URL ({connection!r})")


def make_job(
    *args: Any,
    connection: str = "redis",
    queue: str = "default",
    task_name: str = "app.jobs:charge",
    failed_at: datetime | None = None,
    id: str | None = None,
    error: BaseException | None = None,
    **kwargs: Any,
) -> FailedJob:
    message = TaskiqMessage(
        task_id="task-1",
        task_name=task_name,
        labels={"queue_name": queue, "retries": 3},
        args=list(args),
        kwargs=kwargs,
    )
    try:  # raised, so the record has a real traceback
        raise error or ValueError(f"job {args[0] if args else 0} is broken\nsecond line")
    except Exception as raised:
        job = FailedJob.from_message(message, raised, connection=connection, queue=queue, attempts=4)
    changes: dict[str, Any] = {}
    if failed_at is not None:
        changes["failed_at"] = failed_at
    if id is not None:
        changes["id"] = id
    return dataclasses.replace(job, **changes)


class StoreContract:
    """What every store does; a subclass provides the ``store`` fixture (a fresh, empty store)."""

    async def test_an_empty_store_lists_nothing(self, store: FailedJobStore) -> None:
        assert await store.all() == []
        assert await store.count() == 0
        assert await store.find("0123456789") is None

    async def test_every_field_reads_back_newest_first(self, store: FailedJobStore) -> None:
        now = datetime.now(UTC)
        old, new, middle = (make_job(n, failed_at=now - timedelta(hours=h)) for n, h in ((1, 3), (2, 1), (3, 2)))
        for job in (old, new, middle):
            await store.log(job)
        listed = await store.all()
        assert listed == [new, middle, old]
        first = listed[0]
        assert (first.task_name, first.task_id, first.args, first.kwargs) == ("app.jobs:charge", "task-1", [2], {})
        assert first.labels == {"queue_name": "default", "retries": 3}
        assert (first.exception, first.summary, first.attempts) == ("ValueError", "ValueError: job 2 is broken", 4)
        assert "raise error or ValueError" in first.traceback
        assert first.failed_at == new.failed_at and first.failed_at.tzinfo is not None
        assert first.payload is None and first.raw_payload() is None

    async def test_filters_by_connection_and_queue(self, store: FailedJobStore) -> None:
        jobs = [
            make_job(1, connection="redis", queue="emails"),
            make_job(2, connection="redis", queue="default"),
            make_job(3, connection="nats", queue="emails"),
        ]
        for job in jobs:
            await store.log(job)
        assert {job.args[0] for job in await store.all(connection="redis")} == {1, 2}
        assert {job.args[0] for job in await store.all(queue="emails")} == {1, 3}
        assert [job.args[0] for job in await store.all("nats", "emails")] == [3]
        assert await store.all("nats", "default") == []
        assert [await store.count(), await store.count("redis"), await store.count(queue="emails")] == [3, 2, 2]
        assert await store.count("rabbitmq") == 0

    async def test_a_limit_gives_the_newest_ones_with_or_without_a_filter(self, store: FailedJobStore) -> None:
        now = datetime.now(UTC)
        for n in range(6):
            queue = "emails" if n % 2 else "default"
            await store.log(make_job(n, queue=queue, failed_at=now - timedelta(minutes=10 - n)))
        assert [job.args[0] for job in await store.all(limit=3)] == [5, 4, 3]
        assert [job.args[0] for job in await store.all(queue="emails", limit=2)] == [5, 3]
        assert [job.args[0] for job in await store.all(queue="default", limit=10)] == [4, 2, 0]
        assert await store.all(limit=0) == []

    async def test_find_by_id_or_unique_prefix(self, store: FailedJobStore) -> None:
        job, other = make_job(1), make_job(2)
        await store.log(job)
        await store.log(other)
        assert await store.find(job.id) == job
        assert await store.find(f"  {job.id}\n") == job
        assert await store.find(job.id[:8]) == job
        assert await store.find(other.id[:6]) == other
        assert await store.find(job.id[:5]) is None  # too short to be taken as a prefix
        assert await store.find("ffffffff-0000") is None
        assert await store.find("") is None

    async def test_an_ambiguous_prefix_names_the_matches(self, store: FailedJobStore) -> None:
        first = make_job(1, id="abcdef01-0000-4000-8000-000000000001")
        second = make_job(2, id="abcdef02-0000-4000-8000-000000000002")
        await store.log(first)
        await store.log(second)
        with pytest.raises(QueueConfigurationError, match="ambiguous") as raised:
            await store.find("abcdef")
        assert first.id in str(raised.value) and second.id in str(raised.value)
        with pytest.raises(QueueConfigurationError):
            await store.forget("abcdef0")
        assert await store.count() == 2
        assert await store.find("abcdef02") == second

    async def test_a_job_id_finds_its_record_as_queue_batch_shows_it(self, store: FailedJobStore) -> None:
        """``queue:batch`` lists a batch's failed jobs by task id (hex, or a uuid for a chain link): find, forget
        and retry take it, whole or a unique 6+ character prefix; a record's own id wins, and a job id that failed
        twice is ambiguous, naming both records."""
        hex_task, link_task = "9f1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e", "5e6f7a8b-0000-4000-8000-00000000c0de"
        job = dataclasses.replace(make_job(1), task_id=hex_task)
        link = dataclasses.replace(make_job(2), task_id=link_task)
        await store.log(job)
        await store.log(link)
        assert await store.find(hex_task) == job
        assert await store.find(hex_task.upper()) == job
        assert await store.find(hex_task[:8]) == job
        assert await store.find(link_task) == link
        assert await store.find(link_task[:6]) == link
        assert await store.find(hex_task[:5]) is None, "too short to be taken as a prefix"
        assert await store.find(job.id) == job, "record ids still work"
        twice = dataclasses.replace(make_job(3), task_id=hex_task)
        await store.log(twice)
        with pytest.raises(QueueConfigurationError, match="matches several failed jobs") as raised:
            await store.find(hex_task[:10])
        assert job.id in str(raised.value) and twice.id in str(raised.value)
        assert await store.forget(twice.id)
        assert await store.forget(link_task) and await store.find(link_task) is None
        assert await store.count() == 1

    async def test_wildcards_and_store_keys_are_refused_as_ids(self, store: FailedJobStore) -> None:
        await store.log(make_job(1))
        await store.log(make_job(2))
        for pattern in ("%%%%%%", "______", "******", "??????", "[a-f0-9]", "index", "summaries", "claim:x"):
            with pytest.raises(QueueConfigurationError, match="is not a failed job id"):
                await store.find(pattern)
            with pytest.raises(QueueConfigurationError, match="is not a failed job id"):
                await store.forget(pattern)
        assert len(await store.summaries()) == 2
        assert await store.count() == 2

    async def test_forget_by_id_or_prefix(self, store: FailedJobStore) -> None:
        job, by_prefix, kept = make_job(1), make_job(2), make_job(3)
        for each in (job, by_prefix, kept):
            await store.log(each)
        assert await store.forget(job.id) is True
        assert await store.find(job.id) is None
        assert await store.forget(job.id) is False
        assert await store.forget(by_prefix.id[:7]) is True
        assert await store.all() == [kept]
        assert await store.count() == 1

    async def test_flush_everything_or_only_older_jobs(self, store: FailedJobStore) -> None:
        now = datetime.now(UTC)
        for n, hours in ((1, 30), (2, 10), (3, 0)):
            await store.log(make_job(n, failed_at=now - timedelta(hours=hours)))
        assert await store.flush(24) == 1
        assert [job.args[0] for job in await store.all()] == [3, 2]
        assert await store.flush(24) == 0
        assert await store.flush() == 2
        assert (await store.all(), await store.count()) == ([], 0)
        assert await store.flush() == 0

    async def test_prune_deletes_jobs_that_failed_before(self, store: FailedJobStore) -> None:
        now = datetime.now(UTC)
        old, recent = make_job(1, failed_at=now - timedelta(days=8)), make_job(2, failed_at=now - timedelta(hours=1))
        await store.log(old)
        await store.log(recent)
        assert await store.prune(now - timedelta(days=7)) == 1
        assert await store.all() == [recent]
        naive_utc = (now - timedelta(minutes=30)).replace(tzinfo=None)  # taken as UTC
        assert await store.prune(naive_utc) == 1
        assert await store.count() == 0

    async def test_an_undecodable_job_keeps_its_raw_payload(self, store: FailedJobStore) -> None:
        payload = b"\x00\xff\xfe{not json" + bytes(range(256))
        job = FailedJob.undecodable(payload, ValueError("Expecting value: line 1"), connection="nats", queue="emails")
        await store.log(job)
        found = await store.find(job.id)
        assert found is not None
        assert found.raw_payload() == payload
        assert (found.task_name, found.task_id, found.args, found.queue) == (UNDECODABLE, "", [], "emails")
        assert found.summary == "ValueError: Expecting value: line 1"

    async def test_json_unsafe_arguments_and_text_are_stored(self, store: FailedJobStore) -> None:
        cycle: list[Any] = []
        cycle.append(cycle)
        job = make_job(
            object(),
            {1: {2, 3}, "b": b"raw"},
            float("nan"),
            cycle,
            error=RuntimeError("nul \x00 and a lone surrogate \udcff, emoji \U0001f525"),
            when=datetime(2026, 1, 2),
        )
        await store.log(job)
        found = await store.find(job.id)
        assert found == job
        assert found.args[0].startswith("<object object at")
        assert found.args[1] == {"1": "{2, 3}", "b": "b'raw'"}
        assert found.args[2] == "nan"
        assert found.kwargs == {"when": "datetime.datetime(2026, 1, 2, 0, 0)"}
        assert "\x00" not in found.message and "\U0001f525" in found.message
        json.dumps(found.to_dict())

    async def test_a_listing_reads_summaries_newest_first(self, store: FailedJobStore) -> None:
        now = datetime.now(UTC)
        old = make_job(1, "x" * 100_000, queue="emails", failed_at=now - timedelta(hours=2))
        new = make_job(2, connection="nats", error=RuntimeError("\n  first line\nsecond"), failed_at=now)
        for job in (old, new):
            await store.log(job)
        first, second = await store.summaries()
        assert (first.id, second.id) == (new.id, old.id)
        assert (first.connection, first.queue, first.task_name, first.task_id) == (
            "nats",
            "default",
            new.task_name,
            "task-1",
        )
        assert (first.exception, first.first_line, first.summary) == (
            "RuntimeError",
            "first line",
            "RuntimeError: first line",
        )
        assert (first.attempts, first.failed_at) == (4, new.failed_at)
        assert second.size == old.size and second.size > 100_000, "the size without reading the record"
        assert [job.id for job in await store.summaries(queue="emails")] == [old.id]
        assert [job.id for job in await store.summaries("nats", limit=5)] == [new.id]
        assert [job.id for job in await store.summaries(limit=1)] == [new.id]
        assert await store.summaries(limit=0) == []

    async def test_logging_the_same_record_again_keeps_one(self, store: FailedJobStore) -> None:
        job = make_job(1)
        await store.log(job)
        await store.log(job)  # a spooled copy of a record whose first write timed out after all
        assert [found.id for found in await store.all()] == [job.id]
        assert await store.count() == 1

    async def test_of_several_claims_at_once_one_wins(self, store: FailedJobStore) -> None:
        job = make_job(1)
        await store.log(job)
        claims = await asyncio.gather(*(store.claim(job.id, f"token-{n}", 60) for n in range(10)))
        assert [claimed for claimed in claims if claimed is not None] == [job]
        winner = f"token-{next(n for n, claimed in enumerate(claims) if claimed is not None)}"
        assert await store.claim(job.id, "late", 60) is None, "held"
        await store.release(job.id, "not-the-holder")
        assert await store.claim(job.id, "late", 60) is None, "only the holder gives it back"
        assert [found.id for found in await store.summaries()] == [job.id], "a claimed job is still listed"
        await store.release(job.id, winner)
        assert await store.claim(job.id, "next", 60) == job, "given back: claimed again at once"
        assert await store.remove(job.id) is True
        assert await store.claim(job.id, "after", 60) is None, "a job that is gone cannot be claimed"

    async def test_a_claim_lapses_after_its_lease(self, store: FailedJobStore) -> None:
        job = make_job(1)
        await store.log(job)
        assert await store.claim(job.id, "died", 0.3) == job  # a retry that dies before it ends
        assert await store.claim(job.id, "next", 60) is None
        deadline, claimed = time.monotonic() + 30, None
        while claimed is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            claimed = await store.claim(job.id, "next", 60)
        assert claimed == job, "the next retry gets it once the lease is over"

    async def test_usable_again_after_close(self, store: FailedJobStore) -> None:
        job = make_job(1)
        await store.log(job)
        await store.close()
        assert await store.find(job.id) == job


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[FailedJobStore]:
        store = make_store(FailedSettings(), tmp_path, no_redis)
        yield store
        await store.close()


# -- SQLite specifics --------------------------------------------------------------------------------------


async def test_the_default_database_is_sqlite_under_storage_in_wal_mode(tmp_path: Path) -> None:
    store = make_store(FailedSettings(), tmp_path, no_redis)
    path = tmp_path / "storage" / "queue" / "failed_jobs.sqlite"
    assert not path.parent.exists()  # nothing happens before first use
    job = make_job(7)
    await store.log(job)
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT id, task_name, args FROM failed_jobs").fetchall() == [
            (job.id, "app.jobs:charge", "[7]")
        ]


async def test_a_configured_url_and_table_are_used(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "jobs.db"
    store = make_store(FailedSettings(url=f"sqlite+aiosqlite:///{path}", table="my_failures"), tmp_path, no_redis)
    await store.log(make_job(1))
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM my_failures").fetchone() == (1,)
    assert not (tmp_path / "storage").exists()


async def test_two_engines_write_at_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.sqlite'}"
    first, second = DatabaseStore(url), DatabaseStore(url)
    try:
        await asyncio.gather(
            *(first.log(make_job(n, connection="one")) for n in range(60)),
            *(second.log(make_job(n, connection="two")) for n in range(60)),
        )
        assert [await first.count("one"), await second.count("two"), await first.count()] == [60, 60, 120]
    finally:
        await first.close()
        await second.close()


WRITER = """
import asyncio, sys, time
from pathlib import Path
from taskiq import TaskiqMessage
from queue_manager.failed import FailedJob, FailedSettings, make_store

name, url, go, jobs = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
store = make_store(FailedSettings(url=url), Path("."), lambda connection: "")
print("ready", flush=True)
deadline = time.monotonic() + 120
while not go.exists():
    assert time.monotonic() < deadline, "never told to go"
    time.sleep(0.01)

async def main():
    message = TaskiqMessage(task_id="", task_name="app:job", labels={}, args=[], kwargs={})
    for n in range(jobs):  # the first log creates the table: both processes race to do it
        job = FailedJob.from_message(message, ValueError(n), connection=name, queue="q", attempts=1)
        await store.log(job)
    await store.close()

asyncio.run(main())
print("done", flush=True)
"""


def test_two_processes_write_at_once_without_database_is_locked(tmp_path: Path) -> None:
    url, go, jobs = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'failed.sqlite'}", tmp_path / "go", 150
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, url, str(go), str(jobs)],
            cwd=ROOT,
            env=clean_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    ]
    try:
        for writer in writers:  # both are up (imports done) before either writes
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        go.touch()
        outputs = [writer.communicate(timeout=180) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    for writer, (out, err) in zip(writers, outputs, strict=True):
        assert "locked" not in err
        assert (writer.returncode, out) == (0, "done\n"), err

    async def counts() -> list[int]:
        store = DatabaseStore(url)
        try:
            return [await store.count("first"), await store.count("second")]
        finally:
            await store.close()

    assert asyncio.run(counts()) == [jobs, jobs]


# -- settings and libraries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:hunter2@db.example/app", "postgresql+asyncpg://"),
        ("postgresql+psycopg2://app:hunter2@db.example/app", "synchronous driver 'psycopg2'"),
        ("mysql://app:hunter2@db.example/app", "mysql+aiomysql://"),
        ("mysql+pymysql://app:hunter2@db.example/app", "synchronous driver 'pymysql'"),
        ("sqlite:///hunter2.sqlite", "sqlite+aiosqlite://"),
        ("postgres://app:hunter2@db.example/app", "postgresql+asyncpg://"),
        ("hunter2", "is not a database URL"),
        ("postgresql+asyncpg:/app:hunter2@db.example/app", "is not a database URL"),
        ("oracle+oracledb://app:hunter2@db.example/app", "not a database the failed-jobs store supports"),
        ("postgresql+asyncpg://app:hunter2@db.example:99999/app", "invalid port"),
    ],
)
def test_a_url_that_cannot_work_is_refused_without_its_password(url: str, expected: str) -> None:
    with pytest.raises(ValidationError) as raised:
        FailedSettings(url=url)
    text = str(raised.value)
    assert expected in text
    assert "hunter2" not in text and "hunter2" not in repr(raised.value)
    assert "hunter2" not in json.dumps(raised.value.errors(include_input=False, include_url=False), default=str)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://app:secret@127.0.0.1:5432/app",
        "mysql+aiomysql://app:secret@127.0.0.1/app?charset=utf8mb4",
        "sqlite+aiosqlite:///relative.sqlite",
        "sqlite+aiosqlite:////abs/path.sqlite",
    ],
)
def test_async_urls_are_accepted_and_kept_secret(url: str) -> None:
    settings = FailedSettings(url=url)
    assert settings.url_value == url
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(
    "values",
    [{"driver": "sqs"}, {"drivers": "redis"}, {"table": "failed jobs; drop"}, {"table": "1st"}, {"prefix": ""}],
)
def test_other_invalid_settings_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FailedSettings(**values)


def missing(monkeypatch: pytest.MonkeyPatch, library: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == library else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize(
    ("values", "library", "extra"),
    [
        ({"url": "postgresql+asyncpg://u:hunter2@h/db"}, "asyncpg", "pip install 'fastapi-startkit-queue[postgres]'"),
        ({"url": "mysql+aiomysql://u:hunter2@h/db"}, "aiomysql", "pip install 'fastapi-startkit-queue[mysql]'"),
        ({"driver": "redis"}, "redis", "pip install 'fastapi-startkit-queue[redis]'"),
        ({}, "aiosqlite", "pip install --force-reinstall 'fastapi-startkit-queue'"),
    ],
)
def test_a_missing_library_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, Any], library: str, extra: str
) -> None:
    settings = FailedSettings(**values)
    check_libraries(settings)  # installed here
    missing(monkeypatch, library)
    with pytest.raises(MissingExtraError) as raised:
        check_libraries(settings)
    assert f"needs the '{library}' library" in str(raised.value) and extra in str(raised.value)
    assert "hunter2" not in str(raised.value)
    with pytest.raises(MissingExtraError):  # at boot, when the store is built
        make_store(settings, Path("."), lambda connection: "redis://127.0.0.1:1/0")


def test_the_null_driver_needs_nothing_and_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for library in ("sqlalchemy", "redis"):
        missing(monkeypatch, library)
    store = make_store(FailedSettings(driver="null"), Path("."), no_redis)

    async def run() -> list[Any]:
        job = make_job(1)
        await store.log(job)
        return [await store.all(), await store.count(), await store.find(job.id), await store.forget(job.id)]

    assert asyncio.run(run()) == [[], 0, None, False]


def test_the_redis_driver_asks_for_its_connection_url_and_does_not_connect() -> None:
    asked: list[str | None] = []

    def redis_url(connection: str | None) -> str:
        asked.append(connection)
        return "redis://127.0.0.1:1/0"  # nothing listens there: building the store must not connect

    make_store(FailedSettings(driver="redis", connection="cache"), Path("."), redis_url)
    make_store(FailedSettings(driver="redis"), Path("."), redis_url)
    assert asked == ["cache", None]


LAZY = """
import asyncio, sys
from pathlib import Path
from queue_manager.failed import FailedSettings, make_store

make_store(FailedSettings(driver="redis"), Path(sys.argv[1]), lambda connection: "redis://127.0.0.1:1/0")
make_store(FailedSettings(driver="null"), Path(sys.argv[1]), lambda connection: "")
store = make_store(FailedSettings(), Path(sys.argv[1]), lambda connection: "")
print("before first use:", "sqlalchemy" in sys.modules, "aiosqlite" in sys.modules)
print("count:", asyncio.run(store.count()))
print("after first use:", "sqlalchemy" in sys.modules)
"""


def test_sqlalchemy_is_imported_only_when_the_store_is_first_used(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", LAZY, str(tmp_path)],
        cwd=ROOT,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["before first use: False False", "count: 0", "after first use: True"]
    assert time.monotonic() - started < 120


# -- the record itself ----------------------------------------------------------------------------------------


def test_a_record_round_trips_through_json() -> None:
    job = FailedJob.undecodable(
        b"\x80\x81", UnicodeDecodeError("utf-8", b"\x80", 0, 1, "bad"), connection="r", queue="q"
    )
    again = FailedJob.from_dict(json.loads(json.dumps(job.to_dict())))
    assert again == job and again.raw_payload() == b"\x80\x81"
    assert job.to_dict()["payload"] == "gIE="
    naive = FailedJob.from_dict({**job.to_dict(), "failed_at": "2026-01-02T03:04:05", "unknown": 1})
    assert naive.failed_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_summary_is_the_first_line_of_the_error() -> None:
    assert make_job(7).summary == "ValueError: job 7 is broken"
    assert make_job(error=KeyError()).summary == "KeyError"
    assert make_job(error=RuntimeError("\n\nlater")).summary == "RuntimeError: later"


def test_hours_ago() -> None:
    assert abs((datetime.now(UTC) - timedelta(hours=1.5)) - hours_ago(1.5)) < timedelta(seconds=5)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(QueueConfigurationError):
            hours_ago(bad)


def test_make_store_defers_the_database_store(tmp_path: Path) -> None:
    store = make_store(FailedSettings(table="x_failed"), tmp_path, no_redis)
    assert isinstance(store, LazyStore) and store._store is None
    assert isinstance(store.store, DatabaseStore) and store.store.table.name == "x_failed"
    assert store.store.default_path == tmp_path.resolve() / "storage" / "queue" / "failed_jobs.sqlite"


class TestMemoryStore(StoreContract):
    """The store the pytest plugin gives each test (``FailedJobs.isolated``)."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[FailedJobStore]:
        from queue_manager.failed.memory import MemoryStore

        yield MemoryStore()
