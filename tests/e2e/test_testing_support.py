"""Testing support as an app sees it: the plugin from the entry point, .env.testing, and worker errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SEED_APP, cleanup, queue_env, run_python, unique, wait_for, worker

pytestmark = pytest.mark.e2e


def test_the_readme_example_test_file_passes_in_an_app() -> None:
    """tests/app/tests/test_queue_example.py is the README's example; pytest finds our fixtures by entry point."""
    done = run_python("-m", "pytest", "tests/test_queue_example.py", "-q", "-p", "no:cacheprovider", env={})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert "warning" not in done.stdout.lower(), done.stdout


def test_readme_shows_the_example_apps_pytest_ini() -> None:
    from tests.helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```ini\n", 1)[1].split("```", 1)[0]
    assert block.strip() == (SEED_APP / "pytest.ini").read_text().strip()


def test_an_app_test_that_never_awaits_a_dispatch_fails_naming_the_line() -> None:
    """The Laravel habit ``SendEmail::dispatch(...)`` without ``await`` sends nothing: the plugin fails the test."""
    name = f"test_never_awaited_{unique('')}.py"
    path = SEED_APP / "tests" / name
    path.write_text(
        "from app.jobs import send_email\n"
        "from queue_manager import dispatch\n\n\n"
        "async def test_signup(queue_fake):\n"
        "    dispatch(send_email, 7)\n"
        "    queue_fake.assert_nothing_pushed()\n"
    )
    try:
        done = run_python("-m", "pytest", f"tests/{name}", "-q", "-p", "no:cacheprovider", env={})
    finally:
        path.unlink()
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"tests/{name}:6: dispatch of app.jobs:send_email was never awaited" in done.stdout, done.stdout


def test_a_job_failing_in_an_app_test_never_reaches_the_apps_real_failed_store(tmp_path: Path) -> None:
    """The failure is recorded where the test can see it (``queue.failed``), not in the store the app's settings
    name (a file under storage/, QUEUE_FAILED__URL): it would show in queue:failed and the dashboard."""
    real = tmp_path / "real.sqlite"
    name = f"test_isolated_{unique('')}.py"
    path = SEED_APP / "tests" / name
    path.write_text(
        "from app.jobs import always_fails\n\n\n"
        "async def test_a_failure_is_kept_for_this_test(queue):\n"
        "    handle = await always_fails.kiq(3)\n"
        "    assert (await handle.wait_result(timeout=10)).is_err\n"
        "    [failed] = await queue.failed.all()\n"
        "    assert failed.task_name == 'app.jobs:always_fails'\n\n\n"
        "async def test_the_next_test_starts_with_none(queue):\n"
        "    assert await queue.failed.count() == 0\n"
    )
    env = {
        "QUEUE_FAILED__DRIVER": "database",
        "QUEUE_FAILED__URL": f"sqlite+aiosqlite:///{real}",
        "RECORD_DIR": str(tmp_path),
    }
    try:
        done = run_python("-m", "pytest", f"tests/{name}", "-q", "-p", "no:cacheprovider", env=env)
    finally:
        path.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    if real.exists():
        import sqlite3

        with sqlite3.connect(real) as db:
            assert db.execute("SELECT count(*) FROM failed_jobs").fetchone() == (0,)


def test_readme_shows_the_example_test_file() -> None:
    from tests.helpers import ROOT

    example = (SEED_APP / "tests" / "test_queue_example.py").read_text()
    assert example.strip() in (ROOT / "README.md").read_text()


def test_a_real_worker_that_never_imported_a_task_says_so_as_an_error(tmp_path: Path) -> None:
    queue = unique()
    env = queue_env("redis", queue, RECORD_DIR=str(tmp_path), QUEUE_APP="bootstrap.application:app")
    try:
        # This worker imports app.tasks only; app.jobs:remember is unknown to it.
        with worker("queue_manager.worker:broker", "app.tasks", env=env, log=tmp_path / "w.log") as process:
            done = run_python("dispatch_jobs.py", '[{"task": "remember", "args": [1]}]', env=env)
            assert done.returncode == 0, done.stderr
            assert wait_for(lambda: "unknown task" in process.output(), timeout=30), process.output()
            line = next(x for x in process.output().splitlines() if "unknown task" in x)
        assert "ERROR" in line and "app.jobs:remember" in line and "--tasks" in line
    finally:
        cleanup("redis", queue)
