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

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drivers import QueueConfigurationError

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

__all__ = ["add_dashboard"]


def add_dashboard(fastapi: Any, manager: QueueManager, path: str, guard: Callable[..., Any] | None) -> None:
    """Serve the dashboard at ``path`` on ``fastapi``; every route depends on ``guard`` when it is given."""
    from fastapi import Depends  # only now: a worker-only app may not have FastAPI

    from queue_manager.web.dashboard.routes import Dashboard, router

    prefix = "/" + path.strip("/")
    if prefix == "/":
        raise QueueConfigurationError(
            f"QUEUE_DASHBOARD_PATH={path!r}: the dashboard needs a path of its own (for example /queue)."
        )
    fastapi.state.queue_dashboard = Dashboard(manager, api=f"{prefix}/api")
    fastapi.include_router(router, prefix=prefix, dependencies=[Depends(guard)] if guard is not None else [])
