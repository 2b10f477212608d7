"""A ``queue:work`` worker whose server refuses its credentials stops with one clear line and a non-zero exit
(issue 23 item 4), instead of retrying forever as if the server were down: at startup on every server driver,
and when the password changes under a running Redis worker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.helpers import PYTHON, SERVER_DRIVERS, WorkerProcess, queue_env, unique, wait_for
from tests.integration.drivers.secured import ACL_PASSWORD, WRONG, rotate_acl_password, secured

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.jobs"
EXIT_WITHIN = 60.0
URL_VARIABLE = {"redis": "REDIS_URL", "redis_stream": "REDIS_URL", "rabbitmq": "RABBITMQ_URL", "nats": "NATS_URL"}


def work(driver: str, url: str, log: Path) -> WorkerProcess:
    env = queue_env(driver, unique("q"), **{URL_VARIABLE[driver]: url})
    return WorkerProcess(env=env, log=log, command=[PYTHON, "artisan", "queue:work", driver, TASKS])


def assert_stopped_on_refusal(worker: WorkerProcess, user: str, where: str, secrets: tuple[str, ...]) -> None:
    assert wait_for(lambda: not worker.alive(), timeout=EXIT_WITHIN), f"still retrying:\n{worker.output()}"
    code = worker.stop()
    output = worker.output()
    assert code != 0, f"exit {code}:\n{output}"
    refusals = [line for line in output.splitlines() if f"refused the credentials of user '{user}'" in line]
    assert len(refusals) == 1, f"one line saying so, not a retry loop:\n{output}"
    assert where in refusals[0], refusals[0]
    assert "Traceback" not in output, output
    for secret in secrets:
        assert secret not in output, f"the password shows:\n{output}"


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_worker_with_wrong_credentials_stops_with_one_line(driver: str, tmp_path: Path) -> None:
    with secured(driver, tmp_path) as server:
        worker = work(driver, server.wrong, tmp_path / "w.log")
        try:
            assert_stopped_on_refusal(worker, server.user, server.where, (WRONG,))
        finally:
            worker.stop()


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
def test_a_running_worker_stops_when_its_password_is_changed(driver: str, tmp_path: Path) -> None:
    with secured(driver, tmp_path) as server:
        worker = work(driver, server.right, tmp_path / "w.log")
        try:
            worker.wait_ready()
            asyncio.run(rotate_acl_password(server.where, WRONG))
            assert_stopped_on_refusal(worker, server.user, server.where, (ACL_PASSWORD, WRONG))
        finally:
            worker.stop()
