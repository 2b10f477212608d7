"""The dashboard's JSON API (and its page) against the real Redis, RabbitMQ and NATS, with no worker running:
counts agree with conn.counts()/size(), pause and resume reach the server, failed jobs are retried and
forgotten, the guard is applied to every route, and no password or unescaped text ever comes out."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import HTTPException, Request
from fastapi_startkit.fastapi import FastAPIProvider

from drivers import QueueConfigurationError
from queue_manager import task
from queue_manager.failed import FailedJob
from queue_manager.web.dashboard.routes import router
from tests.helpers import SERVER_DRIVERS, cleanup_queue, unique
from tests.servers import private_redis

ACTION = {"X-Requested-With": "queue-dashboard"}  # what the dashboard's buttons send
TOKEN = "letmein"


@task(name="tests.dashboard.noted")
async def noted(number: int) -> int:
    return number


@task(name="tests.dashboard.broken", retries=0)
async def broken(number: int) -> None:
    raise RuntimeError(f"job {number} is broken\nsecond line of the error")


def only_with_token(request: Request) -> None:
    """The guard of the guard test (QUEUE_DASHBOARD_GUARD=tests.integration.web.test_dashboard_api:only_with_token)."""
    if request.headers.get("x-dashboard-token") != TOKEN:
        raise HTTPException(status_code=403, detail="not for you")


def refuse_everyone() -> None:
    """The guard of the prefix test: refuses every request as an auth guard would (401 and how to authenticate)."""
    raise HTTPException(status_code=401, detail="log in first", headers={"WWW-Authenticate": "Bearer"})


@pytest.fixture
async def queues() -> AsyncIterator[dict[str, str]]:
    """A unique queue per server connection; what the test left on the servers is deleted afterwards."""
    names = {driver: unique("dash") for driver in SERVER_DRIVERS}
    yield names
    for driver, queue in names.items():
        await cleanup_queue(driver, queue)  # its jobs and its pause flag


@pytest.fixture
def dashboard_app(make_app: Callable[..., Any], queues: dict[str, str], tmp_path: Path) -> Callable[..., Any]:
    """The app with the dashboard on, every connection on the test's queues, failed jobs in a private file."""

    def build(**env: str) -> Any:
        settings = {
            "QUEUE_DASHBOARD": "true",
            "QUEUE_FAILED__URL": f"sqlite+aiosqlite:///{tmp_path}/f.sqlite",
            **{f"QUEUE_CONNECTIONS__{driver.upper()}__QUEUE": queue for driver, queue in queues.items()},
            **env,
        }
        return make_app(providers=[FastAPIProvider], **settings)

    return build


def memory_dashboard(make_app: Callable[..., Any], **env: str) -> Any:
    """An app with the dashboard on over the memory driver: no server needed."""
    return make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory", QUEUE_DASHBOARD="true", **env)


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.fastapi), base_url="http://app", timeout=60)


async def stats(http: httpx.AsyncClient, path: str = "/queue") -> dict[str, Any]:
    response = await http.get(f"{path}/api/stats")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def card(body: dict[str, Any], connection: str) -> dict[str, Any]:
    return next(entry for entry in body["connections"] if entry["name"] == connection)


def row(body: dict[str, Any], connection: str, queue: str) -> dict[str, Any]:
    return next(entry for entry in card(body, connection)["queues"] if entry["name"] == queue)


