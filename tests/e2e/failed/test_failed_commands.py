"""The failed-job commands as a user runs them (``python artisan ...`` in the example app) against real stores:
what they say when the store is down, when an id names one of the store's own keys, when some jobs cannot
be retried, and when two retries run at once."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from queue_manager.failed import FailedJob, FailedSettings, make_store
from tests.helpers import PYTHON, SEED_APP, clean_environ, cleanup, queued, run_python, unique
from tests.integration.failed.stores import delete_keys
from tests.servers import free_port
from tests.unit.failed.test_failed_store import make_job

pytestmark = pytest.mark.e2e
SECRET = "s3cr3t-pw"
COMMANDS = [
    ["queue:failed"],
    ["queue:retry", "all"],
    ["queue:forget", "abcdef12"],
    ["queue:flush"],
    ["queue:prune-failed", "--hours=1"],
]


@pytest.fixture
def queue() -> Iterator[str]:
    name = unique()
    yield name
    cleanup("redis", name)


@pytest.fixture
def redis_store_env(queue: str) -> Iterator[dict[str, str]]:
    """The example app on the Redis list driver, its failed jobs in Redis under a unique prefix."""
    prefix = f"test:{unique('failed')}"
    yield {
        "QUEUE_DRIVER": "redis",
        "QUEUE_CONNECTIONS__REDIS__QUEUE": queue,
        "QUEUE_FAILED__DRIVER": "redis",
        "QUEUE_FAILED__PREFIX": prefix,
    }
    asyncio.run(delete_keys(prefix))


def sqlite_env(queue: str, tmp_path: Path) -> dict[str, str]:
    return {
        "QUEUE_DRIVER": "redis",
        "QUEUE_CONNECTIONS__REDIS__QUEUE": queue,
        "QUEUE_FAILED__URL": f"sqlite+aiosqlite:///{tmp_path / 'failed.sqlite'}",
    }


def store_of(env: dict[str, str]) -> Any:
    """The store the example app with ``env`` uses, opened from the test."""
    if env.get("QUEUE_FAILED__DRIVER") == "redis":
        settings = FailedSettings(driver="redis", prefix=env["QUEUE_FAILED__PREFIX"])
        return make_store(settings, SEED_APP, lambda connection: "redis://127.0.0.1:6379/0")
    return make_store(FailedSettings(url=env["QUEUE_FAILED__URL"]), SEED_APP, lambda connection: "")


def seed(env: dict[str, str], jobs: list[FailedJob]) -> None:
    async def log() -> None:
        store = store_of(env)
        try:
            for start in range(0, len(jobs), 50):
                await asyncio.gather(*(store.log(job) for job in jobs[start : start + 50]))
        finally:
            await store.close()

    asyncio.run(log())


def stored_ids(env: dict[str, str]) -> set[str]:
    async def ids() -> set[str]:
        store = store_of(env)
        try:
            return {job.id for job in await store.summaries()}
        finally:
            await store.close()

    return asyncio.run(ids())


def artisan(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_python("artisan", *args, env=env, timeout=120)


# -- item 19: a store that does not answer ------------------------------------------------------------------


@pytest.mark.parametrize("store", ["postgres", "redis"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_a_store_that_is_down_is_one_line_naming_it_without_its_password(store: str, command: list[str]) -> None:
    port = free_port()  # nothing listens there
    env = {"QUEUE_DRIVER": "redis"}
    if store == "postgres":
        env["QUEUE_FAILED__URL"] = f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:{port}/app"
    else:
        env.update(QUEUE_FAILED__DRIVER="redis", REDIS_URL=f"redis://:{SECRET}@127.0.0.1:{port}/0")
    done = artisan(*command, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and SECRET not in output, output
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("Cannot reach the failed-jobs store") and f"127.0.0.1:{port}" in line, line
    assert "***" in line, "the URL is shown with its password masked"


# -- item 4: ids that name the Redis store's own keys -------------------------------------------------------


def test_an_id_that_names_a_store_key_is_refused_and_every_job_stays(redis_store_env: dict[str, str]) -> None:
    jobs = [make_job(n) for n in range(3)]
    seed(redis_store_env, jobs)
    for command in (["queue:forget", "index"], ["queue:retry", "index"], ["queue:retry", "summaries"]):
        done = artisan(*command, env=redis_store_env)
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert "Traceback" not in output and "WRONGTYPE" not in output, output
        assert f"'{command[1]}' is not a failed job id" in done.stderr, output
    assert stored_ids(redis_store_env) == {job.id for job in jobs}
    listed = artisan("queue:failed", env=redis_store_env)
    assert all(job.id in listed.stdout for job in jobs), listed.stdout + listed.stderr


# -- item 15: retry what can be retried, report the rest ---------------------------------------------------


def test_retry_all_sends_what_it_can_and_reports_each_of_the_rest(queue: str, tmp_path: Path) -> None:
    env = sqlite_env(queue, tmp_path)
    now = datetime.now(UTC)
    stale = make_job(1, connection="gone", queue=queue, failed_at=now - timedelta(hours=3))  # connection removed
    refused = make_job(2, queue="no such queue", failed_at=now - timedelta(hours=2))  # as an older version kept it
    good = make_job(3, queue=queue, failed_at=now - timedelta(hours=1))
    seed(env, [stale, refused, good])
    done = artisan("queue:retry", "all", env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"Retried failed job {good.id} on connection 'redis', queue '{queue}'." in done.stdout, output
    assert f"Could not retry failed job {stale.id}" in done.stderr and "Unknown queue connection 'gone'" in output
    assert f"Could not retry failed job {refused.id}" in done.stderr and "Invalid queue name 'no such queue'" in output
    assert "Traceback" not in output
    assert asyncio.run(queued("redis", queue)) == 1, "the job that could be sent was sent"
    assert stored_ids(env) == {stale.id, refused.id}, "the others stay"
    only_good = artisan("queue:retry", "all", env={**env, "QUEUE_CONNECTIONS__GONE__DRIVER": "redis"})
    assert only_good.returncode == 1 and stale.id not in only_good.stderr, "back in the settings: retried"
    assert stored_ids(env) == {refused.id}


# -- item 1: two `queue:retry all` at once -----------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_two_retry_all_at_once_send_each_job_once(
    store: str, queue: str, redis_store_env: dict[str, str], tmp_path: Path
) -> None:
    env = redis_store_env if store == "redis" else sqlite_env(queue, tmp_path)
    jobs = [make_job(n, queue=queue) for n in range(300)]
    seed(env, jobs)
    retries = [
        subprocess.Popen(
            [PYTHON, "artisan", "queue:retry", "all"],
            cwd=SEED_APP,
            env=clean_environ(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [retry.communicate(timeout=180) for retry in retries]
    assert [retry.returncode for retry in retries] == [0, 0], outputs
    retried = [out.count("Retried failed job") for out, _ in outputs]
    sent = asyncio.run(queued("redis", queue))
    assert sent == 300, f"{sent} jobs sent for 300 failed jobs (the two retries said {retried})"
    assert sum(retried) == 300 and stored_ids(env) == set()
