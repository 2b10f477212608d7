"""The dashboard's routes: one ``APIRouter``, included by ``add_dashboard`` under the dashboard's path.

Only ``add_dashboard`` imports this module, so FastAPI is needed only where the dashboard is on. No
``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time.
"""

import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from drivers import DRIVERS, BrokerUnreachableError, QueueConfigurationError
from drivers.base.names import check_queue_name
from queue_manager.errors import RetryError
from queue_manager.failed import FailedJob
from queue_manager.manager import QueueManager
from queue_manager.web.dashboard.page import render_page
from queue_manager.web.dashboard.stats import collect
from queue_manager.web.health import health
from queue_manager.web.masking import passwords, scrub
from queue_manager.web.probe import Probe, describe

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@dataclass(frozen=True)
class Dashboard:
    """What the routes serve, kept on the app (``app.state.queue_dashboard``) by ``add_dashboard``."""

    manager: QueueManager
    probe: Probe  # shared with the health route
    checked: list[str]  # the connections the health route checks
    shown: list[str]  # the connections the dashboard shows, and the only ones it pauses
    api: str  # the API's path, for the page's script: ``{path}/api``

    async def stats(self) -> dict[str, Any]:
        return await collect(self.manager, self.probe, self.shown)


def current(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.queue_dashboard
    return dashboard


Current = Annotated[Dashboard, Depends(current)]


class DashboardRoute(APIRoute):
    """Answers the guard's HTTPException (403, 401 with WWW-Authenticate, ...) as FastAPI does, whatever handler
    the app has for it: fastapi-startkit's turns every HTTPException into a 500."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as refused:
                return await http_exception_handler(request, refused)

        return guarded


# response_model=None on every route, as on the health route: inferring one imports pydantic.v1 (boot time).
router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def csp(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


@router.get("", response_model=None)
async def dashboard_page(dashboard: Current) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    headers = {
        **NO_STORE,
        "Content-Security-Policy": csp(nonce),
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    return HTMLResponse(render_page(await dashboard.stats(), dashboard.api, nonce), headers=headers)


@router.get("/api/stats", response_model=None)
async def dashboard_stats(dashboard: Current) -> JSONResponse:
    return JSONResponse(await dashboard.stats(), headers=NO_STORE)


@router.get("/api/health", response_model=None)
async def dashboard_health(dashboard: Current) -> JSONResponse:
    """The health route's answer with each connection's driver, latency and error: for those the guard lets in."""
    status, body = await health(dashboard.probe, dashboard.checked, details=True)
    return JSONResponse(body, status, headers=NO_STORE)


class DashboardError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def refusal(error: Exception) -> tuple[int, str]:
    """The status and message of an action that failed; a broker library's own error shows its class only."""
    if isinstance(error, DashboardError):
        return error.status, str(error)
    if isinstance(error, BrokerUnreachableError | RetryError):
        return 503, str(error)
    if isinstance(error, QueueConfigurationError):
        return 400, str(error)
    return 503, f"The broker failed: {describe(error)}."


async def json_body(request: Request, *fields: str) -> dict[str, str]:
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


Action = Callable[[Dashboard, dict[str, str]], Awaitable[dict[str, Any]]]


def action(path: str, *fields: str) -> Callable[[Action], Action]:
    """Serve ``act(dashboard, body)`` as ``POST {path}``, ``body`` the request's checked ``fields``: what it returns
    is the JSON answer, what it raises an ``{"error": ...}`` without the connections' passwords."""

    def register(act: Action) -> Action:
        async def endpoint(request: Request, dashboard: Current) -> JSONResponse:
            try:
                return JSONResponse(await act(dashboard, await json_body(request, *fields)), headers=NO_STORE)
            except Exception as error:
                status, message = refusal(error)
                body = {"error": scrub(message, passwords(dashboard.manager))}
                return JSONResponse(body, status, headers=NO_STORE)

        router.add_api_route(path, endpoint, methods=["POST"], name=act.__name__, response_model=None)
        return act

    return register


def target(dashboard: Dashboard, body: dict[str, str]) -> tuple[str, str]:
    """The (connection, queue) of a pause/resume: one the dashboard shows, else 404."""
    manager, name, queue = dashboard.manager, body["connection"], body["queue"]
    if name not in dashboard.shown:
        shown = ", ".join(map(repr, dashboard.shown))
        raise DashboardError(404, f"Unknown queue connection {name!r} (the dashboard shows {shown}).")
    driver = manager.settings.connections[name].driver
    known = DRIVERS.get(driver)
    check_queue_name(queue, known.queue_rule if known is not None else None, driver)
    queues = manager.queues(name)
    if queue not in queues:
        raise DashboardError(
            404,
            f"Queue {queue!r} is not one the dashboard knows on connection {name!r} (known: "
            f"{', '.join(map(repr, queues))}); use python artisan queue:pause {name}:{queue} for others.",
        )
    return name, queue


async def set_paused(dashboard: Dashboard, body: dict[str, str], pause: bool) -> dict[str, Any]:
    name, queue = target(dashboard, body)
    [answer] = await dashboard.probe.check([name])
    if not answer["ok"]:  # a server that is down: 503 at once, with why
        raise DashboardError(503, answer["error"])
    connection = dashboard.manager.connection(name)
    await (connection.pause(queue) if pause else connection.resume(queue))
    return {"connection": name, "queue": queue, "paused": await connection.paused(queue)}


@action("/api/queues/pause", "connection", "queue")
async def pause_queue(dashboard: Dashboard, body: dict[str, str]) -> dict[str, Any]:
    return await set_paused(dashboard, body, pause=True)


@action("/api/queues/resume", "connection", "queue")
async def resume_queue(dashboard: Dashboard, body: dict[str, str]) -> dict[str, Any]:
    return await set_paused(dashboard, body, pause=False)


@action("/api/failed/retry", "id")
async def retry_failed(dashboard: Dashboard, body: dict[str, str]) -> dict[str, Any]:
    manager = dashboard.manager
    await found(manager, body["id"])
    try:
        retried = await manager.failed.retry([body["id"]])
    except QueueConfigurationError:
        await found(manager, body["id"])  # forgotten (or retried) meanwhile, by another click or a command: 404
        raise
    return {
        "retried": [
            {"id": r.id, "connection": r.connection, "queue": r.queue, "task_id": r.handle.task_id} for r in retried
        ]
    }


@action("/api/failed/forget", "id")
async def forget_failed(dashboard: Dashboard, body: dict[str, str]) -> dict[str, Any]:
    job = await found(dashboard.manager, body["id"])
    if not await dashboard.manager.failed.forget(job.id):
        raise no_such_job(body["id"])
    return {"forgotten": job.id}


async def found(manager: QueueManager, id: str) -> FailedJob:
    """The failed job ``id`` names, else 404."""
    job = await manager.failed.find(id)
    if job is None:
        raise no_such_job(id)
    return job


def no_such_job(id: str) -> DashboardError:
    return DashboardError(404, f"No failed job with id {id!r}.")
