"""The seed guide's app, unchanged, on every driver: real `taskiq worker` processes, real servers.

tests/app is the guide's bootstrap/application.py, bootstrap/broker.py and
app/tasks.py with our QueueProvider; only QUEUE_DRIVER changes between runs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import (
    SERVER_DRIVERS,
    cleanup,
    queue_env,
    recorded,
    run_python,
    unique,
    wait_for,
    worker,
)

pytestmark = pytest.mark.e2e

SEED_WORKER = ("bootstrap.broker:broker", "app.tasks", "--workers", "1")


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    return tmp_path / "ran.txt"


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_seed_app_runs_unchanged_on_each_driver(driver: str, tmp_path: Path, record_file: Path) -> None:
    queue = unique()
    env = queue_env(driver, queue, RECORD_FILE=str(record_file))
    try:
        with worker(*SEED_WORKER, env=env, log=tmp_path / "worker.log") as process:
            script = run_python("dispatch_script.py", "42", env=env)
            assert script.returncode == 0, script.stderr + process.output()
            assert script.stdout.strip() == "welcomed 42"

            route = run_python("route_script.py", env=env)
            assert route.returncode == 0, route.stderr + process.output()
            assert route.stdout.strip() == "welcomed 5"

            sent = run_python("record_script.py", "1", "30", env=env)
            assert sent.returncode == 0, sent.stderr
            assert wait_for(lambda: len(recorded(record_file)) >= 30, timeout=60), process.output()
            assert not wait_for(lambda: len(recorded(record_file)) > 30, timeout=1), "a job ran twice"
            assert sorted(recorded(record_file)) == list(range(1, 31))
            assert process.alive()
    finally:
        cleanup(driver, queue)


def test_memory_driver_runs_the_seed_script_in_process(record_file: Path) -> None:
    env = queue_env("memory", unique(), RECORD_FILE=str(record_file))
    script = run_python("dispatch_script.py", "7", env=env)
    assert script.returncode == 0, script.stderr
    assert script.stdout.strip() == "welcomed 7"
    sent = run_python("record_script.py", "1", "5", env=env)
    assert sent.returncode == 0, sent.stderr
    assert sorted(recorded(record_file)) == [1, 2, 3, 4, 5]


def test_idle_redis_worker_survives_and_then_runs_the_next_job(tmp_path: Path, record_file: Path) -> None:
    """Raw TaskIQ on redis-py 8 dies every ~6 s when idle; ours must not."""
    queue = unique()
    env = queue_env("redis", queue, RECORD_FILE=str(record_file))
    try:
        with worker(*SEED_WORKER, env=env, log=tmp_path / "worker.log") as process:
            time.sleep(14)  # the point of the test: raw TaskIQ's idle worker dies within ~6 s
            output = process.output()
            assert process.alive(), output
            assert output.count("Started process worker-0") == 1, f"the worker process restarted:\n{output}"
            assert "Error" not in output, output
            sent = run_python("record_script.py", "99", "1", env=env)
            assert sent.returncode == 0, sent.stderr
            assert wait_for(lambda: recorded(record_file) == [99], timeout=20), process.output()
    finally:
        cleanup("redis", queue)


def test_queue_manager_worker_module_serves_a_named_connection(tmp_path: Path, record_file: Path) -> None:
    """`taskiq worker queue_manager.worker:broker app.tasks` with QUEUE_WORKER_CONNECTION, no bootstrap/broker.py."""
    queue = unique()
    env = queue_env("redis_stream", queue, RECORD_FILE=str(record_file), QUEUE_APP="bootstrap.application:app")
    try:
        with worker(
            "queue_manager.worker:broker",
            "app.tasks",
            "--workers",
            "1",
            env={**env, "QUEUE_WORKER_CONNECTION": "redis_stream"},
            log=tmp_path / "worker.log",
        ) as process:
            sent = run_python("record_script.py", "1", "10", env=env)
            assert sent.returncode == 0, sent.stderr
            assert wait_for(lambda: len(recorded(record_file)) >= 10, timeout=40), process.output()
            assert sorted(recorded(record_file)) == list(range(1, 11))
    finally:
        cleanup("redis_stream", queue)


def test_worker_with_an_unknown_connection_fails_with_a_clear_error(tmp_path: Path) -> None:
    env = queue_env("redis", unique(), QUEUE_WORKER_CONNECTION="rabit", QUEUE_APP="bootstrap.application:app")
    with worker("queue_manager.worker:broker", "app.tasks", env=env, log=tmp_path / "worker.log") as process:
        # taskiq would restart a worker child that fails to import forever: ours stops, saying why.
        assert wait_for(lambda: not process.alive(), timeout=60), process.output()
        output = process.output()
    assert "Stopping the worker: Unknown queue connection 'rabit'" in output and "Did you mean 'rabbitmq'?" in output


def test_seed_app_with_a_typo_in_queue_driver_fails_at_boot() -> None:
    script = run_python("dispatch_script.py", "1", env={"QUEUE_DRIVER": "reddis"})
    assert script.returncode != 0
    assert "Unknown queue connection 'reddis'" in script.stderr
    assert "Did you mean 'redis'?" in script.stderr


def test_seed_script_against_a_stopped_server_names_host_and_port() -> None:
    env = {"QUEUE_DRIVER": "redis", "REDIS_PORT": "1", "REDIS_PASSWORD": "hunter2"}
    script = run_python("dispatch_script.py", "1", env=env)
    assert script.returncode != 0
    assert "BrokerUnreachableError" in script.stderr and "127.0.0.1:1" in script.stderr
    assert "hunter2" not in script.stderr + script.stdout
