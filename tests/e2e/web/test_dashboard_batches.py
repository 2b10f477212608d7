"""The dashboard's Batches panel in a real headless Chromium, served by a real uvicorn running the example app:
each batch's name (as text: a name is user input), progress bar and counts as the store has them, and its Cancel
button cancelling the batch in the store (a POST with X-Requested-With)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.bus.support import TASKS, bus_env, rows, send
from tests.e2e.web.test_dashboard import WAIT_MS, Server, browser  # noqa: F401  (the browser fixture)
from tests.e2e.web.uvicorn import uvicorn, wait_up
from tests.helpers import queue_work, run_python, wait_for

pytestmark = pytest.mark.e2e
EVIL = '<img src=x onerror="document.title=1">Import'


@pytest.fixture
def batch_server(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> Iterator[Server]:
    env = bus_env(queues, record_dir, "redis", QUEUE_DASHBOARD="true")
    log = tmp_path / "uvicorn.log"
    with uvicorn(env, log) as (url, process):
        wait_up(url, process, log)
        yield Server(url, env, log)


def test_the_batches_panel_shows_progress_and_cancels(
    batch_server: Server,
    browser: Any,  # noqa: F811  (the fixture imported above)
    record_dir: Path,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    env = batch_server.env
    done = send({"batch": [["p", f"j{n}", {}] for n in range(4)], "name": EVIL, "finally": True}, env)
    with queue_work("redis", TASKS, env=env, log=tmp_path / "w.log") as worker:
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()
    waiting = send({"batch": [["q", f"j{n}", {}] for n in range(3)], "name": "Waiting"}, env)  # no worker now

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{batch_server.url}/queue")
    finished_row = page.locator(f'#batches tr[data-batch-id="{done}"]')
    expect(finished_row).to_have_count(1, timeout=WAIT_MS)
    expect(finished_row.locator("td.name")).to_have_text(EVIL)  # shown as text, never as markup
    expect(finished_row).to_contain_text("100%")
    expect(finished_row.locator('[data-field="processed"]')).to_have_text("4")
    expect(finished_row.locator('[data-field="status"]')).to_have_text("finished")
    expect(finished_row.locator("button")).to_have_count(0)
    assert page.title() != "1" and page.locator("#batches img").count() == 0

    waiting_row = page.locator(f'#batches tr[data-batch-id="{waiting}"]')
    expect(waiting_row.locator('[data-field="pending"]')).to_have_text("3", timeout=WAIT_MS)
    expect(waiting_row).to_contain_text("0%")
    waiting_row.locator('button[data-action="cancel-batch"]').click()
    expect(waiting_row.locator('[data-field="status"]')).to_have_text("cancelled", timeout=WAIT_MS)
    shown = run_python("artisan", "queue:batch", waiting, env=env, timeout=90).stdout  # the store, from outside
    assert "Status: cancelled" in shown, shown
    assert errors == [], errors

    refused = page.request.post(f"{batch_server.url}/queue/api/batches/cancel", data={"id": waiting})
    assert refused.status == 403, "no X-Requested-With: refused, as every dashboard action"
