"""The queue's web routes: the health check (``health``, on by default) and the dashboard (``dashboard``,
opt-in), added to the app by ``add_routes`` (the provider calls it at boot), which imports FastAPI only then: a
worker-only app may not have it. Both ask one ``probe.Probe`` about fixed sets of connections (``connections``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

__all__ = ["add_routes"]


def add_routes(app: Any, manager: QueueManager) -> None:
    """Serve the health route (unless ``QUEUE_HEALTH_PATH`` is empty) and the dashboard (``QUEUE_DASHBOARD=true``)
    on the fastapi-startkit ``app``. Their connection settings are checked now: a typo fails the boot."""
    from queue_manager.web.connections import dashboard_connections, health_connections
    from queue_manager.web.probe import Probe

    settings = manager.settings
    checked, shown = health_connections(manager), dashboard_connections(manager)
    probe = Probe(manager)
    if settings.health_path:
        from queue_manager.web.health import add_health_route

        add_health_route(app.fastapi, probe, settings.health_path, checked, settings.health_details)
    if settings.dashboard:
        from queue_manager.web.dashboard import add_dashboard  # only when asked for: it is not small
        from queue_manager.web.dashboard.access import app_environment

        add_dashboard(app.fastapi, manager, probe, checked, shown, app_environment(app))
