"""A NATS password with URL specials (issue 22 item 12), on a private nats-server that requires it.

Written raw, such a password is refused at boot with the advice to percent-encode it; percent-encoded, nats-py
handed the encoded text to the server ("Authorization Violation"). Here the encoded URL works for sending, a real
``queue:work`` worker, results and the control bucket (pause), and the password shows nowhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import PYTHON, WorkerProcess, connections_env, dispatch_jobs, run_python, unique, wait_for
from tests.integration.drivers.secured import nats_with_password

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.jobs"
USER = "q@ueue:user"
PASSWORD = "p@s:s/w?r#d%2F&+ é"  # every character a URL gives a meaning to, a literal %2F and a space


@pytest.fixture
def nats_port(tmp_path: Path) -> Iterator[int]:
    with nats_with_password(tmp_path, USER, PASSWORD) as server:
        yield server.port


def encoded_url(port: int) -> str:
    return f"nats://{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}"


def no_secret(text: str) -> None:
    for secret in (PASSWORD, quote(PASSWORD, safe=""), "w?r#d"):
        assert secret not in text, f"the password ({secret!r}) shows in:\n{text}"


def test_a_percent_encoded_password_works_for_sending_a_worker_results_and_pauses(
    nats_port: int, tmp_path: Path, record_dir: Path
) -> None:
    queue = unique("q")
    env = connections_env({"nats": queue}, record_dir, "nats", NATS_URL=encoded_url(nats_port))
    worker = WorkerProcess(env=env, log=tmp_path / "w.log", command=[PYTHON, "artisan", "queue:work", TASKS])
    try:
        worker.wait_ready()
        rows = dispatch_jobs([{"task": "remember", "args": [i]} for i in range(3)], env)
        assert [row["value"] for row in rows] == [0, 1, 2], rows  # sent, run by the worker, results read back
        paused = run_python("artisan", "queue:pause", f"nats:{queue}", env=env)
        assert paused.returncode == 0, paused.stdout + paused.stderr
        assert wait_for(lambda: "is paused: taking no new jobs" in worker.output(), 30), worker.output()
        sizes = run_python("artisan", "queue:size", f"nats:{queue}", env=env)
        assert sizes.returncode == 0 and " yes " in sizes.stdout, sizes.stdout + sizes.stderr
        resumed = run_python("artisan", "queue:resume", f"nats:{queue}", env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        for done in (paused, sizes, resumed):
            no_secret(done.stdout + done.stderr)
    finally:
        worker.stop()
    no_secret(worker.output())


def test_a_raw_password_with_specials_is_refused_at_boot_with_the_fix(nats_port: int) -> None:
    raw = f"nats://{USER}:{PASSWORD}@127.0.0.1:{nats_port}"
    done = run_python("artisan", "queue:size", "nats", env={"QUEUE_DRIVER": "nats", "NATS_URL": raw})
    assert done.returncode != 0
    assert "Percent-encode the password" in done.stdout + done.stderr, done.stdout + done.stderr
    no_secret(done.stdout + done.stderr)


def test_a_wrong_password_is_an_authentication_error_not_a_traceback(nats_port: int) -> None:
    wrong = f"nats://{quote(USER, safe='')}:not-it@127.0.0.1:{nats_port}"
    done = run_python("artisan", "queue:size", "nats", env={"QUEUE_DRIVER": "nats", "NATS_URL": wrong})
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output, output
    assert f"refused the credentials of user '{USER}'" in output, output
    assert "not-it" not in output
