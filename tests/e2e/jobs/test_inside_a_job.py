"""Inside a running job, on real workers and every server driver: attempts(), job_id, release(delay), fail(error)
and delete(), for a job class (``self.release(...)``) and for a ``@task`` function (``current_job()``,
``job_of(context)``) (issue 24, point 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.jobs.support import TASKS, failed_records, rows, send
from tests.helpers import SERVER_DRIVERS, connections_env, queue_work, wait_for

pytestmark = pytest.mark.e2e
KINDS = ("Interacts", "interacting_task")  # a job class, a @task function asking current_job()


def runs(record_dir: Path, key: str) -> list[tuple[str, int]]:
    return [(row["event"], row["attempt"]) for row in rows(record_dir, f"runs-{key}")]


def assert_one_at_a_time(record_dir: Path, key: str, delay: float) -> None:
    """Each run starts after the one before has ended, and at least ``delay`` later (the release's delay)."""
    recorded = rows(record_dir, f"runs-{key}")
    for ended, started in zip(recorded[1::2], recorded[2::2], strict=False):
        assert (ended["event"], started["event"]) == ("end", "start"), recorded
        assert started["at"] - ended["at"] >= delay - 0.05, f"released for {delay} s, ran again sooner: {recorded}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_release_puts_it_back_counts_an_attempt_and_never_runs_it_beside_itself(
    driver: str, kind: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver)
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        [done] = send({"job": kind, "kwargs": {"key": "twice", "action": "release"}, "wait": True}, env)
        [spent] = send({"job": kind, "kwargs": {"key": "always", "action": "release", "until": 9}, "wait": True}, env)
        assert wait_for(lambda: len(rows(record_dir, "failed-hook")) == 1, timeout=60), worker.output()
    assert not done["is_err"] and done["value"] == "done twice", (done, worker.output())
    assert runs(record_dir, "twice") == [("start", 1), ("end", 1), ("start", 2), ("end", 2), ("start", 3), ("end", 3)]
    assert {row["job_id"] for row in rows(record_dir, "runs-twice")} == {done["task_id"]}, "released with its id"
    assert_one_at_a_time(record_dir, "twice", 0.5)

    assert spent["is_err"] and "MaxAttemptsExceededError" in spent["error"], spent
    assert [attempt for event, attempt in runs(record_dir, "always") if event == "start"] == [1, 2, 3], "tries = 3"
    [hook] = rows(record_dir, "failed-hook")
    assert hook["job"] == "runs-always" and hook["error"].startswith("MaxAttemptsExceededError"), hook
    [record] = failed_records(record_dir)
    assert record.task_id == spent["task_id"] and record.attempts == 3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_fail_goes_straight_to_failed_and_delete_ends_it_with_no_result(
    driver: str, kind: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver)
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        [failed] = send({"job": kind, "kwargs": {"key": "failing", "action": "fail"}, "wait": True}, env)
        [deleted] = send({"job": kind, "kwargs": {"key": "deleting", "action": "delete"}, "wait": True}, env)
    assert failed["is_err"] and "failing gave up" in failed["error"], failed
    assert runs(record_dir, "failing") == [("start", 1), ("end", 1)], "no retry after fail(), though tries = 3"
    [hook] = rows(record_dir, "failed-hook")
    assert hook == {**hook, "job": "runs-failing", "error": "JobFailedError: failing gave up"}
    [record] = failed_records(record_dir)
    assert record.task_id == failed["task_id"] and record.attempts == 1 and "failing gave up" in record.message

    assert deleted == {**deleted, "is_err": False, "value": None}, (deleted, worker.output())
    assert runs(record_dir, "deleting") == [("start", 1), ("end", 1)]


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_task_function_reaches_its_job_through_taskiqs_context(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver)
    results: dict[str, Any] = {}
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        for action in ("release", "fail", "delete"):
            [results[action]] = send({"job": "context_task", "args": [action, action], "wait": True}, env)
    assert results["release"]["value"] == "done release", (results, worker.output())
    assert runs(record_dir, "release") == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]
    assert_one_at_a_time(record_dir, "release", 0.2)
    assert results["fail"]["is_err"] and runs(record_dir, "fail") == [("start", 1), ("end", 1)]
    assert [hook["job"] for hook in rows(record_dir, "failed-hook")] == ["runs-fail"]
    assert results["delete"] == {**results["delete"], "is_err": False, "value": None}
