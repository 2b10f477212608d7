"""The queue dashboard (Laravel Horizon's idea, small): ``GET {path}`` (``/queue``), opt-in (``QUEUE_DASHBOARD=true``).

It shows a fixed set of connections (``QUEUE_DASHBOARD_CONNECTIONS``; default: those the health route checks) with
each queue's waiting, delayed and running jobs, whether it is paused, and its throughput over the last 30 minutes;
and the newest failed jobs. Buttons pause and resume a queue, retry or forget a failed job. Routes (``{path}`` is
``settings.dashboard_path``):

- ``GET  {path}``                    the page (HTML; it polls the stats every 2 s)
- ``GET  {path}/api/stats``          the stats as JSON (see ``stats.collect``)
- ``GET  {path}/api/health``         the health route's answer with the details it shows nobody else
- ``POST {path}/api/queues/pause``   ``{"connection": "redis", "queue": "emails"}`` -> ``{..., "paused": true}``
- ``POST {path}/api/queues/resume``  the same body -> ``{"connection", "queue", "paused": false}``
- ``POST {path}/api/failed/retry``   ``{"id": "<failed job id>"}`` -> ``{"retried": [{"id", "connection", ...}]}``
- ``POST {path}/api/failed/forget``  ``{"id": "<failed job id>"}`` -> ``{"forgotten": "<id>"}``

A POST must carry a JSON body (``Content-Type: application/json``) and an ``X-Requested-With`` header: a form on
another site can send neither, and a script on another origin cannot without the app's CORS allowing it.
Errors are ``{"error": "..."}`` with 400 (bad request), 403 (no ``X-Requested-With``), 404 (unknown connection,
queue or failed job) or 503 (the broker did not answer). ``QUEUE_DASHBOARD_GUARD``, a FastAPI dependency, protects
every route; without one the dashboard is served only in a local environment (``access``) or when declared public.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drivers import QueueConfigurationError

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager
    from queue_manager.web.probe import Probe

__all__ = ["add_dashboard"]


def add_dashboard(
    fastapi: Any, manager: QueueManager, probe: Probe, checked: list[str], shown: list[str], environment: str
) -> None:
    """Serve the dashboard on ``fastapi``, showing ``shown`` (its health route reports ``checked``); every route
    depends on the guard when there is one, and without one it is refused outside a local ``environment``."""
    from fastapi import Depends  # only now: a worker-only app may not have FastAPI

    from queue_manager.web.dashboard.access import check_access
    from queue_manager.web.dashboard.routes import Dashboard, router

    settings = manager.settings
    prefix = "/" + settings.dashboard_path.strip("/")
    if prefix == "/":
        raise QueueConfigurationError(
            f"{settings.variable('dashboard_path')}={settings.dashboard_path!r}: the dashboard needs a path of its "
            "own (for example /queue)."
        )
    guard = settings.dashboard_guard
    check_access(environment, guard, settings.dashboard_public, settings.variable)
    fastapi.state.queue_dashboard = Dashboard(manager, probe, checked, shown, api=f"{prefix}/api")
    fastapi.include_router(router, prefix=prefix, dependencies=[Depends(guard)] if guard is not None else [])
    _add_insight(fastapi, prefix, settings.insight, [Depends(guard)] if guard is not None else [])
    from queue_manager.web.dashboard.batches import batches_router  # the Batches panel's routes

    fastapi.include_router(batches_router, prefix=prefix, dependencies=[Depends(guard)] if guard is not None else [])


def _add_insight(fastapi: Any, prefix: str, insight: Any, guarded: list[Any]) -> None:
    """The insight routes (``web.dashboard.insight``), and the Prometheus text where it is turned on."""
    from queue_manager.web.dashboard.insight import insight_router, prometheus_router

    fastapi.include_router(insight_router, prefix=prefix, dependencies=guarded)
    if insight.prometheus:
        fastapi.include_router(prometheus_router(insight.prometheus_path), dependencies=guarded)
