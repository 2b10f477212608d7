"""The manager that ``task``/``dispatch`` use when no connection object is at hand.

QueueProvider sets it at register(); tests or scripts without an app can set their own with ``use_manager``.
What sending a job needs of the manager is written down here as two small protocols, so the modules that send
jobs sit below the manager instead of importing it back (``queue_manager.current_manager`` is the typed one).
"""

from __future__ import annotations

from typing import Any, Protocol

from taskiq import AsyncBroker, AsyncTaskiqTask

from drivers import QueueConfigurationError


class Destination(Protocol):
    """What a dispatch needs of a connection (``queue_manager.Connection`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def broker(self) -> AsyncBroker: ...

    async def startup(self) -> None: ...

    async def send(self, pending: Any) -> AsyncTaskiqTask[Any]: ...


class Connections(Protocol):
    """What a dispatch needs of the manager (``queue_manager.QueueManager`` is one)."""

    def connection(self, name: str | None = None) -> Destination: ...


_current: Connections | None = None


def use_manager(manager: Connections | None) -> None:
    global _current
    _current = manager


def has_manager() -> bool:
    return _current is not None


def current() -> Connections:
    if _current is None:
        raise QueueConfigurationError(
            "No queue manager is set up: add QueueProvider to your fastapi-startkit app's providers "
            "(and import bootstrap.application before dispatching), or call queue_manager.use_manager(manager)."
        )
    return _current
