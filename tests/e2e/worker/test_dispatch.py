"""One task, any connection: dispatch, queues, delays, retries and timeouts with real `queue:work` workers."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.e2e.worker.test_production_worker import reserved
from tests.helpers import (
    SERVER_DRIVERS,
    cleanup,
    connections_env,
    dispatch_jobs,
    lines,
    queue_work,
    ran_jobs,
    wait_for,
)

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.jobs"


def base_env(queues: dict[str, str], record_dir: Path, driver: str = "redis") -> dict[str, str]:
    return connections_env(queues, record_dir, driver)


def test_one_task_runs_on_each_of_the_five_connections(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = base_env(queues, record_dir)
    connections = ["memory", *SERVER_DRIVERS]
    with ExitStack() as stack:
        for driver in SERVER_DRIVERS:
            stack.enter_context(queue_work(driver, TASKS, env=env, log=tmp_path / f"{driver}.log"))
        specs = [{"task": "remember", "args": [i], "connection": c} for i, c in enumerate(connections)]
        rows = dispatch_jobs(specs, env)
    assert [row["value"] for row in rows] == list(range(len(connections)))
    ran = ran_jobs(record_dir)
    assert {job: where for job, (_, where) in ran.items()} == {
        0: "inline",
        1: "redis",
        2: "redis_stream",
        3: "rabbitmq",
        4: "nats",
    }


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_job_on_another_queue_waits_for_a_worker_of_that_queue(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = base_env(queues, record_dir, driver)
    emails = f"{queues[driver]}-emails"
    try:
        with queue_work(TASKS, env=env, log=tmp_path / "default.log") as default_worker:
            rows = dispatch_jobs(
                [{"task": "send_email", "args": [7], "queue": emails}, {"task": "remember", "args": [1]}],
                env,
                wait=False,
            )
            assert wait_for(lambda: 1 in ran_jobs(record_dir), timeout=30), default_worker.output()
            assert not wait_for(lambda: lines(record_dir / "emails") != [], timeout=2), (
                "a worker of the default queue ran a job of 'emails'"
            )
        with queue_work(driver, f"--queue={emails},{queues[driver]}", TASKS, env=env, log=tmp_path / "both.log") as w:
            assert wait_for(lambda: len(lines(record_dir / "emails")) == 1, timeout=30), w.output()
            dispatch_jobs([{"task": "remember", "args": [2]}], env, wait=False)
            assert wait_for(lambda: 2 in ran_jobs(record_dir), timeout=30), w.output()
        assert rows[0]["task_id"]
    finally:
        cleanup(driver, emails)


def test_redis_worker_takes_queues_in_strict_priority_order(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = base_env(queues, record_dir)
    high, low = f"{queues['redis']}-high", f"{queues['redis']}-low"
    try:
        specs = [{"task": "remember", "args": [i], "queue": low} for i in range(5)]
        specs += [{"task": "remember", "args": [i], "queue": high} for i in range(5, 10)]
        dispatch_jobs(specs, env, wait=False)
        args = (f"--queue={high},{low}", "--max-async-tasks=1", TASKS)
        with queue_work("redis", *args, env=env, log=tmp_path / "w.log") as worker:
            assert wait_for(lambda: len(ran_jobs(record_dir)) == 10, timeout=30), worker.output()
        order = [job for job, _ in sorted(ran_jobs(record_dir).items(), key=lambda item: item[1][0])]
        assert sorted(order[:5]) == [5, 6, 7, 8, 9], order
    finally:
        cleanup("redis", high)
        cleanup("redis", low)


@pytest.mark.parametrize("driver", ["memory", *SERVER_DRIVERS])
def test_delay_is_honoured_to_about_a_second(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = base_env(queues, record_dir, driver)
    with ExitStack() as stack:
        if driver != "memory":
            # Ready before the jobs are sent, so how late a job runs is the delay's doing, not the worker's start.
            stack.enter_context(queue_work(TASKS, env=env, log=tmp_path / "w.log")).wait_ready()
        specs = [
            {"task": "remember", "args": [1], "delay": 2.5},
            {"task": "remember", "args": [2]},
            {"task": "remember", "args": [3], "labels": {"delay": 2.5}},  # TaskIQ's own delay label
        ]
        rows = dispatch_jobs(specs, env)
    ran = ran_jobs(record_dir)
    for job, row in ((1, rows[0]), (3, rows[2])):
        waited = ran[job][0] - row["sent_at"]
        # Up to a second late by design (a fetch every block_timeout, a delay queue rounding up), plus what a busy
        # machine adds; a delay honoured only by a redelivery timer would be 30-60 s late.
        assert 2.4 <= waited <= 5.0, f"{driver}: job {job} delayed 2.5 s, ran after {waited:.2f} s"
    assert ran[2][0] < min(ran[1][0], ran[3][0]), "an undelayed job does not wait behind a delayed one"


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_delayed_job_survives_its_worker_being_killed(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = base_env(queues, record_dir, driver)
    delay = 8  # the worker is killed long before the job is due, however busy the machine
    with queue_work(TASKS, env=env, log=tmp_path / "first.log") as first:
        first.wait_ready()
        rows = dispatch_jobs([{"task": "remember", "args": [1], "delay": delay}], env, wait=False)
        if driver == "nats":  # a NATS worker fetches the job at once and hands it back until due: kill it then
            held = wait_for(lambda: asyncio.run(reserved(driver, queues[driver])) == 1, timeout=30)
            assert held, first.output()
        first.kill()
    assert ran_jobs(record_dir) == {}
    with queue_work(TASKS, env=env, log=tmp_path / "second.log") as second:
        assert wait_for(lambda: 1 in ran_jobs(record_dir), timeout=60), second.output()
    assert ran_jobs(record_dir)[1][0] - rows[0]["sent_at"] >= delay - 0.1


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_retries_wait_their_backoff_and_exhausted_jobs_are_recorded(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = base_env(queues, record_dir, driver)
    with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
        flaky, fails = dispatch_jobs([{"task": "flaky", "args": [1]}, {"task": "always_fails", "args": [2]}], env)
        output = worker.output()
    attempts = [float(t) for t in lines(record_dir / "flaky-1")]
    assert flaky["value"] == "ok after 3 attempts" and not flaky["is_err"]
    assert len(attempts) == 3, "retries=2 means two retries after the first attempt"
    assert attempts[1] - attempts[0] >= 0.95 and attempts[2] - attempts[1] >= 1.95, attempts
    assert fails["is_err"] and "job 2 is broken" in fails["error"]
    assert len(lines(record_dir / "fails-2")) == 2
    giving_up = [line for line in output.splitlines() if "failed after 2 attempts" in line]
    assert len(giving_up) == 1, output
    assert fails["task_id"] in giving_up[0] and "app.jobs:always_fails" in giving_up[0]
    assert "ERROR" in giving_up[0] and "ValueError: job 2 is broken" in giving_up[0]
    assert "Recorded as failed job" in giving_up[0], "it went to the failed-jobs store"


@pytest.mark.parametrize("driver", ["redis", "nats"])
def test_a_timeout_stops_a_slow_async_job(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = base_env(queues, record_dir, driver)
    with queue_work(TASKS, env=env, log=tmp_path / "w.log"):
        [row] = dispatch_jobs([{"task": "slow", "args": [1, 4]}], env)
        assert not wait_for(lambda: len(lines(record_dir / "slow-1")) > 1, timeout=4), "the job went on running"
    assert row["is_err"] and "TimeoutError" in row["error"]
    assert [line.split()[0] for line in lines(record_dir / "slow-1")] == ["start"]


def test_rabbitmq_jobs_can_keep_their_results_in_redis(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """Celery's broker/backend split: QUEUE_CONNECTIONS__RABBITMQ__RESULTS=redis."""
    import redis as redis_client

    prefix = f"results-{queues['redis']}"
    env = {
        **base_env(queues, record_dir, "rabbitmq"),
        "QUEUE_CONNECTIONS__RABBITMQ__RESULTS": "redis",
        "QUEUE_CONNECTIONS__REDIS__OPTIONS__RESULT_PREFIX": prefix,
    }
    with queue_work(TASKS, env=env, log=tmp_path / "w.log"):
        rows = dispatch_jobs([{"task": "remember", "args": [i]} for i in range(3)], env)
    assert [row["value"] for row in rows] == [0, 1, 2]
    client = redis_client.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        stored = [client.get(f"{prefix}:{row['task_id']}") for row in rows]
        assert all(value is not None and b'"return_value":' in value for value in stored), stored
        client.delete(*(f"{prefix}:{row['task_id']}" for row in rows))
    finally:
        client.close()
