"""Unique jobs on real workers and every server driver (issue 24, point 4): of 20 dispatches at once (in one
process, and from two) exactly one is queued; the lock goes when the job succeeds or fails for good; a worker
killed while holding it leaves a lock that expires after ``unique_for``; ``@task(unique_for=...)`` the same.
RabbitMQ keeps its locks on the Redis connection (``state``), and without one is refused at dispatch."""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.jobs.support import TASKS, rows, send, state_env
from tests.helpers import (
    PYTHON,
    SEED_APP,
    SERVER_DRIVERS,
    clean_environ,
    connections_env,
    queue_work,
    run_python,
    wait_for,
)

pytestmark = pytest.mark.e2e


def report_id() -> int:
    """A report id of this test only: the lock's name is the class's and the id, on a shared server."""
    return random.randrange(10**9)


def queued(answers: list[dict[str, object]]) -> list[str]:
    return [str(answer["task_id"]) for answer in answers if answer["task_id"] is not None]


def from_two_processes(spec: dict[str, object], env: dict[str, str]) -> list[dict[str, object]]:
    """The same dispatches from two processes at once."""
    argv = [PYTHON, "dispatch_job_classes.py", json.dumps(spec)]
    started = [
        subprocess.Popen(argv, cwd=SEED_APP, env=clean_environ(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    answers: list[dict[str, object]] = []
    for process in started:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
        answers += json.loads(out.decode().strip().splitlines()[-1])
    return answers


@pytest.mark.parametrize("job", ["BuildReport", "unique_report"])
@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_of_twenty_dispatches_at_once_one_is_queued_and_the_lock_goes_when_it_is_done(
    driver: str, job: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, **state_env(driver))
    first, second = report_id(), report_id()
    answers = send({"job": job, "args": [first], "times": 20}, env)
    assert len(answers) == 20 and len(queued(answers)) == 1, answers
    both = from_two_processes({"job": job, "args": [second], "times": 10}, env)
    assert len(both) == 20 and len(queued(both)) == 1, both
    assert queued(send({"job": job, "args": [first]}, env)) == [], "still queued: still locked"

    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        assert wait_for(lambda: len(rows(record_dir, f"report-{first}")) == 1, timeout=60), worker.output()
        assert queued(send({"job": job, "args": [first]}, env)) == [], "running: still locked"
        (record_dir / f"go-{first}").touch()
        (record_dir / f"go-{second}").touch()
        assert wait_for(lambda: len(rows(record_dir, f"report-{first}")) == 2, timeout=60), worker.output()
        [again] = queued(send({"job": job, "args": [first], "wait": True}, env))  # done: the lock was freed
    runs = rows(record_dir, f"report-{first}")
    assert [row["job_id"] for row in runs] == [queued(answers)[0]] * 2 + [again] * 2, runs
    assert [row["job_id"] for row in rows(record_dir, f"report-{second}")] == queued(both) * 2


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_unique_job_that_fails_for_good_frees_its_lock(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, **state_env(driver))
    report = report_id()
    (record_dir / "broken").touch()
    (record_dir / f"go-{report}").touch()
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        [failed] = send({"job": "BuildReport", "args": [report], "wait": True}, env)
        assert failed["is_err"] and "the report cannot be built" in str(failed["error"]), failed
        (record_dir / "broken").unlink()
        [again] = send({"job": "BuildReport", "args": [report], "wait": True}, env)
    assert again["task_id"] is not None and again["value"] == report, (again, worker.output())


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_unique_until_processing_frees_the_lock_when_the_job_starts(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, **state_env(driver))
    report = report_id()
    [first] = queued(send({"job": "PublishReport", "args": [report], "times": 5}, env))
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        assert wait_for(lambda: len(rows(record_dir, f"report-{report}")) == 1, timeout=60), worker.output()
        [second] = queued(send({"job": "PublishReport", "args": [report]}, env))  # it started: unlocked
        assert second != first
        assert wait_for(lambda: len(rows(record_dir, f"report-{report}")) == 2, timeout=60), worker.output()
        assert queued(send({"job": "PublishReport", "args": [report]}, env)) != [], "both started: free again"
        (record_dir / f"go-{report}").touch()
        assert wait_for(lambda: len(rows(record_dir, f"report-{report}")) == 6, timeout=60), worker.output()
    assert [row["job_id"] for row in rows(record_dir, f"report-{report}") if row["event"] == "start"][:2] == [
        first,
        second,
    ]


@pytest.mark.fault
@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_worker_killed_holding_the_lock_leaves_it_until_unique_for_expires(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, **state_env(driver))
    report = report_id()
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        [held] = queued(send({"job": "ShortLock", "args": [report]}, env))
        locked_at = time.monotonic()
        assert wait_for(lambda: len(rows(record_dir, f"report-{report}")) == 1, timeout=60), worker.output()
        worker.kill()  # SIGKILL, holding the lock: nothing frees it
    answer = send({"job": "ShortLock", "args": [report]}, env)
    if time.monotonic() - locked_at < 15:  # ShortLock.unique_for
        assert queued(answer) == [], "the dead worker's lock still holds"
    again: list[str] = []

    def queues_again() -> bool:
        again.extend(queued(send({"job": "ShortLock", "args": [report]}, env)))
        return bool(again)

    assert wait_for(queues_again, timeout=90, interval=1), "the lock expired after unique_for: it queues again"
    assert again[0] != held


def test_rabbitmq_without_a_state_connection_refuses_a_unique_job_naming_the_fix(
    queues: dict[str, str], record_dir: Path
) -> None:
    env = connections_env(queues, record_dir, "rabbitmq")
    done = run_python("dispatch_job_classes.py", json.dumps({"job": "BuildReport", "args": [report_id()]}), env=env)
    assert done.returncode != 0
    assert "QueueConfigurationError" in done.stderr and "set QUEUE_CONNECTIONS__RABBITMQ__STATE=" in done.stderr