def failed_job(connection: str, queue: str, task_name: str, message: str) -> FailedJob:
    return FailedJob(
        id=str(uuid.uuid4()),
        connection=connection,
        queue=queue,
        task_name=task_name,
        task_id=uuid.uuid4().hex,
        args=[41],
        kwargs={},
        labels={},
        exception="RuntimeError",
        message=message,
        traceback="Traceback (most recent call last): ...",
        attempts=1,
        failed_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_counts_match_the_connection_and_pause_resume_round_trips(
    driver: str, dashboard_app: Callable[..., Any], queues: dict[str, str]
) -> None:
    app = dashboard_app(QUEUE_DRIVER=driver)
    manager = app.make("queue.manager")
    connection, queue = manager.connection(), queues[driver]
    try:
        for n in range(3):
            await connection.dispatch(noted, n)
        await connection.dispatch(noted, 99).delay(600)
        async with client(app) as http:
            body = await stats(http)
            names = [entry["name"] for entry in body["connections"]]
            assert names == [driver, *(name for name in SERVER_DRIVERS if name != driver)], "the default first"
            assert card(body, driver)["default"] is True
            assert all(entry["status"] == "ok" for entry in body["connections"]), body
            assert "memory" not in {entry["name"] for entry in body["connections"]}, "memory is not the default"

            shown, counts = row(body, driver, queue), await connection.counts(queue)
            # Waiting leaves out the delayed job where the driver counts it apart (the Redis drivers); NATS,
            # with no worker's consumer yet, counts every job of the subject; RabbitMQ keeps a delayed job in a
            # delay queue of its own, which size() leaves out too.
            assert shown["waiting"] == counts.waiting == (4 if driver == "nats" else 3)
            assert await connection.size(queue) == (3 if driver == "rabbitmq" else 4)
            assert (shown["delayed"], shown["running"]) == (counts.delayed, counts.reserved)
            assert shown["paused"] is False
            if driver == "rabbitmq":
                assert shown["throughput"] is None, "RabbitMQ keeps no throughput counters"
            else:
                assert shown["throughput"] == [0] * 30, "no worker ran anything in the last 30 minutes"

            paused = await http.post(
                "/queue/api/queues/pause", json={"connection": driver, "queue": queue}, headers=ACTION
            )
            assert paused.status_code == 200, paused.text
            assert paused.json() == {"connection": driver, "queue": queue, "paused": True}
            assert await connection.paused(queue) is True, "the pause is on the server, where workers read it"
            assert row(await stats(http), driver, queue)["paused"] is True
            page = (await http.get("/queue")).text
            assert f'data-action="resume" data-connection="{driver}" data-queue="{queue}"' in page

            resumed = await http.post(
                "/queue/api/queues/resume", json={"connection": driver, "queue": queue}, headers=ACTION
            )
            assert resumed.status_code == 200 and resumed.json()["paused"] is False
            assert await connection.paused(queue) is False
            assert row(await stats(http), driver, queue)["paused"] is False
    finally:
        with suppress(Exception):
            await connection.clear(queue)
        await manager.shutdown()


async def test_pause_of_an_unknown_connection_or_queue_is_a_clear_json_error(
    dashboard_app: Callable[..., Any], queues: dict[str, str]
) -> None:
    app = dashboard_app(QUEUE_DRIVER="redis")
    try:
        async with client(app) as http:
            unknown = await http.post(
                "/queue/api/queues/pause", json={"connection": "rabit", "queue": "x"}, headers=ACTION
            )
            assert unknown.status_code == 404 and "Unknown queue connection 'rabit'" in unknown.json()["error"]
            memory = await http.post(
                "/queue/api/queues/pause", json={"connection": "memory", "queue": "default"}, headers=ACTION
            )
            assert memory.status_code == 404, "memory is not shown (not the default), so it cannot be paused here"
            other = await http.post(
                "/queue/api/queues/pause", json={"connection": "redis", "queue": "nope"}, headers=ACTION
            )
            assert other.status_code == 404 and queues["redis"] in other.json()["error"], "it lists the known queues"
            invalid = await http.post(
                "/queue/api/queues/pause", json={"connection": "redis", "queue": "a b"}, headers=ACTION
            )
            assert invalid.status_code == 400 and "Invalid queue name" in invalid.json()["error"]
            missing = await http.post("/queue/api/queues/pause", json={"connection": "redis"}, headers=ACTION)
            assert missing.status_code == 400 and "'queue'" in missing.json()["error"]
        assert await app.make("queue.manager").connection().paused(queues["redis"]) is False
    finally:
        await app.make("queue.manager").shutdown()


async def test_a_failed_job_is_listed_then_retried_into_its_queue_or_forgotten(
    dashboard_app: Callable[..., Any], queues: dict[str, str]
) -> None:
    app = dashboard_app(QUEUE_DRIVER="redis")
    manager = app.make("queue.manager")
    redis, queue = manager.connection(), queues["redis"]
    try:
        await manager.connection("memory").dispatch(broken, 7)  # fails for good where it runs: recorded
        [on_memory] = await manager.failed.all()
        logged = failed_job("redis", queue, noted.task_name, "the mail server is down\nat line 2")
        await manager.failed.store.log(logged)
        async with client(app) as http:
            body = await stats(http)
            assert body["failed"]["total"] == 2 and body["failed"]["error"] is None
            newest, older = body["failed"]["jobs"]
            assert newest == {
                "id": logged.id,
                "short_id": logged.id[:8],
                "connection": "redis",
                "queue": queue,
                "task": "tests.dashboard.noted",
                "failed_at": logged.failed_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "error": "RuntimeError: the mail server is down",
                "attempts": 1,
            }
            assert (older["id"], older["connection"], older["task"]) == (on_memory.id, "memory", broken.task_name)
            assert older["error"] == "RuntimeError: job 7 is broken", "the error's first line only"

            retried = await http.post("/queue/api/failed/retry", json={"id": logged.id}, headers=ACTION)
            assert retried.status_code == 200, retried.text
            [sent] = retried.json()["retried"]
            assert (sent["id"], sent["connection"], sent["queue"], sent["task_id"]) == (
                logged.id,
                "redis",
                queue,
                logged.task_id,
            )
            assert await redis.size(queue) == 1, "the job is back in its queue"
            body = await stats(http)
            assert [job["id"] for job in body["failed"]["jobs"]] == [on_memory.id], "and out of the failed jobs"
            assert row(body, "redis", queue)["waiting"] == 1

            forgotten = await http.post("/queue/api/failed/forget", json={"id": on_memory.id}, headers=ACTION)
            assert forgotten.status_code == 200 and forgotten.json() == {"forgotten": on_memory.id}
            assert await manager.failed.all() == []
            assert (await stats(http))["failed"] == {"total": 0, "jobs": [], "error": None}
            assert "No failed jobs." in (await http.get("/queue")).text

            for action in ("retry", "forget"):
                gone = await http.post(f"/queue/api/failed/{action}", json={"id": logged.id}, headers=ACTION)
                assert gone.status_code == 404 and gone.json() == {"error": f"No failed job with id {logged.id!r}."}
    finally:
        with suppress(Exception):
            await redis.clear(queue)
        await manager.shutdown()


async def test_a_failed_job_forgotten_while_its_retry_is_under_way_is_a_404(
    dashboard_app: Callable[..., Any], queues: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retry and Forget clicked at once (or queue:forget in a terminal): the retry found the job, then the other
    request forgot it before it was sent. "No such failed job" is 404, as when it was never there, not 400."""
    app = dashboard_app(QUEUE_DRIVER="redis")
    manager = app.make("queue.manager")
    job = failed_job("redis", queues["redis"], noted.task_name, "boom")
    await manager.failed.store.log(job)
    retry = manager.failed.retry

    async def forgotten_meanwhile(ids: Any, queue: str | None = None) -> Any:
        assert await manager.failed.forget(job.id), "the other request forgets it first"
        return await retry(ids, queue)

    monkeypatch.setattr(manager.failed, "retry", forgotten_meanwhile)
    try:
        async with client(app) as http:
            response = await http.post("/queue/api/failed/retry", json={"id": job.id}, headers=ACTION)
        assert response.status_code == 404, response.text
        assert response.json() == {"error": f"No failed job with id {job.id!r}."}
        assert await manager.connection().size(queues["redis"]) == 0, "nothing was sent"
    finally:
        await manager.shutdown()


async def test_actions_refuse_what_a_cross_site_form_could_send(
    dashboard_app: Callable[..., Any], queues: dict[str, str]
) -> None:
    app = dashboard_app(QUEUE_DRIVER="redis")
    manager = app.make("queue.manager")
    target = {"connection": "redis", "queue": queues["redis"]}
    try:
        async with client(app) as http:
            no_header = await http.post("/queue/api/queues/pause", json=target)
            assert no_header.status_code == 403 and "X-Requested-With" in no_header.json()["error"]
            form = await http.post("/queue/api/queues/pause", data=target, headers=ACTION)
            assert form.status_code == 400 and "JSON body" in form.json()["error"]
            plain = await http.post(
                "/queue/api/queues/pause",
                content='{"connection": "redis", "queue": "x"}',
                headers={**ACTION, "Content-Type": "text/plain"},
            )
            assert plain.status_code == 400, "a text/plain body (what a form can send) is refused even if it is JSON"
            garbage = await http.post(
                "/queue/api/queues/pause", content="{not json", headers={**ACTION, "Content-Type": "application/json"}
            )
            assert garbage.status_code == 400 and "not valid JSON" in garbage.json()["error"]
            listed = await http.post("/queue/api/queues/pause", json=[target], headers=ACTION)
            assert listed.status_code == 400
            assert (await http.get("/queue/api/queues/pause")).status_code == 405
        assert await manager.connection().paused(queues["redis"]) is False, "nothing refused was done"
    finally:
        await manager.shutdown()


async def test_the_dashboard_is_off_unless_turned_on_and_its_path_is_configurable(
    make_app: Callable[..., Any],
) -> None:
    off = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory")
    async with client(off) as http:
        for path in ("/queue", "/queue/api/stats"):
            assert (await http.get(path)).status_code == 404
        assert (await http.post("/queue/api/queues/pause", json={}, headers=ACTION)).status_code == 404
        assert (await http.get("/queue/health")).status_code == 200, "the health route is still there"
    moved = memory_dashboard(make_app, QUEUE_DASHBOARD_PATH="/admin/queues/")
    try:
        async with client(moved) as http:
            assert (await http.get("/queue")).status_code == 404
            page = await http.get("/admin/queues")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert 'data-api="/admin/queues/api"' in page.text
            assert "script-src 'nonce-" in page.headers["content-security-policy"]
            body = await stats(http, "/admin/queues")
            assert body["connections"][0]["name"] == "memory", "a memory default is shown (it is the default)"
            assert [entry["name"] for entry in body["connections"]].count("memory") == 1
    finally:
        await moved.make("queue.manager").shutdown()


async def test_the_guard_protects_every_route(dashboard_app: Callable[..., Any], queues: dict[str, str]) -> None:
    app = dashboard_app(
        QUEUE_DRIVER="redis", QUEUE_DASHBOARD_GUARD="tests.integration.web.test_dashboard_api:only_with_token"
    )
    manager = app.make("queue.manager")
    logged = failed_job("redis", queues["redis"], noted.task_name, "boom")
    await manager.failed.store.log(logged)
    target = {"connection": "redis", "queue": queues["redis"]}
    calls = [
        ("GET", "/queue", None),
        ("GET", "/queue/api/stats", None),
        ("GET", "/queue/api/health", None),
        ("POST", "/queue/api/queues/pause", target),
        ("POST", "/queue/api/queues/resume", target),
        ("POST", "/queue/api/failed/retry", {"id": logged.id}),
        ("POST", "/queue/api/failed/forget", {"id": logged.id}),
    ]
    try:
        async with client(app) as http:
            for method, path, body in calls:
                refused = await http.request(method, path, json=body, headers=ACTION)
                assert refused.status_code == 403, (path, refused.text)
                assert refused.json() == {"detail": "not for you"}
            assert await manager.connection().paused(queues["redis"]) is False
            assert [job.id for job in await manager.failed.all()] == [logged.id], "nothing was retried or forgotten"

            allowed = {**ACTION, "X-Dashboard-Token": TOKEN}
            assert (await http.get("/queue", headers=allowed)).status_code == 200
            assert (await http.get("/queue/api/stats", headers=allowed)).status_code == 200
            paused = await http.post("/queue/api/queues/pause", json=target, headers=allowed)
            assert paused.status_code == 200 and paused.json()["paused"] is True
            assert (await http.post("/queue/api/queues/resume", json=target, headers=allowed)).json()["paused"] is False
            forgotten = await http.post("/queue/api/failed/forget", json={"id": logged.id}, headers=allowed)
            assert forgotten.status_code == 200
    finally:
        await manager.shutdown()


async def test_every_route_is_under_the_prefix_behind_the_guard(make_app: Callable[..., Any]) -> None:
    """Every route of the router (whatever it holds), GET and POST, answers the guard's refusal under the prefix;
    none is served elsewhere or listed in the OpenAPI schema."""
    routes = [(method, route.path) for route in router.routes for method in sorted(getattr(route, "methods", ()))]
    assert sorted(routes) == [
        ("GET", ""),
        ("GET", "/api/health"),
        ("GET", "/api/stats"),
        ("POST", "/api/failed/forget"),
        ("POST", "/api/failed/retry"),
        ("POST", "/api/queues/pause"),
        ("POST", "/api/queues/resume"),
    ], "the routes of the module docstring, no more"
    app = memory_dashboard(
        make_app,
        QUEUE_DASHBOARD_PATH="ops/queues/",
        QUEUE_DASHBOARD_GUARD="tests.integration.web.test_dashboard_api:refuse_everyone",
    )
    try:
        async with client(app) as http:
            for method, path in routes:
                body = {"connection": "memory", "queue": "default"} if method == "POST" else None
                refused = await http.request(method, f"/ops/queues{path}", json=body, headers=ACTION)
                assert refused.status_code == 401, (method, path, refused.text)
                assert refused.json() == {"detail": "log in first"}
                assert refused.headers["www-authenticate"] == "Bearer"
                assert (await http.request(method, f"/queue{path}", json=body, headers=ACTION)).status_code == 404
        assert not any(path.startswith(("/ops", "/queue/api")) for path in app.fastapi.openapi()["paths"])
        assert await app.make("queue.manager").connection().paused() is False, "the guard ran before the action"
    finally:
        await app.make("queue.manager").shutdown()


def test_a_dashboard_at_the_site_root_is_refused_at_boot(make_app: Callable[..., Any]) -> None:
    with pytest.raises(QueueConfigurationError, match="needs a path of its own"):
        memory_dashboard(make_app, QUEUE_DASHBOARD_PATH="/")


async def test_the_page_carries_its_packaged_css_and_script_under_the_nonce(make_app: Callable[..., Any]) -> None:
    assets = files("queue_manager.web.dashboard.assets")
    css, script = (assets.joinpath(name).read_text(encoding="utf-8") for name in ("page.css", "page.js"))
    skeleton = assets.joinpath("page.html").read_text(encoding="utf-8")
    assert ".live::before" in css and "async function refresh()" in script and '<main id="dashboard"' in skeleton
    app = memory_dashboard(make_app)
    try:
        async with client(app) as http:
            page = await http.get("/queue")
    finally:
        await app.make("queue.manager").shutdown()
    assert page.status_code == 200, page.text
    nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["content-security-policy"])
    assert nonce is not None and f"style-src 'nonce-{nonce[1]}'" in page.headers["content-security-policy"]
    assert f'<style nonce="{nonce[1]}">\n{css}</style>' in page.text
    assert f'<script nonce="{nonce[1]}">\n{script}</script>' in page.text
    assert "$" not in page.text.replace(script, ""), "every placeholder of page.html is filled"
    assert page.headers["x-frame-options"] == "DENY" and page.headers["referrer-policy"] == "no-referrer"


def test_the_web_modules_import_without_fastapi() -> None:
    """A worker-only app may not have FastAPI: the provider imports queue_manager.web's modules all the same."""
    blocked = "import sys; sys.modules['fastapi'] = sys.modules['starlette'] = None; "
    imports = "import queue_manager.web.dashboard, queue_manager.web.health, queue_manager.provider"
    done = subprocess.run([sys.executable, "-c", blocked + imports], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


async def test_no_password_in_any_response_and_a_down_server_shows_as_unreachable(
    dashboard_app: Callable[..., Any], queues: dict[str, str], tmp_path: Path
) -> None:
    with private_redis(tmp_path) as server:
        server.stop()
        app = dashboard_app(
            QUEUE_DRIVER="redis",
            QUEUE_CONNECTIONS__JOBS__DRIVER="redis",
            QUEUE_CONNECTIONS__JOBS__URL=f"redis://:hunter2@127.0.0.1:{server.port}/0",
            RABBITMQ_URL="amqp://guest:s3cr3t-guest@127.0.0.1:5672/",
        )
        manager = app.make("queue.manager")
        try:
            async with client(app) as http:
                stats_response = await http.get("/queue/api/stats")
                page = await http.get("/queue")
                pause = await http.post(
                    "/queue/api/queues/pause", json={"connection": "jobs", "queue": "default"}, headers=ACTION
                )
            responses = [stats_response, page, pause]
        finally:
            await manager.shutdown()
    body = stats_response.json()
    jobs = card(body, "jobs")
    assert jobs["status"] == "unreachable" and jobs["queues"] == []
    assert f"127.0.0.1:{server.port}" in jobs["error"] and jobs["url"] == f"redis://:***@127.0.0.1:{server.port}/0"
    assert card(body, "redis")["status"] == "ok", "one server down does not hide the others"
    assert card(body, "rabbitmq")["url"] == "amqp://guest:***@127.0.0.1:5672/"
    assert "unreachable" in page.text and f"127.0.0.1:{server.port}" in page.text
    assert pause.status_code == 503 and f"127.0.0.1:{server.port}" in pause.json()["error"]
    for response in responses:
        assert "hunter2" not in response.text
        assert "s3cr3t-guest" not in response.text


async def test_what_users_jobs_wrote_is_escaped_on_the_page(
    dashboard_app: Callable[..., Any], queues: dict[str, str]
) -> None:
    app = dashboard_app(QUEUE_DRIVER="redis")
    manager = app.make("queue.manager")
    hostile = failed_job(
        "redis", queues["redis"], "<script>alert('task')</script>", '<img src=x onerror="alert(1)"> & more'
    )
    await manager.failed.store.log(hostile)
    try:
        async with client(app) as http:
            page = (await http.get("/queue")).text
            body = await stats(http)
    finally:
        await manager.shutdown()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;task&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; more" in page
    assert body["failed"]["jobs"][0]["task"] == "<script>alert('task')</script>", "the JSON carries the raw text"
