"""The dashboard in a real headless Chromium (Playwright), served by a real uvicorn running the example app,
against the real Redis, RabbitMQ and NATS: what it shows agrees with ``queue:size`` and ``queue:failed``, its
Pause and Retry buttons act on the servers, and it refreshes itself. Saves docs/dashboard.png for the README.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install -y chromium``; .ci/run installs it) and the
``playwright`` package (the ``dev`` extra); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.web.uvicorn import uvicorn, wait_up
from tests.helpers import (
    ROOT,
    SERVER_DRIVERS,
    cleanup,
    connections_env,
    dispatch_jobs,
    queue_work,
    run_python,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The README's screenshot is refreshed only when asked (UPDATE_SCREENSHOT=1 make test), so a test run leaves the
# checkout as it was; otherwise the shot goes to the test's temp dir (and still proves the page renders).
SCREENSHOT = ROOT / "docs" / "dashboard.png"
WAIT_MS = 60_000  # the page polls every 2 s; the machine may be busy
# Readable queue names for the screenshot, unique per run.
WORDS = {"redis": "emails", "redis_stream": "reports", "rabbitmq": "billing", "nats": "exports"}


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path


@pytest.fixture
def queues() -> Iterator[dict[str, str]]:
    names = {driver: unique(f"{WORDS[driver]}-")[:14] for driver in SERVER_DRIVERS}
    yield names
    for driver, queue in names.items():
        cleanup(driver, queue)  # its jobs and its pause flag


@pytest.fixture
def server(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """The example app under a real uvicorn, dashboard on, showing the four server connections."""
    env = connections_env(queues, record_dir, "redis", QUEUE_DASHBOARD="true")
    log = tmp_path / "uvicorn.log"
    with uvicorn(env, log) as (url, process):
        wait_up(url, process, log)
        yield Server(url, env, log)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile every run
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def artisan(*args: str, env: dict[str, str]) -> str:
    done = run_python("artisan", *args, env=env, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def queue_size(connection: str, queue: str, env: dict[str, str]) -> dict[str, str]:
    """``python artisan queue:size connection:queue``: its one row, by column."""
    lines = [line for line in artisan("queue:size", f"{connection}:{queue}", env=env).splitlines() if "|" in line]
    header, row = ([cell.strip() for cell in line.strip().strip("|").split("|")] for line in (lines[0], lines[1]))
    return dict(zip(header, row, strict=True))


def test_the_dashboard_in_a_real_browser(server: Server, browser: Any, queues: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    env, queue = server.env, queues["redis"]
    # A real worker runs some jobs (the throughput sparkline) and one that fails for good (a failed job).
    jobs = [{"task": "remember", "args": [n]} for n in range(6)] + [{"task": "always_fails", "args": [1]}]
    dispatch_jobs(jobs, env, wait=False)
    with queue_work("redis", "--tasks=app.jobs", "--stop-when-empty", env=env, log=tmp_path / "worker.log") as worker:
        assert wait_for(lambda: not worker.alive(), timeout=120), worker.output()
    assert worker.process.returncode == 0, worker.output()
    assert "always_fails" in artisan("queue:failed", env=env)
    # Jobs waiting on the other servers, with no worker.
    dispatch_jobs(
        [{"task": "remember", "args": [n], "connection": "nats"} for n in range(2)]
        + [{"task": "remember", "args": [9], "connection": "rabbitmq"}],
        env,
        wait=False,
    )

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{server.url}/queue")
    expect(page.locator("h1")).to_have_text("Queues")

    def cell(connection: str, name: str, field: str) -> Any:
        card = page.locator(f'article.connection[data-connection="{connection}"]')
        return card.locator(f'tr[data-queue="{name}"] [data-field="{field}"]')

    redis_row = page.locator(f'article.connection[data-connection="redis"] tr[data-queue="{queue}"]')
    # What it shows agrees with queue:size, on every server.
    for connection, expected in (("redis", "0"), ("nats", "2"), ("rabbitmq", "1"), ("redis_stream", "0")):
        expect(cell(connection, queues[connection], "waiting")).to_have_text(expected, timeout=WAIT_MS)
        assert queue_size(connection, queues[connection], env)["Waiting"] == expected
    expect(cell("rabbitmq", queues["rabbitmq"], "throughput")).to_have_text("n/a")
    finished = int(cell("redis", queue, "throughput-total").inner_text())
    assert finished >= 6, "the worker's finished jobs are in the sparkline"
    assert cell("redis", queue, "throughput").locator("svg polyline").count() == 1

    # The page refreshes itself: jobs dispatched after it loaded show up without a reload.
    dispatch_jobs([{"task": "remember", "args": [n]} for n in range(10, 13)], env, wait=False)
    expect(cell("redis", queue, "waiting")).to_have_text("3", timeout=WAIT_MS)
    assert queue_size("redis", queue, env)["Waiting"] == "3"

    # Pause: the queue shows paused, and the server says so (queue:size reads it from Redis).
    redis_row.locator('button[data-action="pause"]').click()
    expect(cell("redis", queue, "state")).to_have_text("paused", timeout=WAIT_MS)
    expect(redis_row.locator('button[data-action="resume"]')).to_be_visible()
    expect(page.locator("#notice")).to_have_text(f"redis:{queue} paused.")
    assert queue_size("redis", queue, env)["Paused"] == "yes"

    failed_row = page.locator("#failed tr[data-failed-id]")
    expect(failed_row).to_have_count(1, timeout=WAIT_MS)
    expect(failed_row.locator("td.error")).to_have_text("ValueError: job 1 is broken")
    expect(failed_row).to_contain_text("app.jobs:always_fails")
    shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000, "a real rendering, not an empty page"

    # Retry: the failed list shrinks and the job is waiting in its queue again.
    failed_row.locator('button[data-action="retry"]').click()
    expect(page.locator("#failed")).to_have_text("No failed jobs.", timeout=WAIT_MS)
    expect(cell("redis", queue, "waiting")).to_have_text("4", timeout=WAIT_MS)
    assert "No failed jobs." in artisan("queue:failed", env=env)
    assert queue_size("redis", queue, env)["Waiting"] == "4"

    redis_row.locator('button[data-action="resume"]').click()
    expect(cell("redis", queue, "state")).to_have_text("active", timeout=WAIT_MS)
    assert queue_size("redis", queue, env)["Paused"] == "no"
    expect(page.locator("#live")).not_to_have_class("live offline")
    assert errors == [], errors
    assert "Traceback" not in server.log.read_text(), server.log.read_text()
