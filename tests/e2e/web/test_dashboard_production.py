"""The dashboard of the example app under a real uvicorn with ``APP_ENV=production``: without a guard the web
process refuses to start (one clear error), unless the dashboard is declared public; with a guard, an anonymous
visitor can neither see it nor press its buttons, and the health route tells anonymous callers up or down only.

The example app's ``.env`` says ``APP_ENV=local`` and fastapi-startkit loads it over ``os.environ`` after it has
resolved the app's environment from the real variable: only the app's own ``app.env`` says "production" then.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.e2e.web.uvicorn import uvicorn, wait_up
from tests.helpers import cleanup, unique, wait_for

pytestmark = pytest.mark.e2e

PRODUCTION = {"APP_ENV": "production", "QUEUE_DRIVER": "redis", "QUEUE_DASHBOARD": "true"}
GUARD = "tests.integration.web.test_dashboard_api:only_with_token"


def request(url: str, body: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of a GET, or of a POST of ``body`` as the dashboard's buttons send it."""
    headers = {"X-Requested-With": "queue-dashboard", "Content-Type": "application/json"} if body else {}
    data = json.dumps(body).encode() if body else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_an_unguarded_dashboard_in_production_refuses_to_start(tmp_path: Path) -> None:
    log = tmp_path / "uvicorn.log"
    with uvicorn(PRODUCTION, log) as (url, process):
        ended = wait_for(lambda: process.poll() is not None, timeout=90)
        served = request(f"{url}/queue")[0] if not ended else None
    output = log.read_text()
    assert ended, f"the web process served the dashboard to anyone (GET /queue: {served})"
    assert process.returncode != 0
    assert "QUEUE_DASHBOARD=true would serve the queue dashboard to anyone" in output, output
    assert "'production' environment" in output and "QUEUE_DASHBOARD_GUARD" in output
    assert "QUEUE_DASHBOARD_PUBLIC=true" in output


def test_a_dashboard_declared_public_is_served_in_production(tmp_path: Path) -> None:
    log = tmp_path / "uvicorn.log"
    with uvicorn({**PRODUCTION, "QUEUE_DASHBOARD_PUBLIC": "true"}, log) as (url, process):
        wait_up(url, process, log)
        status, page = request(f"{url}/queue")
    assert status == 200 and "<h1>Queues</h1>" in page


def test_a_guarded_dashboard_in_production_lets_no_anonymous_visitor_act(tmp_path: Path) -> None:
    queue = unique("prod")
    env = {**PRODUCTION, "QUEUE_DASHBOARD_GUARD": GUARD, "QUEUE_CONNECTIONS__REDIS__QUEUE": queue}
    log = tmp_path / "uvicorn.log"
    try:
        with uvicorn(env, log) as (url, process):
            wait_up(url, process, log)
            page = request(f"{url}/queue")
            pause = request(f"{url}/queue/api/queues/pause", {"connection": "redis", "queue": queue})
            health = request(f"{url}/queue/health")
        assert page[0] == 403 and pause[0] == 403, (page, pause)
        assert not asyncio.run(paused(queue)), "the anonymous Pause did nothing"
        assert health[0] == 200
        assert json.loads(health[1]) == {"status": "ok", "connections": [{"name": "redis", "ok": True}]}
    finally:
        cleanup("redis", queue)


async def paused(queue: str) -> bool:
    manager = QueueManager(load_settings({"driver": "redis", "connections": {"redis": {"queue": queue}}}))
    try:
        return await manager.connection().paused(queue)
    finally:
        await manager.shutdown()
