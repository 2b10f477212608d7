"""GET /queue/health: a fixed set of connections, up or down per connection for anyone (details behind the
dashboard's guard or QUEUE_HEALTH_DETAILS), checked over the connections the web process holds, once a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from fastapi_startkit.fastapi import FastAPIProvider

from drivers import QueueConfigurationError
from tests.servers import private_redis

GUARD = "tests.integration.web.test_dashboard_api:only_with_token"
ALLOWED = {"X-Dashboard-Token": "letmein"}


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app.fastapi), base_url="http://app", timeout=60)


async def get(app: Any, path: str, **headers: str) -> httpx.Response:
    async with client(app) as http:
        return await http.get(path, headers=headers)


def names(response: httpx.Response) -> list[str]:
    return [entry["name"] for entry in response.json()["connections"]]


async def server_stats(port: int) -> tuple[int, int]:
    """(connections accepted, GET commands run) by the Redis on ``port`` since it started."""
    client = redis.asyncio.Redis(host="127.0.0.1", port=port)
    try:
        stats = await client.info("stats")
        commands = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats["total_connections_received"]), int(commands.get("cmdstat_get", {}).get("calls", 0))


async def test_health_is_200_when_every_connection_it_checks_answers(make_app: Callable[..., Any]) -> None:
    app = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="redis", QUEUE_HEALTH_CONNECTIONS="redis,nats")
    try:
        response = await get(app, "/queue/health")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ok",
            "connections": [{"name": "redis", "ok": True}, {"name": "nats", "ok": True}],
        }
        assert response.headers["cache-control"] == "no-store"
    finally:
        await app.make("queue.manager").shutdown()


async def test_the_anonymous_answer_is_up_or_down_only_and_details_need_the_guard_or_a_setting(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    with private_redis(tmp_path) as server:
        server.stop()
        env = {
            "QUEUE_DRIVER": "redis",
            "QUEUE_CONNECTIONS__JOBS__DRIVER": "redis",
            "QUEUE_CONNECTIONS__JOBS__URL": f"redis://:hunter2@127.0.0.1:{server.port}/0",
        }
        guarded = make_app(providers=[FastAPIProvider], QUEUE_DASHBOARD="true", QUEUE_DASHBOARD_GUARD=GUARD, **env)
        try:
            anonymous = await get(guarded, "/queue/health")
            refused = await get(guarded, "/queue/api/health")
            detailed = await get(guarded, "/queue/api/health", **ALLOWED)
        finally:
            await guarded.make("queue.manager").shutdown()
        public = make_app(providers=[FastAPIProvider], QUEUE_HEALTH_DETAILS="true", **env)
        try:
            told = await get(public, "/queue/health")
        finally:
            await public.make("queue.manager").shutdown()

    assert anonymous.status_code == 503
    assert anonymous.json() == {
        "status": "down",
        "connections": [{"name": "redis", "ok": True}, {"name": "jobs", "ok": False}],
        "down": ["jobs"],
    }, "no driver, host, port, start hint or timing for anyone who asks"
    assert str(server.port) not in anonymous.text and "redis-server" not in anonymous.text
    assert refused.status_code == 403, "the details are behind the dashboard's guard"
    for response in (detailed, told):
        assert response.status_code == 503, response.text
        jobs = next(entry for entry in response.json()["connections"] if entry["name"] == "jobs")
        assert jobs["driver"] == "redis" and jobs["ok"] is False and jobs["latency_ms"] >= 0
        assert f"127.0.0.1:{server.port}" in jobs["error"] and "redis://:***@" in jobs["error"]
        assert "hunter2" not in response.text


async def test_health_checks_the_same_connections_before_and_after_the_dashboard_is_opened(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    """The app names a connection whose server is down: the health route says so from the first request, the
    dashboard shows the same set, and opening the dashboard changes nothing; RabbitMQ and NATS, which this
    Redis app never names, are never connected to."""
    with private_redis(tmp_path) as server:
        server.stop()
        app = make_app(
            providers=[FastAPIProvider],
            QUEUE_DRIVER="redis",
            QUEUE_DASHBOARD="true",
            QUEUE_CONNECTIONS__JOBS__DRIVER="redis",
            QUEUE_CONNECTIONS__JOBS__URL=f"redis://127.0.0.1:{server.port}/0",
        )
        manager = app.make("queue.manager")
        try:
            async with client(app) as http:
                before = await http.get("/queue/health")
                stats = (await http.get("/queue/api/stats")).json()
                after = await http.get("/queue/health")
        finally:
            await manager.shutdown()
    for response in (before, after):
        assert response.status_code == 503, response.text
        assert names(response) == ["redis", "jobs"] and response.json()["down"] == ["jobs"]
    assert [(card["name"], card["status"]) for card in stats["connections"]] == [
        ("redis", "ok"),
        ("jobs", "unreachable"),
    ]
    assert not any(manager.connected(name) for name in ("rabbitmq", "nats", "redis_stream")), manager


async def test_the_connection_settings_choose_the_sets(make_app: Callable[..., Any]) -> None:
    app = make_app(
        providers=[FastAPIProvider],
        QUEUE_DRIVER="redis",
        QUEUE_DASHBOARD="true",
        QUEUE_HEALTH_CONNECTIONS="nats, redis",
        QUEUE_DASHBOARD_CONNECTIONS="rabbitmq",
    )
    manager = app.make("queue.manager")
    try:
        async with client(app) as http:
            health = await http.get("/queue/health")
            stats = (await http.get("/queue/api/stats")).json()
    finally:
        await manager.shutdown()
    assert health.status_code == 200 and names(health) == ["nats", "redis"]
    assert [card["name"] for card in stats["connections"]] == ["rabbitmq"]


@pytest.mark.parametrize("variable", ["QUEUE_HEALTH_CONNECTIONS", "QUEUE_DASHBOARD_CONNECTIONS"])
def test_an_unknown_connection_name_fails_the_boot_with_the_valid_names(
    make_app: Callable[..., Any], variable: str
) -> None:
    with pytest.raises(QueueConfigurationError) as refused:
        make_app(providers=[FastAPIProvider], QUEUE_DRIVER="redis", QUEUE_DASHBOARD="true", **{variable: "redis,nast"})
    message = str(refused.value)
    assert "Unknown queue connection 'nast'" in message and "Did you mean 'nats'?" in message
    assert "memory, nats, rabbitmq, redis, redis_stream" in message and variable in message


async def test_requests_share_one_check_over_the_open_connection_reused_for_a_second(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    """300 requests, 30 at a time, then one a little over a second later: the private Redis sees the web process's
    own connection (no new one per request) and one GET per second, however many ask."""
    with private_redis(tmp_path) as server:
        app = make_app(
            providers=[FastAPIProvider], QUEUE_DRIVER="redis", REDIS_URL=f"redis://127.0.0.1:{server.port}/0"
        )
        manager = app.make("queue.manager")
        try:
            async with client(app) as http:
                assert (await http.get("/queue/health")).status_code == 200  # starts the connection
                connections, gets = await server_stats(server.port)
                gate = asyncio.Semaphore(30)

                async def one() -> int:
                    async with gate:
                        return (await http.get("/queue/health")).status_code

                started = time.monotonic()
                statuses = await asyncio.gather(*(one() for _ in range(300)))
                elapsed = time.monotonic() - started
                connections_after, gets_after = await server_stats(server.port)
                await asyncio.sleep(1.1)  # past the second an answer is reused: the next request checks again
                assert (await http.get("/queue/health")).status_code == 200
                _, gets_later = await server_stats(server.port)
        finally:
            await manager.shutdown()
    assert statuses == [200] * 300
    # Only this test's stats client connected meanwhile (one per server_stats call).
    assert connections_after - connections == 1, "the checks go over the connection the web process holds"
    assert gets_after - gets <= int(elapsed) + 1, (gets_after - gets, elapsed)
    assert gets_later - gets_after == 1


async def test_the_health_path_is_configurable_and_can_be_turned_off(make_app: Callable[..., Any]) -> None:
    moved = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory", QUEUE_HEALTH_PATH="/status/queue")
    assert (await get(moved, "/status/queue")).status_code == 200
    assert (await get(moved, "/queue/health")).status_code == 404
    off = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory", QUEUE_HEALTH_PATH="")
    assert (await get(off, "/queue/health")).status_code == 404
