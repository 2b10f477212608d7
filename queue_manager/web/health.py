"""The health route: ``GET {path}`` (``/queue/health``), on by default (``QUEUE_HEALTH_PATH``; empty: off).

It answers 200 when every connection of a fixed set (``web.connections.health_connections``) answers, 503 naming
those that do not. Anyone may ask, so by default the answer says up or down per connection and nothing else:
which driver, how long it took and why it failed (host and port, start hints) are for those who pass the
dashboard's guard (``{dashboard_path}/api/health``), or for everyone with ``QUEUE_HEALTH_DETAILS=true``. The
checks are shared and reused for a second (``web.probe``), so a flood of requests costs the brokers nothing more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queue_manager.web.probe import Probe

ANONYMOUS_FIELDS = ("name", "ok")


async def health(probe: Probe, names: list[str], details: bool) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): ``{"status": "ok"|"down", "connections": [{"name", "ok", ...}], "down": [...]}``."""
    results = await probe.check(names)
    if not details:
        results = [{field: entry[field] for field in ANONYMOUS_FIELDS} for entry in results]
    down = [entry["name"] for entry in results if not entry["ok"]]
    body: dict[str, Any] = {"status": "ok" if not down else "down", "connections": results}
    if down:
        body["down"] = down
    return (200 if not down else 503), body


def add_health_route(fastapi: Any, probe: Probe, path: str, names: list[str], details: bool) -> None:
    """Serve the health route at ``path`` on ``fastapi``: ``names`` checked by ``probe``."""
    from fastapi.responses import JSONResponse  # only now: a worker-only app may not have FastAPI

    async def queue_health() -> JSONResponse:
        status, body = await health(probe, names, details)
        return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})

    # response_model=None: inferring one from the annotation makes FastAPI import pydantic.v1 (about 60 ms of
    # every app's boot) only to learn that a JSONResponse is not a v1 model. With it and no parameters, FastAPI
    # reads none of queue_health's annotations (strings, under this module's ``from __future__ import annotations``).
    fastapi.add_api_route(path, queue_health, methods=["GET"], include_in_schema=False, response_model=None)
