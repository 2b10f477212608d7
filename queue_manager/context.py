"""The manager that ``task``/``dispatch`` use when no connection object is at hand.

QueueProvider sets it at register(); tests or scripts without an app can set
their own with ``use_manager``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivers import QueueConfigurationError

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

_current: QueueManager | None = None


def use_manager(manager: QueueManager | None) -> None:
    global _current
    _current = manager


def has_manager() -> bool:
    return _current is not None


def current_manager() -> QueueManager:
    if _current is None:
        raise QueueConfigurationError(
            "No queue manager is set up: add QueueProvider to your fastapi-startkit app's providers "
            "(and import bootstrap.application before dispatching), or call queue_manager.use_manager(manager)."
        )
    return _current
