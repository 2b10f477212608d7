"""The dashboard's insight routes (behind the same guard as the page): metrics, recent and failed jobs with search,
one job's detail, the live workers, and the optional Prometheus text (``QUEUE_INSIGHT__PROMETHEUS=true``).

- ``GET {path}/api/metrics?connection=redis&queue=&task=&minutes=60``   ``conn.metrics()`` of a shown connection
- ``GET {path}/api/jobs?connection=redis&failed=1&task=&tag=&limit=50``  recent (or failed) jobs, newest first
- ``GET {path}/api/jobs/{id}?connection=redis``                          one recorded job
- ``GET {path}/api/workers?connection=redis``                            the live workers
- ``GET {prometheus_path}`` (``/queue/metrics``)                          every shown connection, Prometheus text

No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from drivers import BrokerUnreachableError, QueueConfigurationError
from queue_manager.connection import Connection
from queue_manager.insight.prometheus import exposition
from queue_manager.web.dashboard.routes import NO_STORE, Current, Dashboard, DashboardRoute
from queue_manager.web.probe import describe

insight_router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def shown(dashboard: Dashboard, name: str | None) -> Connection:
    """A connection the dashboard shows (default: the first), or a 404."""
    name = name or (dashboard.shown[0] if dashboard.shown else None)
    if name is None or name not in dashboard.shown:
        raise LookupError(f"The dashboard shows no connection {name!r}; it shows {', '.join(dashboard.shown)}.")
    return dashboard.manager.connection(name)


async def answered(work: Any) -> JSONResponse:
    try:
        return JSONResponse(await work, headers=NO_STORE)
    except LookupError as error:
        return JSONResponse({"error": str(error)}, 404, headers=NO_STORE)
    except QueueConfigurationError as error:
        return JSONResponse({"error": str(error)}, 400, headers=NO_STORE)
    except BrokerUnreachableError as error:
        return JSONResponse({"error": str(error)}, 503, headers=NO_STORE)
    except Exception as error:  # a broker library's own error: its class only
        return JSONResponse({"error": f"The broker failed: {describe(error)}."}, 503, headers=NO_STORE)


def number(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(value))) if value not in (None, "") else default
    except ValueError:
        return default


@insight_router.get("/api/metrics", response_model=None)
async def insight_metrics(request: Request, dashboard: Current) -> JSONResponse:
    query = request.query_params

    async def work() -> Any:
        connection = shown(dashboard, query.get("connection"))
        minutes = number(query.get("minutes"), 60, 1, 60)
        return await connection.metrics(query.get("queue") or None, query.get("task") or None, minutes)

    return await answered(work())


@insight_router.get("/api/jobs", response_model=None)
async def insight_jobs(request: Request, dashboard: Current) -> JSONResponse:
    query = request.query_params

    async def work() -> Any:
        connection = shown(dashboard, query.get("connection"))
        failed = query.get("failed") in ("1", "true")
        limit = number(query.get("limit"), 50, 1, 1000)
        jobs = await connection.recent_jobs(failed, query.get("task") or None, query.get("tag") or None, limit)
        return {"connection": connection.name, "failed": failed, "jobs": jobs}

    return await answered(work())


@insight_router.get("/api/jobs/{job_id}", response_model=None)
async def insight_job(job_id: str, request: Request, dashboard: Current) -> JSONResponse:
    from queue_manager.insight import job_detail

    async def work() -> Any:
        found = await job_detail(shown(dashboard, request.query_params.get("connection")), job_id)
        if found is None:
            raise LookupError(f"No recent or failed job {job_id!r} is recorded (they are kept for a while only).")
        return found

    return await answered(work())


@insight_router.get("/api/workers", response_model=None)
async def insight_workers(request: Request, dashboard: Current) -> JSONResponse:
    async def work() -> Any:
        connection = shown(dashboard, request.query_params.get("connection"))
        return {"connection": connection.name, "workers": await connection.workers()}

    return await answered(work())


async def prometheus_metrics(dashboard: Current) -> PlainTextResponse:
    """Every shown connection's metrics of the last minute and hour, as Prometheus text."""
    found = []
    for name in dashboard.shown:
        try:
            connection = dashboard.manager.connection(name)
            found.append((await connection.metrics(minutes=60), await connection.workers()))
        except (QueueConfigurationError, BrokerUnreachableError):
            continue  # this connection keeps no insight, or is away: the others are still scraped
    return PlainTextResponse(exposition(found), headers=NO_STORE, media_type="text/plain; version=0.0.4")


def prometheus_router(path: str) -> APIRouter:
    """The Prometheus route at ``path`` (``QUEUE_INSIGHT__PROMETHEUS_PATH``), behind the guard it is included with."""
    router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
    router.add_api_route("/" + path.strip("/"), prometheus_metrics, methods=["GET"], response_model=None)
    return router
