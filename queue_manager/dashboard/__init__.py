"""The queue dashboard (Laravel Horizon's idea, small): ``GET {path}`` (``/queue``), opt-in (``QUEUE_DASHBOARD=true``).

It shows every connection the web process knows with each queue's waiting, delayed and running jobs, whether
it is paused, and its throughput over the last 30 minutes; and the newest failed jobs. Buttons pause and
resume a queue, retry or forget a failed job. Routes (``{path}`` is ``settings.dashboard_path``):

- ``GET  {path}``                    the page (HTML; it polls the stats every 2 s)
- ``GET  {path}/api/stats``          the stats as JSON (see ``stats.collect``)
- ``POST {path}/api/queues/pause``   ``{"connection": "redis", "queue": "emails"}`` -> ``{..., "paused": true}``
- ``POST {path}/api/queues/resume``  the same body -> ``{"connection", "queue", "paused": false}``
- ``POST {path}/api/failed/retry``   ``{"id": "<failed job id>"}`` -> ``{"retried": [{"id", "connection", ...}]}``
- ``POST {path}/api/failed/forget``  ``{"id": "<failed job id>"}`` -> ``{"forgotten": "<id>"}``

A POST must carry a JSON body (``Content-Type: application/json``) and an ``X-Requested-With`` header: a form on
another site can send neither, and a script on another origin cannot without the app's CORS allowing it.
Errors are ``{"error": "..."}`` with 400 (bad request), 403 (no ``X-Requested-With``), 404 (unknown connection,
queue or failed job) or 503 (the broker did not answer). ``guard``, a FastAPI dependency, protects every route.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations (``request: Request``)
# at run time, and Request is imported only when the dashboard is added (FastAPI is optional for a worker).
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drivers import BrokerUnreachableError, QueueConfigurationError
from queue_manager.dashboard.page import render_page
from queue_manager.dashboard.stats import collect, dashboard_connections, describe, ping_unresolved, scrub
from queue_manager.dashboard.stats import secrets as connection_secrets
from queue_manager.dispatch import check_queue_name
from queue_manager.errors import RetryError
from queue_manager.ops_commands import known_queues

if TYPE_CHECKING:
    from fastapi import Request

    from queue_manager.manager import QueueManager

__all__ = ["add_dashboard"]

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class DashboardError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _csp(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


async def _json_body(request: "Request", *fields: str) -> dict[str, str]:
    """The POST body's string fields; refuses what a cross-site form could have sent."""
    if not request.headers.get("x-requested-with"):
        raise DashboardError(
            403,
            "Dashboard actions need an X-Requested-With header (the dashboard's buttons send it), so that a form "
            "on another site cannot trigger them.",
        )
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise DashboardError(400, "Dashboard actions take a JSON body (Content-Type: application/json).")
    try:
        body = await request.json()
    except ValueError:
        raise DashboardError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise DashboardError(400, f"The request body must be a JSON object with {', '.join(fields)}.")
    values: dict[str, str] = {}
    for field in fields:
        value = body.get(field)
        if not isinstance(value, str) or not value.strip():
            raise DashboardError(400, f"The request body needs {field!r}: a non-empty string.")
        values[field] = value.strip()
    return values


