"""The driver contract: what a driver module must provide, and what its broker may add.

A driver module is checked against ``DriverModule`` by mypy (see the bottom of
``registry.py``). Brokers are TaskIQ ``AsyncBroker`` subclasses; the optional
capabilities below are ``runtime_checkable`` so the manager asks a broker what
it can do instead of guessing from its class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from taskiq import AsyncBroker, AsyncResultBackend, BrokerMessage

from drivers.spec import BrokerSpec


class DriverModule(Protocol):
    """A module in ``drivers/``: builds a broker from a connection's settings and checks its server answers."""

    def build(self, spec: BrokerSpec) -> AsyncBroker:
        """A new, not yet started broker; raise QueueConfigurationError for settings that cannot work."""
        ...

    async def ping(self, spec: BrokerSpec) -> None:
        """Open a short-lived connection; raise BrokerUnreachableError (host:port, password masked) if it fails."""
        ...


class SharesResults(Protocol):
    """A driver module whose result store can hold another connection's results (``results: <name>``)."""

    def results(self, spec: BrokerSpec) -> AsyncResultBackend[Any]:
        """A new, not yet started result backend on this connection's server."""
        ...


@runtime_checkable
class CountsQueues(Protocol):
    """``Connection.size`` / ``clear`` (Laravel's ``Queue::size`` / ``clear``)."""

    async def size(self, queue: str) -> int: ...

    async def clear(self, queue: str) -> int: ...


@runtime_checkable
class SendsInBatches(Protocol):
    """``Connection.bulk`` sends each batch of jobs with one call (a pipeline, concurrent publishes, ...)."""

    async def kick_many(self, messages: Sequence[BrokerMessage]) -> None: ...


@runtime_checkable
class ServesSeveralQueues(Protocol):
    """``queue:work --queue=a,b``: the worker's broker listens to these queues, first one first where it can."""

    def listen_to(self, queues: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class QueueCounts:
    """What a queue holds, as far as its broker can tell (None: this broker cannot count it)."""

    waiting: int
    delayed: int | None = None
    reserved: int | None = None  # fetched by a worker and not finished: running, or about to


@runtime_checkable
class ReportsCounts(Protocol):
    """``queue:size``/``queue:monitor``/the dashboard: waiting, delayed and reserved jobs of a queue."""

    async def counts(self, queue: str) -> QueueCounts: ...
