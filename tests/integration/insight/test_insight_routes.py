"""The dashboard's insight routes over the memory connection (no server): metrics, recent/failed jobs with search,
one job, workers, the optional Prometheus text, and the guard in front of every one of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi_startkit.fastapi import FastAPIProvider

from queue_manager import task
from queue_manager.insight.recorder import InsightRecorder
from queue_manager.insight.state import insight_state
from queue_manager.settings.insight import InsightSettings
from tests.integration.web.test_dashboard_api import TOKEN

GUARD = "tests.integration.web.test_dashboard_api:only_with_token"
ROUTES = ["/queue/api/metrics", "/queue/api/jobs", "/queue/api/jobs/x", "/queue/api/workers", "/queue/metrics"]


@task(tags=["reports"])
async def report(customer_id: int, password: str = "") -> int:
    if customer_id < 0:
        raise ValueError("<b>no such customer</b>")
    return customer_id


def dashboard(make_app: Callable[..., Any], **env: str) -> Any:
    return make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory", QUEUE_DASHBOARD="true", **env)


def client(app: Any, **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app.fastapi)
    return httpx.AsyncClient(transport=transport, base_url="http://app", timeout=60, headers=headers)


async def run_jobs(app: Any) -> None:
    conn = app.make("queue.manager").connection("memory")
    recorder = InsightRecorder(InsightSettings(), "memory", [], conn.queue, lambda: insight_state(conn))
    conn.broker.add_middlewares(recorder)
    for customer in (1, 2, -3):
        await (await report.dispatch(customer, "hunter2").with_tags(f"customer:{customer}")).wait_result(timeout=5)
    await recorder.flush()


async def test_the_routes_answer_what_the_connection_reads(make_app: Callable[..., Any]) -> None:
    app = dashboard(make_app, QUEUE_INSIGHT__PROMETHEUS="true")
    await run_jobs(app)
    async with client(app) as http:
        metrics = (await http.get("/queue/api/metrics", params={"connection": "memory"})).json()
        [row] = metrics["tasks"]
        assert (row["task"], row["jobs"], row["failed"]) == (report.task_name, 3, 1)

        found = (await http.get("/queue/api/jobs", params={"tag": "customer:2"})).json()["jobs"]
        assert [job["arguments"] for job in found] == [{"customer_id": 2, "password": "********"}]
        failed = (await http.get("/queue/api/jobs", params={"failed": "1", "task": "report"})).json()["jobs"]
        assert [job["error"] for job in failed] == ["ValueError: <b>no such customer</b>"]

        one = await http.get(f"/queue/api/jobs/{found[0]['id']}")
        assert one.status_code == 200 and one.json()["tags"] == ["reports", "customer:2"]
        assert (await http.get("/queue/api/jobs/nope")).status_code == 404
        [worker] = (await http.get("/queue/api/workers")).json()["workers"]
        assert worker["connection"] == "memory" and worker["jobs_done"] == 3
        unknown = await http.get("/queue/api/metrics", params={"connection": "nats"})
        assert unknown.status_code == 404 and "shows memory" in unknown.json()["error"]

        text = await http.get("/queue/metrics")
        assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
        assert (
            f'queue_jobs_per_minute{{connection="memory",queue="default",task="{report.task_name}"}} 0.05' in text.text
        )
        assert 'queue_workers{connection="memory"} 1' in text.text


async def test_prometheus_is_off_by_default(make_app: Callable[..., Any]) -> None:
    async with client(dashboard(make_app)) as http:
        assert (await http.get("/queue/metrics")).status_code == 404


@pytest.mark.parametrize("path", ROUTES)
async def test_every_insight_route_is_behind_the_guard(make_app: Callable[..., Any], path: str) -> None:
    app = dashboard(make_app, QUEUE_INSIGHT__PROMETHEUS="true", QUEUE_DASHBOARD_GUARD=GUARD)
    async with client(app) as http:
        assert (await http.get(path)).status_code == 403
    async with client(app, **{"x-dashboard-token": TOKEN}) as http:
        assert (await http.get(path)).status_code in (200, 404)  # /api/jobs/x: no such job, but let in
