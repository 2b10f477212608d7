"""Which connections the health route checks and the dashboard shows: a fixed set, chosen at boot.

Not "whatever this process happened to resolve": the answer would change with the history of the process (a
dashboard visit used to add connections to the health check). By default both take the connections the app uses
(``manager.used_connections()``: the default, those its settings name, those a failover sends to), so an app on
Redis alone never connects to RabbitMQ or NATS because they are built in; ``QUEUE_HEALTH_CONNECTIONS`` and
``QUEUE_DASHBOARD_CONNECTIONS`` choose others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivers import DRIVERS
from drivers.base.errors import unknown_name_error

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager


def health_connections(manager: QueueManager) -> list[str]:
    """The connections ``GET /queue/health`` checks, the default first."""
    return _chosen(manager, "health_connections") or _used(manager)


def dashboard_connections(manager: QueueManager) -> list[str]:
    """The connections the dashboard shows (and may pause), the default first; default: the health route's."""
    return _chosen(manager, "dashboard_connections") or health_connections(manager)


def _chosen(manager: QueueManager, field: str) -> list[str] | None:
    """The setting's names, each checked now: a typo fails the boot with the valid names and the closest one."""
    names: list[str] | None = getattr(manager.settings, field)
    if names is None:
        return None
    variable = manager.settings.variable(field)
    for name in names:
        if name not in manager.settings.connections:
            raise unknown_name_error(
                "connection", name, manager.settings.connections, f"Fix {variable} (a comma list of connections)."
            )
    return names


def _used(manager: QueueManager) -> list[str]:
    """The connections the app uses, the default first, then in the settings' order; without a memory connection
    other than the default: its jobs live in the process that dispatched them, nothing to check or show here."""
    default, used = manager.get_default_driver(), set(manager.used_connections())
    others = [name for name in manager.settings.connections if name in used and not _in_process(manager, name)]
    return [default, *(name for name in others if name != default)]


def _in_process(manager: QueueManager, name: str) -> bool:
    known = DRIVERS.get(manager.settings.connections[name].driver)
    return known is not None and known.in_process
