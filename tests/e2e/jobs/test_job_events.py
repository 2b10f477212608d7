"""Job events reach the app's own dispatcher in the worker process, on every server driver (issue 24, point 5):
an app with an EventServiceProvider listening to JobProcessing, JobProcessed, JobReleased, JobExceptionOccurred
and JobFailed sees each with its connection, queue, job id, task name, attempt and exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.jobs.support import rows, send
from tests.helpers import SERVER_DRIVERS, connections_env, wait_for, worker

pytestmark = pytest.mark.e2e
WELCOME = "app.job_classes:SendWelcomeEmail"


def seen(record_dir: Path, job_id: str) -> list[tuple[str, int]]:
    return [(row["event"], row["attempt"]) for row in rows(record_dir, "job-events") if row["job_id"] == job_id]


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_the_apps_listeners_hear_every_job_event_in_the_worker(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, QUEUE_APP="bootstrap.with_events:app")
    with worker("queue_manager.worker:broker", "app.job_classes", env=env, log=tmp_path / "w.log") as process:
        process.wait_ready()
        [recovers] = send({"job": "SendWelcomeEmail", "args": [1], "kwargs": {"fail_times": 1}, "wait": True}, env)
        [fails] = send({"job": "SendWelcomeEmail", "args": [2], "kwargs": {"fail_times": 9}, "wait": True}, env)
        [released] = send(
            {"job": "Interacts", "kwargs": {"key": "r", "action": "release", "delay": 0.1, "until": 2}, "wait": True},
            env,
        )
        assert wait_for(lambda: ("JobProcessed", 2) in seen(record_dir, released["task_id"]), timeout=30)
    assert seen(record_dir, recovers["task_id"]) == [
        ("JobProcessing", 1),
        ("JobExceptionOccurred", 1),
        ("JobProcessing", 2),
        ("JobProcessed", 2),
    ], process.output()
    assert seen(record_dir, fails["task_id"]) == [
        ("JobProcessing", 1),
        ("JobExceptionOccurred", 1),
        ("JobProcessing", 2),
        ("JobExceptionOccurred", 2),
        ("JobProcessing", 3),
        ("JobExceptionOccurred", 3),
        ("JobFailed", 3),
    ]
    assert seen(record_dir, released["task_id"]) == [
        ("JobProcessing", 1),
        ("JobReleased", 1),
        ("JobProcessing", 2),
        ("JobProcessed", 2),
    ]
    events: dict[str, Any] = {
        row["event"]: row for row in rows(record_dir, "job-events") if row["job_id"] != recovers["task_id"]
    }
    for row in rows(record_dir, "job-events"):
        assert (row["connection"], row["queue"]) == (driver, queues[driver]), row
    assert events["JobFailed"]["task_name"] == WELCOME
    assert events["JobFailed"]["exception"] == "RuntimeError('the mail server is down (attempt 3)')"
    assert events["JobExceptionOccurred"]["exception"].startswith("RuntimeError('the mail server is down")
    assert events["JobReleased"]["task_name"] == "app.job_classes:Interacts" and events["JobReleased"]["delay"] == 0.1
