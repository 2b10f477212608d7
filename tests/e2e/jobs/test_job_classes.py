"""Job classes on real workers, on every server driver: the dispatch forms, a typed payload, tries and backoff,
failed() once, and the failed-jobs commands showing and retrying a class job (issue 24, point 1)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from tests.e2e.jobs.support import TASKS, failed_records, rows, send, state_env
from tests.helpers import SERVER_DRIVERS, connections_env, queue_work, run_python, wait_for

pytestmark = pytest.mark.e2e


def artisan(*args: str, env: dict[str, str]) -> str:
    done = run_python("artisan", *args, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_every_dispatch_form_runs_on_a_worker_with_its_payload_typed(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, **state_env(driver))
    typed = {
        "user": {"id": 7, "email": "ada@example.com"},
        "address": {"city": "Lyon"},
        "sent_at": "2026-01-02T03:04:05+00:00",
    }
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        results = {
            form: send({"job": "SendWelcomeEmail", "args": [user], "kwargs": typed, "form": form, "wait": True}, env)
            for user, form in ((1, "class"), (2, "instance"), (3, "push"))
        }
        bulk = send({"job": "SendWelcomeEmail", "args": [4], "form": "bulk", "times": 3, "wait": True}, env)
    for user, form in ((1, "class"), (2, "instance"), (3, "push")):
        [row] = results[form]
        assert not row["is_err"] and row["value"] == f"welcomed {user}", (form, row, worker.output())
        [ran] = rows(record_dir, f"welcome-{user}")
        assert ran["types"] == ["User", "Address", "datetime"], ran
        assert (ran["email"], ran["city"], ran["sent_at"]) == ("ada@example.com", "Lyon", typed["sent_at"])
        assert ran["attempt"] == 1 and ran["job_id"] == row["task_id"]
    assert [row["value"] for row in bulk] == ["welcomed 4"] * 3
    assert sorted(ran["job_id"] for ran in rows(record_dir, "welcome-4")) == sorted(row["task_id"] for row in bulk)


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_tries_and_backoff_are_counted_and_failed_runs_once(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, **state_env(driver))
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        [recovers] = send({"job": "SendWelcomeEmail", "args": [1], "kwargs": {"fail_times": 2}, "wait": True}, env)
        [gives_up] = send({"job": "SendWelcomeEmail", "args": [2], "kwargs": {"fail_times": 9}, "wait": True}, env)
        assert wait_for(lambda: len(rows(record_dir, "failed-hook")) >= 1, timeout=60), worker.output()
    assert not recovers["is_err"] and recovers["value"] == "welcomed 1", recovers
    runs = rows(record_dir, "welcome-1")
    assert [run["attempt"] for run in runs] == [1, 2, 3], "tries = 3: two failures, then it succeeds"
    waits = [later["at"] - earlier["at"] for earlier, later in pairwise(runs)]
    assert waits[0] >= 0.2 and waits[1] >= 0.4, f"backoff [0.2, 0.4] is waited before each retry: {waits}"
    assert {run["job_id"] for run in runs} == {recovers["task_id"]}, "a retry keeps the job's id"

    assert gives_up["is_err"] and "the mail server is down (attempt 3)" in gives_up["error"], gives_up
    assert [run["attempt"] for run in rows(record_dir, "welcome-2")] == [1, 2, 3], "no fourth attempt"
    [hook] = rows(record_dir, "failed-hook")
    assert hook["job"] == "welcome-2" and hook["error"] == "RuntimeError: the mail server is down (attempt 3)"


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_failed_class_job_is_listed_with_its_class_and_payload_and_retried(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, **state_env(driver))
    (record_dir / "broken").touch()
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        send({"job": "ImportContacts", "args": ["acme"], "form": "instance"}, env)
        assert wait_for(lambda: len(rows(record_dir, "failed-hook")) == 1, timeout=60), worker.output()
        listed = artisan("queue:failed", env=env)
        assert "app.job_classes:ImportContacts" in listed and queues[driver] in listed, listed
        assert "RuntimeError: the CRM of acme is down" in listed, listed
        [record] = failed_records(record_dir)
        assert record.task_name == "app.job_classes:ImportContacts" and record.kwargs == {"account": "acme"}
        assert record.attempts == 2, record
        shown = artisan("queue:failed", record.id[:8], env=env)  # one job whole: its class and its payload
        assert "app.job_classes:ImportContacts" in shown and '{"account": "acme"}' in shown, shown
        assert "RuntimeError: the CRM of acme is down" in shown and "Traceback" in shown, shown
        missing = run_python("artisan", "queue:failed", "abcd4242", env=env)
        assert missing.returncode == 1 and "No failed job matches 'abcd4242'" in missing.stderr, missing.stderr
        assert [run["ok"] for run in rows(record_dir, "import-acme")] == [False, False], "tries = 2"

        (record_dir / "broken").unlink()
        artisan("queue:retry", "all", env=env)
        assert wait_for(lambda: rows(record_dir, "import-acme")[-1]["ok"], timeout=60), worker.output()
    assert "No failed jobs." in artisan("queue:failed", env=env)
    assert len(rows(record_dir, "failed-hook")) == 1, "failed() ran once, when it failed for good"
