"""The insight panels in a real headless Chromium, served by a real uvicorn running the example app, fed by a real
``queue:work`` worker on Redis: the metrics update by themselves, the workers panel lists the worker, the search
finds jobs by tag and task, a job opens with its arguments, and hostile text stays text. Saves a screenshot of each
panel under docs/ when asked (UPDATE_SCREENSHOT=1, as tests/e2e/web/test_dashboard.py does)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.web.test_dashboard import CHROMIUM, CHROMIUM_ARGS, WAIT_MS
from tests.e2e.web.uvicorn import uvicorn, wait_up
from tests.helpers import ROOT, connections_env, dispatch_jobs, queue_work, unique

pytestmark = pytest.mark.e2e
HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'
PANELS = {"metrics": "#insight-metrics-panel", "workers": "#insight-workers-panel", "jobs": "#insight-jobs-panel"}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def shot(page: Any, panel: str, tmp_path: Path) -> None:
    name = f"insight-{panel}.png"
    path = ROOT / "docs" / name if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / name
    page.locator(PANELS[panel]).screenshot(path=str(path))


def test_insight_panels_in_a_real_browser(
    queues: dict[str, str], record_dir: Path, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    queue, tag = queues["redis"], unique("customer:")
    env = connections_env(queues, record_dir, "redis", QUEUE_DASHBOARD="true", QUEUE_INSIGHT__FLUSH_EVERY="1")
    with (
        uvicorn(env, tmp_path / "uvicorn.log") as (url, process),
        queue_work("redis", "--tasks=app.jobs", env=env, log=tmp_path / "worker.log") as worker,
    ):
        wait_up(url, process, tmp_path / "uvicorn.log")
        worker.wait_ready()
        jobs = [{"task": "remember", "args": [n], "labels": {"tags": tag}} for n in range(6)]
        jobs += [{"task": "hostile", "args": [HOSTILE]}]
        dispatch_jobs(jobs, env, wait=False)

        page = browser.new_page()
        page.goto(f"{url}/queue")
        page.select_option("#insight-connection", "redis")
        page.fill("#insight-queue", queue)  # this test's queue only (other tests' jobs are on the same server)
        page.dispatch_event("#insight-queue", "change")
        row = page.locator(f'#insight-metrics tr[data-task="app.jobs:remember"][data-queue="{queue}"]')
        expect(row.locator('[data-field="jobs"]')).to_have_text("6", timeout=WAIT_MS)
        expect(page.locator(f'#insight-metrics tr[data-task="app.jobs:hostile"][data-queue="{queue}"]')).to_be_visible(
            timeout=WAIT_MS
        )
        expect(page.locator("#insight-workers tr[data-worker]").filter(has_text=queue)).to_have_count(1)
        dispatch_jobs([{"task": "remember", "args": [n]} for n in range(6, 9)], env, wait=False)
        expect(row.locator('[data-field="jobs"]')).to_have_text("9", timeout=WAIT_MS)  # no reload: it polls

        page.fill("#insight-tag", tag)
        page.click("#insight-search-button")
        expect(page.locator("#insight-jobs tr.job")).to_have_count(6, timeout=WAIT_MS)
        page.locator("#insight-jobs tr.job").first.click()
        expect(page.locator("#insight-job-body")).to_contain_text('"job_id": 5', timeout=WAIT_MS)  # the newest
        expect(page.locator("#insight-job-body")).to_contain_text(tag)
        shot(page, "jobs", tmp_path)

        hostile = page.locator(f'#insight-metrics tr[data-task="app.jobs:hostile"][data-queue="{queue}"]')
        expect(hostile.locator('[data-field="failed"]')).to_have_text("2", timeout=WAIT_MS)  # both attempts: it failed
        page.fill("#insight-tag", "")
        page.fill("#insight-task", "hostile")
        page.click('#insight .tabs button[data-list="failed"]')
        failed = page.locator("#insight-jobs tr.job").filter(has_text="app.jobs:hostile").filter(has_text=queue)
        expect(failed).to_have_count(1, timeout=WAIT_MS)
        expect(failed.locator("td.error")).to_contain_text("<img src=x")  # shown as text
        failed.click()
        expect(page.locator("#insight-job-body")).to_contain_text("window.pwned=1", timeout=WAIT_MS)
        assert page.evaluate("window.pwned") is None, "a job's text ran as markup"
        assert page.locator("#insight img, #insight-jobs script").count() == 0

        expect(page.locator("#insight-metrics tr[data-task]")).to_have_count(2)  # remember, hostile
        shot(page, "metrics", tmp_path)
        shot(page, "workers", tmp_path)
