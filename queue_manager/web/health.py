"""The health route: ``GET {path}`` (``/queue/health``), on by default (``QUEUE_HEALTH_PATH``; empty: off).

It answers 200 when every connection the web process uses (those resolved: the default and any it dispatched
on) answers a ping, 503 naming those that do not, with each one's latency. The body carries names, drivers and
masked errors only, never a URL's password.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.manager import QueueManager

PING_TIMEOUT = 5.0


async def check(connection: Connection) -> dict[str, Any]:
    started = time.perf_counter()
    entry: dict[str, Any] = {"name": connection.name, "driver": connection.driver}
    try:
        await asyncio.wait_for(connection.ping(), PING_TIMEOUT)
    except Exception as error:  # unreachable, timed out, or a custom driver's own failure
        message = str(error) or type(error).__name__
        entry.update(ok=False, error=message if isinstance(error, ConnectionError) else type(error).__name__)
    else:
        entry.update(ok=True)
    entry["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return entry


async def health(manager: QueueManager) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of the health route."""
    connections = list(manager.resolved.values()) or [manager.connection()]
    results = await asyncio.gather(*(check(connection) for connection in connections))
    down = [entry["name"] for entry in results if not entry["ok"]]
    body: dict[str, Any] = {"status": "ok" if not down else "down", "connections": results}
    if down:
        body["down"] = down
    return (200 if not down else 503), body


def add_health_route(fastapi: Any, manager: QueueManager, path: str) -> None:
    """Serve the health route at ``path`` on ``fastapi``."""
    from fastapi.responses import JSONResponse  # only now: a worker-only app may not have FastAPI

    async def queue_health() -> JSONResponse:
        status, body = await health(manager)
        return JSONResponse(body, status_code=status)

    # response_model=None: inferring one from the annotation makes FastAPI import pydantic.v1 (about 60 ms of
    # every app's boot) only to learn that a JSONResponse is not a v1 model. With it and no parameters, FastAPI
    # reads none of queue_health's annotations (strings, under this module's ``from __future__ import annotations``).
    fastapi.add_api_route(path, queue_health, methods=["GET"], include_in_schema=False, response_model=None)
