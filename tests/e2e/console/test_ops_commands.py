"""The operating commands as a user runs them in the example app: the queues of task modules artisan never
imported (QUEUE_TASKS, --tasks), queue:restart scoped to one app and to the connections it uses, and
queue:monitor reporting every queue when one server is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import queue_work, run_python, unique, wait_for

pytestmark = pytest.mark.e2e


def rows(stdout: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in stdout.splitlines() if "|" in line]


@pytest.mark.parametrize(
    ("extra_env", "args", "listed"),
    [
        ({}, [], False),  # QUEUE_TASKS defaults to app.tasks, which declares no queue "emails"
        ({"QUEUE_TASKS": "app.tasks,app.jobs"}, [], True),  # named once, for every command
        ({}, ["--tasks=app.jobs"], True),  # or per command, as queue:work takes it
    ],
)
def test_queue_size_lists_the_queues_that_task_modules_declare(
    extra_env: dict[str, str], args: list[str], listed: bool
) -> None:
    env = {"QUEUE_DRIVER": "redis", **extra_env}
    done = run_python("artisan", "queue:size", *args, env=env, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    queues = {row[1] for row in rows(done.stdout)[1:]}
    assert "default" in queues
    assert ("emails" in queues) is listed, done.stdout  # app.jobs: @task(queue="emails")


def test_a_task_module_that_does_not_exist_is_refused_at_boot() -> None:
    done = run_python("artisan", "queue:size", env={"QUEUE_DRIVER": "redis", "QUEUE_TASKS": "app.jobs,app.nope"})
    assert done.returncode != 0
    assert "QUEUE_TASKS names task module(s) that cannot be found: app.nope" in done.stderr + done.stdout


def test_queue_restart_reaches_only_this_apps_workers_and_the_connections_it_uses(tmp_path: Path) -> None:
    """Two apps share one Redis with the default prefix: restarting one leaves the other's workers running. With
    no argument it signals the connections this app uses, never RabbitMQ or NATS an app on Redis does not use."""
    queue = unique()
    base = {"QUEUE_DRIVER": "redis", "QUEUE_CONNECTIONS__REDIS__QUEUE": queue}
    billing = {**base, "APP_NAME": "Billing"}
    with queue_work("--tasks=app.jobs", env=billing, log=tmp_path / "billing.log") as worker:
        worker.wait_ready()
        other = run_python("artisan", "queue:restart", env={**base, "APP_NAME": "Shop"})
        assert other.returncode == 0, other.stdout + other.stderr
        assert "app 'shop' on connection 'redis'" in other.stdout
        assert "rabbitmq" not in other.stdout + other.stderr and "nats" not in other.stdout + other.stderr
        assert not wait_for(lambda: not worker.alive(), timeout=5), "another app's restart stopped this worker"
        mine = run_python("artisan", "queue:restart", env=billing)
        assert mine.returncode == 0, mine.stdout + mine.stderr
        assert wait_for(lambda: not worker.alive(), timeout=60), worker.output()
        assert "Stopping the worker (restart)" in worker.output()


def test_queue_restart_of_an_unknown_connection_is_one_line() -> None:
    done = run_python("artisan", "queue:restart", "nope", env={"QUEUE_DRIVER": "redis"})
    assert done.returncode == 1
    assert "Unknown queue connection 'nope'" in done.stderr and "Traceback" not in done.stderr


def test_queue_monitor_reports_every_queue_when_one_server_is_down() -> None:
    env = {"QUEUE_DRIVER": "redis", "NATS_URL": "nats://watcher:hunter2-pw@127.0.0.1:1"}
    done = run_python("artisan", "queue:monitor", "redis:default,nats:default", "--max=100000", env=env, timeout=120)
    table = {row[0]: row for row in rows(done.stdout)[1:]}
    assert table["redis:default"][3] == "OK", done.stdout
    assert table["nats:default"][3] == "UNREACHABLE", done.stdout
    assert "127.0.0.1:1" in done.stderr and "hunter2-pw" not in done.stdout + done.stderr
    assert done.returncode == 1, "an unreachable queue is an alert"
