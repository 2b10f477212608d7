"""Failed jobs with real `queue:work` processes: recorded, listed, retried on their own connection and queue,
forgotten and flushed with the artisan commands; messages no worker can run are recorded, not dropped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from taskiq import AsyncTaskiqTask

from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.helpers import (
    SERVER_DRIVERS,
    cleanup,
    connections_env,
    dispatch_jobs,
    lines,
    push_foreign,
    queue_work,
    run_python,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.jobs"


def artisan(*args: str, env: dict[str, str]) -> str:
    done = run_python("artisan", *args, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_job_that_fails_for_good_is_listed_then_retried_after_the_fix(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = connections_env(queues, record_dir, driver)
    (record_dir / "broken").touch()
    queue = f"{queues[driver]}-mail"
    request.addfinalizer(lambda: cleanup(driver, queue))  # the fixture cleans the connections' own queues only
    with queue_work(driver, f"--queue={queue}", TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        dispatch_jobs([{"task": "fragile", "args": [1], "queue": queue}], env, wait=False)
        assert wait_for(lambda: len(lines(record_dir / "failure-hook")) == 1, timeout=60), worker.output()
        listed = artisan("queue:failed", env=env)
        assert "app.jobs:fragile" in listed and queue in listed and driver in listed
        assert "RuntimeError: job 1: the mail server is down" in listed
        assert lines(record_dir / "fragile-1") == ["failed", "failed"], "two attempts (retries=1)"
        assert "Recorded as failed job" in worker.output()

        (record_dir / "broken").unlink()  # the cause is fixed
        retried = artisan("queue:retry", "all", env=env)
        assert f"connection '{driver}', queue '{queue}'" in retried
        assert wait_for(lambda: lines(record_dir / "fragile-1")[-1:] == ["ok"], timeout=60), worker.output()
    assert "No failed jobs." in artisan("queue:failed", env=env)
    assert len(lines(record_dir / "failure-hook")) == 1, "the hook ran once, when the job failed for good"


def test_forget_flush_and_filters(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    env = connections_env(queues, record_dir, "redis")
    (record_dir / "broken").touch()
    with queue_work("redis", TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        dispatch_jobs([{"task": "fragile", "args": [i]} for i in (1, 2, 3)], env, wait=False)
        assert wait_for(lambda: len(lines(record_dir / "failure-hook")) == 3, timeout=60), worker.output()
    ids = [line.split("|")[1].strip() for line in artisan("queue:failed", env=env).splitlines() if "fragile" in line]
    assert len(ids) == 3
    assert "No failed jobs." in artisan("queue:failed", "--connection=nats", env=env)
    typo = run_python("artisan", "queue:failed", "--connection=nast", env=env)
    assert typo.returncode == 1 and "Did you mean 'nats'?" in typo.stderr, typo.stdout + typo.stderr
    assert f"Failed job {ids[0][:8]} deleted." in artisan("queue:forget", ids[0][:8], env=env)
    assert ids[0] not in artisan("queue:failed", env=env)
    missing = run_python("artisan", "queue:forget", "abcd4242", env=env)
    assert missing.returncode == 1 and "No failed job matches 'abcd4242'" in missing.stderr
    assert "Deleted 0 failed jobs older than 1 hours." in artisan("queue:prune-failed", "--hours=1", env=env)
    assert "Deleted 2 failed jobs." in artisan("queue:flush", env=env)
    assert "No failed jobs." in artisan("queue:failed", env=env)


def ghost(task_id: str) -> bytes:
    """A well-formed TaskIQ message of a task no worker imports."""
    message = {"task_id": task_id, "task_name": "app.nowhere:ghost", "labels": {}, "labels_types": {}}
    return json.dumps({**message, "args": [], "kwargs": {}}).encode()


async def result_of(driver: str, queue: str, task_id: str) -> Any:
    """What a caller waiting on ``task_id`` gets, through the connection's own result backend."""
    manager = QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue}}}))
    connection = manager.connection(driver)
    await connection.startup()
    try:
        return await AsyncTaskiqTask(task_id, connection.broker.result_backend).wait_result(timeout=60)
    finally:
        await manager.shutdown()


async def push_garbage(driver: str, queue: str, payload: bytes, without_data: bool = False) -> None:
    """Bytes no worker can decode, straight into the broker's queue; on the stream also an entry without data."""
    await push_foreign(driver, queue, [payload])
    if without_data and driver == "redis_stream":
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            await redis.xadd(f"queues:stream:{queue}", {"something": "else"})  # no data field at all


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_message_no_worker_can_decode_is_recorded_and_the_worker_keeps_serving(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver)
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        asyncio.run(push_garbage(driver, queues[driver], b"\x00\xffnot a taskiq message", without_data=True))
        ghost_id = unique("ghost")
        asyncio.run(push_garbage(driver, queues[driver], ghost(ghost_id)))
        [row] = dispatch_jobs([{"task": "remember", "args": [1]}], env)
        assert row["value"] == 1, "a good job after the bad ones still runs"
        undecodable = 2 if driver == "redis_stream" else 1  # the stream also got an entry without data
        assert wait_for(lambda: artisan("queue:failed", env=env).count("(undecodable)") == undecodable, timeout=30)
        listed = artisan("queue:failed", env=env)
        output = worker.output()
        answer = asyncio.run(result_of(driver, queues[driver], ghost_id))
    assert answer.is_err and "cannot run (unknown task)" in str(answer.error), "its caller learns why, at once"
    assert "app.nowhere:ghost" in listed and "unknown task" in listed, "an unknown task is kept under its name"
    assert "cannot run: undecodable" in output and "cannot run: unknown task" in output
    assert worker.alive() is False or "Traceback" not in output.split("Worker ready", 1)[-1]


def test_a_queue_label_the_connection_refuses_is_not_where_the_job_is_recorded_or_retried(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """A foreign producer's message names a queue no worker can have ("a b"): the failed job is recorded under
    the queue of its connection, and a retry sends it there, where a worker runs it, instead of stranding it."""
    env = connections_env(queues, record_dir, "redis")
    message = {
        "task_id": unique("foreign"),
        "task_name": "app.jobs:always_fails",
        "labels": {"queue_name": "a b", "retries": 0},
        "labels_types": {},
        "args": [7],
        "kwargs": {},
    }
    with queue_work("redis", TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        asyncio.run(push_foreign("redis", queues["redis"], [json.dumps(message).encode()]))
        assert wait_for(lambda: "Recorded as failed job" in worker.output(), timeout=60), worker.output()
        listed = artisan("queue:failed", env=env)
        assert queues["redis"] in listed and "| a b " not in listed, listed
        retried = run_python("artisan", "queue:retry", "all", env=env)
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert f"queue '{queues['redis']}'" in retried.stdout
        assert wait_for(lambda: len(lines(record_dir / "fails-7")) == 2, timeout=60), "the retry ran"
