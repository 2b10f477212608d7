"""GET /queue/health: 200 when every connection in use answers, 503 naming the one that does not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi_startkit.fastapi import FastAPIProvider

from tests.servers import private_redis


async def get(app: Any, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.fastapi), base_url="http://app") as client:
        return await client.get(path)


async def test_health_is_200_with_latency_when_every_connection_answers(make_app: Callable[..., Any]) -> None:
    app = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="redis")
    app.make("queue.manager").connection("nats")
    response = await get(app, "/queue/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert [(c["name"], c["driver"], c["ok"]) for c in body["connections"]] == [
        ("redis", "redis", True),
        ("nats", "nats", True),
    ]
    assert all(c["latency_ms"] >= 0 for c in body["connections"])


async def test_health_is_503_naming_the_connection_that_does_not_answer_without_its_password(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    with private_redis(tmp_path) as server:
        server.stop()
        app = make_app(
            providers=[FastAPIProvider],
            QUEUE_DRIVER="redis",
            QUEUE_CONNECTIONS__JOBS__DRIVER="redis",
            QUEUE_CONNECTIONS__JOBS__URL=f"redis://:hunter2@127.0.0.1:{server.port}/0",
        )
        app.make("queue.manager").connection("jobs")
        response = await get(app, "/queue/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down" and body["down"] == ["jobs"]
    jobs = next(c for c in body["connections"] if c["name"] == "jobs")
    assert not jobs["ok"] and f"127.0.0.1:{server.port}" in jobs["error"]
    assert "hunter2" not in response.text


async def test_the_health_path_is_configurable_and_can_be_turned_off(make_app: Callable[..., Any]) -> None:
    moved = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory", QUEUE_HEALTH_PATH="/status/queue")
    assert (await get(moved, "/status/queue")).status_code == 200
    assert (await get(moved, "/queue/health")).status_code == 404
    off = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory", QUEUE_HEALTH_PATH="")
    assert (await get(off, "/queue/health")).status_code == 404
