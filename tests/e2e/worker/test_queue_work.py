"""`python artisan queue:work` refuses bad input before any worker starts, with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import PYTHON, WorkerProcess, run_python, wait_for

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rabit"], "Unknown queue connection 'rabit'. Did you mean 'rabbitmq'?"),
        (["--connection=nast"], "Did you mean 'nats'?"),
        (["redis", "--connection=nats"], "Two connections given"),
        (["memory"], "has no worker"),
        (["redis", "--queue=a b"], "Invalid queue name 'a b'"),
        (["redis", "--queue=a,a"], "listed twice"),
        (["redis", "--workers=0"], "--workers must be a whole number >= 1"),
        (["redis", "--max-async-tasks=many"], "--max-async-tasks must be"),
        (["redis", "--tasks=app.nope"], "Task module 'app.nope' cannot be found"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(args: list[str], message: str) -> None:
    done = run_python("artisan", "queue:work", *args, env={"QUEUE_DRIVER": "redis"}, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("target", "env"),
    [
        ("queue_manager.worker:broker", {"QUEUE_WORKER_CONNECTION": "rabit"}),
        ("queue_manager.worker:broker", {"QUEUE_DRIVER": "rabit"}),  # refused by the app's boot, inside it
        ("bootstrap.broker:broker", {"QUEUE_DRIVER": "rabit"}),  # the guide's own command
    ],
)
def test_plain_taskiq_worker_with_a_bad_connection_stops_instead_of_restarting(
    target: str, env: dict[str, str], tmp_path: Path
) -> None:
    """TaskIQ restarts a worker child that fails to import its broker forever; ours stops the whole worker with a
    non-zero exit (a process manager must see a failure, not a clean stop) and one message, no traceback."""
    log = tmp_path / "worker.log"
    process = WorkerProcess(target, "app.tasks", env=env, log=log)
    try:
        assert wait_for(lambda: not process.alive(), timeout=60), "the worker kept restarting:\n" + process.output()
        output = process.output()
    finally:
        code = process.stop()
    assert code != 0, f"exit code {code}:\n{output}"
    assert "Stopping the worker: Unknown queue connection 'rabit'. Did you mean 'rabbitmq'?" in output
    assert output.count("Stopping the worker") == 1, output
    assert "Traceback" not in output and "CRITICAL" in output, output


@pytest.mark.parametrize(
    ("driver", "url"),
    [
        ("redis", "REDIS_URL=redis://:hunter2-pw@127.0.0.1:1/0"),
        ("rabbitmq", "RABBITMQ_URL=amqp://guest:hunter2-pw@127.0.0.1:1/"),
        ("nats", "NATS_URL=nats://user:hunter2-pw@127.0.0.1:1"),
    ],
)
def test_a_worker_whose_server_is_down_keeps_trying_and_stops_cleanly(driver: str, url: str, tmp_path: Path) -> None:
    """It retries, each time naming host:port (never the password), and a SIGTERM meanwhile ends it with exit 0
    and no traceback (a NATS worker's shutdown asserted inside nats-py: its client had never connected)."""
    name, _, value = url.partition("=")
    process = WorkerProcess(
        env={"QUEUE_DRIVER": driver, name: value},
        log=tmp_path / "w.log",
        command=[PYTHON, "artisan", "queue:work", "--tasks=app.jobs"],
    )
    try:
        assert wait_for(lambda: process.output().count("Trying again") >= 2, timeout=60), process.output()
    finally:
        code = process.stop()
    output = process.output()
    assert code == 0 and "Traceback" not in output, output
    assert "127.0.0.1:1" in output and "hunter2-pw" not in output, output
