"""Hostile messages with real `queue:work` workers: labels TaskIQ's receiver cannot use, and a huge payload
that is no TaskIQ message, end as failed jobs (acknowledged), the log stays small, and the worker goes on."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.helpers import (
    SERVER_DRIVERS,
    connections_env,
    dispatch_jobs,
    push_foreign,
    queue_work,
    queued,
    run_python,
    wait_for,
)

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.jobs"
QOS = 10  # RabbitMQ's default prefetch: more unacknowledged bad messages than this would stall the worker


def job_with_labels(number: int, labels: dict[str, Any]) -> bytes:
    """A well-formed TaskIQ message of a task the worker knows, whose labels break TaskIQ's receiver."""
    return json.dumps(
        {
            "task_id": f"bad-{number}",
            "task_name": "app.jobs:remember",
            "labels": labels,
            "labels_types": {},
            "args": [1000 + number],
            "kwargs": {},
        }
    ).encode()


def failed_jobs(record_dir: Path) -> list[Any]:
    """The failed-jobs store the test's workers write to, read with the package's own API."""
    url = f"sqlite+aiosqlite:///{record_dir}/failed_jobs.sqlite"
    manager = QueueManager(load_settings({"driver": "memory", "failed": {"url": url}}))

    async def read() -> list[Any]:
        try:
            return await manager.failed.all()
        finally:
            await manager.shutdown()

    return asyncio.run(read())


def artisan(*args: str, env: dict[str, str]) -> str:
    done = run_python("artisan", *args, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def isolated_env(clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    return clean_env


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_labels_the_receiver_cannot_use_end_as_failed_jobs_and_the_worker_keeps_taking_jobs(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path, isolated_env: pytest.MonkeyPatch
) -> None:
    env = connections_env(queues, record_dir, driver)
    bad = [job_with_labels(n, {"ack_type": "bogus"}) for n in range(QOS)]
    bad += [job_with_labels(QOS + n, {"retries": "abc"}) for n in range(QOS // 2)]
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        asyncio.run(push_foreign(driver, queues[driver], bad))
        rows = dispatch_jobs([{"task": "remember", "args": [n]} for n in range(1, 2 * QOS)], env, timeout=120)
        assert [row["value"] for row in rows] == list(range(1, 2 * QOS)), "good jobs after the bad ones all ran"
        assert wait_for(lambda: len(failed_jobs(record_dir)) == len(bad), timeout=60), worker.output()
        assert wait_for(lambda: asyncio.run(queued(driver, queues[driver])) == 0, timeout=30), "all acknowledged"
        assert worker.alive(), worker.output()
        output = worker.output()
    recorded = failed_jobs(record_dir)
    assert {job.task_id for job in recorded} == {f"bad-{n}" for n in range(len(bad))}
    assert all("bad label" in job.message for job in recorded), [job.message for job in recorded][:3]
    assert "Traceback" not in output.split("Worker ready", 1)[-1], output[-3000:]
    assert "bad label" in artisan("queue:failed", env=env)


BIG = {"redis": 10 << 20, "redis_stream": 10 << 20, "rabbitmq": 10 << 20, "nats": 900_000}  # NATS: 1 MB max


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_huge_undecodable_message_keeps_the_log_small_and_the_whole_payload_in_the_store(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path, isolated_env: pytest.MonkeyPatch
) -> None:
    env = connections_env(queues, record_dir, driver)
    payload = b"\x00\xff" + os.urandom(BIG[driver] // 2).hex().encode()[: BIG[driver] - 2]
    log = tmp_path / "w.log"
    with queue_work(driver, TASKS, env=env, log=log) as worker:
        worker.wait_ready()
        asyncio.run(push_foreign(driver, queues[driver], [payload]))
        [row] = dispatch_jobs([{"task": "remember", "args": [1]}], env, timeout=120)
        assert row["value"] == 1, "the worker went on with the next job"
        assert wait_for(lambda: len(failed_jobs(record_dir)) == 1, timeout=90), worker.output()[-3000:]
        assert worker.alive()
    [job] = failed_jobs(record_dir)
    assert job.payload == payload, "the store keeps the whole payload (queue:retry sends the same bytes)"
    lines = log.read_text(errors="replace").splitlines()
    about_it = [line for line in lines if "cannot run" in line]
    assert about_it, lines[-20:]
    assert max(len(line) for line in lines) < 4096, "one log line carries the payload"
    assert log.stat().st_size < 200_000, f"the worker log grew to {log.stat().st_size} bytes"
