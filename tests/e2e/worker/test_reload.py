"""`queue:work --reload` for development (the guide recommends TaskIQ's `--reload`): a changed task module is
picked up without restarting the command; the flags it cannot honour are refused up front."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import SEED_APP, cleanup, queue_env, queue_work, run_python, unique, wait_for

pytestmark = pytest.mark.e2e

TASK = """from queue_manager import task


@task
async def version() -> str:
    return "{version}"
"""


def test_a_changed_task_is_reloaded(tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(SEED_APP, app, ignore=shutil.ignore_patterns("storage", "__pycache__", ".pytest_cache"))
    module = app / "app" / "reloadable.py"
    module.write_text(TASK.format(version="v1"))
    queue = unique()
    env = queue_env("redis", queue, QUEUE_FAILED__DRIVER="null")

    def ask() -> str:
        done = run_python("dispatch_jobs.py", '[{"task": "app.reloadable:version"}]', "--wait", env=env, cwd=app)
        assert done.returncode == 0, done.stdout + done.stderr
        return str(json.loads(done.stdout.splitlines()[-1])[0]["value"])

    try:
        with queue_work("--reload", "--tasks=app.reloadable", env=env, log=tmp_path / "w.log", cwd=app) as worker:
            worker.wait_ready()
            assert ask() == "v1"
            module.write_text(TASK.format(version="v2"))
            assert wait_for(lambda: worker.output().count("Worker ready") >= 2, timeout=60), worker.output()
            assert ask() == "v2"
            assert worker.alive(), "the command itself kept running"
    finally:
        cleanup("redis", queue)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reload", "--workers=2"], "--reload runs one worker process"),
        (["--reload", "--max-jobs=5"], "--max-jobs would never end it"),
    ],
)
def test_reload_refuses_what_it_cannot_honour(args: list[str], message: str) -> None:
    done = run_python("artisan", "queue:work", "redis", *args, env={"QUEUE_DRIVER": "redis"}, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stdout + done.stderr
