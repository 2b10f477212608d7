"""The web app starts when a broker URL points at a port where another service answers (RabbitMQ's port, an HTTP
server): as with a broker that is down, one warning names the connection and where it points, and the health
route says it is down; the app does not fail its startup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi_startkit.fastapi import FastAPIProvider


@asynccontextmanager
async def http_server() -> AsyncIterator[int]:
    """A server that answers anything with an HTTP 400, as a web server on the port would: its port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def service(name: str) -> AsyncIterator[int]:
    if name == "rabbitmq":
        yield 5672  # the shared RabbitMQ: it answers a Redis client with AMQP's protocol header
    else:
        async with http_server() as port:
            yield port


@pytest.mark.parametrize("other", ["rabbitmq", "http"])
async def test_a_redis_url_at_another_service_starts_the_web_app_like_a_down_broker(
    make_app: Callable[..., Any], caplog: pytest.LogCaptureFixture, other: str
) -> None:
    async with service(other) as port:
        app = make_app(
            providers=[FastAPIProvider],
            QUEUE_DRIVER="redis",
            QUEUE_HEALTH_DETAILS="true",
            REDIS_URL=f"redis://:hunter2@127.0.0.1:{port}/0",
        )
        with caplog.at_level(logging.WARNING, logger="queue_manager"):
            async with app.fastapi.router.lifespan_context(app.fastapi):
                transport = httpx.ASGITransport(app=app.fastapi)
                async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                    health = await http.get("/queue/health")
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    started = [message for message in warnings if "The app starts anyway" in message]
    assert len(started) == 1, warnings
    assert f"queue connection 'redis' at 127.0.0.1:{port}" in started[0], started[0]
    assert "redis://:***@" in started[0] and "hunter2" not in caplog.text
    assert health.status_code == 503, health.text
    [redis] = health.json()["connections"]
    assert redis["ok"] is False and f"127.0.0.1:{port}" in redis["error"] and "hunter2" not in health.text
