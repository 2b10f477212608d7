"""`python artisan queue:work` refuses bad input before any worker starts, with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import WorkerProcess, run_python, wait_for

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


def test_plain_taskiq_worker_with_a_bad_connection_stops_instead_of_restarting(tmp_path: Path) -> None:
    """TaskIQ restarts a worker child that fails to import its broker forever; ours stops the worker."""
    log = tmp_path / "worker.log"
    process = WorkerProcess(
        "queue_manager.worker:broker", "app.tasks", env={"QUEUE_WORKER_CONNECTION": "rabit"}, log=log
    )
    try:
        assert wait_for(lambda: not process.alive(), timeout=30), "the worker kept restarting:\n" + process.output()
        output = process.output()
    finally:
        process.stop()
    assert "Stopping the worker: Unknown queue connection 'rabit'. Did you mean 'rabbitmq'?" in output
    assert output.count("Stopping the worker") <= 2, "one message per worker child, no restart loop"
