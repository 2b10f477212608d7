"""Which control state holds a connection's insight."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from drivers import QueueConfigurationError
from drivers.base.control import ControlState, control_of


class Insightful(Protocol):
    """What reading insight needs of a connection (``queue_manager.Connection`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def driver(self) -> str: ...

    @property
    def broker(self) -> Any: ...

    job_state: Callable[[], ControlState] | None

    async def startup(self) -> None: ...


class InsightUnavailable(QueueConfigurationError):
    """This connection keeps no insight, and its settings name no connection that can."""


def insight_state(connection: Insightful) -> ControlState:
    """The connection's own control state if it keeps insight, else its job state's (``state`` setting: a RabbitMQ
    connection keeps it on Redis or NATS); ``InsightUnavailable`` naming the fix otherwise."""
    own = control_of(connection.broker)
    if own is not None and own.keeps_insight:
        return own
    if connection.job_state is not None:
        try:
            held = connection.job_state()
        except QueueConfigurationError:
            held = None
        if held is not None and held.keeps_insight:
            return held
    raise InsightUnavailable(
        f"Queue connection '{connection.name}' (driver {connection.driver}) keeps no metrics, recent jobs or "
        f"workers on its server: set QUEUE_CONNECTIONS__{connection.name.upper()}__STATE=<a Redis or NATS "
        "connection> to keep them there."
    )