def add_dashboard(fastapi: Any, manager: "QueueManager", path: str, guard: Callable[..., Any] | None) -> None:
    """Serve the dashboard at ``path`` on ``fastapi``; every route depends on ``guard`` when it is given."""
    from fastapi import Depends, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from fastapi.routing import APIRoute
    from starlette.exceptions import HTTPException

    class DashboardRoute(APIRoute):
        """Answers the guard's HTTPException (403, 401 with WWW-Authenticate, ...) as FastAPI does, whatever
        handler the app has for it: fastapi-startkit's turns every HTTPException into a 500."""

        def get_route_handler(self) -> Callable[[Request], Any]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    response: Response = await handler(request)
                except HTTPException as refused:
                    return await http_exception_handler(request, refused)
                return response

            return guarded

    page_path = "/" + path.strip("/")
    base = page_path.rstrip("/")
    api = f"{base}/api"
    dependencies = [Depends(guard)] if guard is not None else []

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": scrub(message, connection_secrets(manager))}, status, headers=NO_STORE)

    def target(values: dict[str, str]) -> tuple[str, str]:
        """The (connection, queue) of a pause/resume: one the dashboard shows, else 404."""
        name, queue = values["connection"], values["queue"]
        shown = dashboard_connections(manager)
        if name not in shown:
            raise DashboardError(
                404, f"Unknown queue connection {name!r} (the dashboard shows {', '.join(map(repr, shown))})."
            )
        try:
            check_queue_name(queue)
        except QueueConfigurationError as invalid:
            raise DashboardError(400, str(invalid)) from None
        known = known_queues(manager, name)
        if queue not in known:
            raise DashboardError(
                404,
                f"Queue {queue!r} is not one the dashboard knows on connection {name!r} (known: "
                f"{', '.join(map(repr, known))}); use python artisan queue:pause {name}:{queue} for others.",
            )
        return name, queue

    async def run(action: Callable[[], Any]) -> JSONResponse:
        try:
            return JSONResponse(await action(), headers=NO_STORE)
        except DashboardError as refused:
            return error(refused.status, str(refused))
        except BrokerUnreachableError as down:
            return error(503, str(down))
        except RetryError as failed:
            return error(503, str(failed))
        except QueueConfigurationError as invalid:
            return error(400, str(invalid))
        except Exception as other:  # a broker library's own failure: its class only, never its text
            return error(503, f"The broker failed: {describe(other)}.")

    async def dashboard_page() -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = render_page(await collect(manager), api, nonce)
        headers = {
            **NO_STORE,
            "Content-Security-Policy": _csp(nonce),
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
        }
        return HTMLResponse(html, headers=headers)

    async def dashboard_stats() -> JSONResponse:
        return JSONResponse(await collect(manager), headers=NO_STORE)

    def pausing(pause: bool) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> JSONResponse:
            async def act() -> dict[str, Any]:
                name, queue = target(await _json_body(request, "connection", "queue"))
                await ping_unresolved(manager, name)  # a server that is down: 503, the connection left unresolved
                connection = manager.connection(name)
                await (connection.pause(queue) if pause else connection.resume(queue))
                return {"connection": name, "queue": queue, "paused": await connection.paused(queue)}

            return await run(act)

        return endpoint

    async def retry_failed(request: Request) -> JSONResponse:
        async def act() -> dict[str, Any]:
            job_id = (await _json_body(request, "id"))["id"]
            if await manager.failed.find(job_id) is None:
                raise DashboardError(404, f"No failed job with id {job_id!r}.")
            retried = await manager.failed.retry([job_id])
            return {
                "retried": [
                    {"id": r.id, "connection": r.connection, "queue": r.queue, "task_id": r.handle.task_id}
                    for r in retried
                ]
            }

        return await run(act)

    async def forget_failed(request: Request) -> JSONResponse:
        async def act() -> dict[str, Any]:
            job_id = (await _json_body(request, "id"))["id"]
            job = await manager.failed.find(job_id)
            if job is None or not await manager.failed.forget(job.id):
                raise DashboardError(404, f"No failed job with id {job_id!r}.")
            return {"forgotten": job.id}

        return await run(act)

    routes: list[tuple[str, Callable[..., Any], str]] = [
        (page_path, dashboard_page, "GET"),
        (f"{api}/stats", dashboard_stats, "GET"),
        (f"{api}/queues/pause", pausing(True), "POST"),
        (f"{api}/queues/resume", pausing(False), "POST"),
        (f"{api}/failed/retry", retry_failed, "POST"),
        (f"{api}/failed/forget", forget_failed, "POST"),
    ]
    for route, endpoint, method in routes:
        fastapi.router.add_api_route(
            route,
            endpoint,
            methods=[method],
            dependencies=dependencies,
            include_in_schema=False,
            response_model=None,  # inferring one imports pydantic.v1 (see web.py)
            route_class_override=DashboardRoute,
        )
