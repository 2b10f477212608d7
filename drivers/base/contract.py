"""The driver contract: what the manager knows of a driver before importing it (``DriverInfo``), what a driver
module must provide (``DriverModule``), and what its broker may add.

A driver module is checked against ``DriverModule`` by mypy (see the bottom of
``registry.py``). Brokers are TaskIQ ``AsyncBroker`` subclasses; the optional
capabilities below are ``runtime_checkable`` so the manager asks a broker what
it can do instead of guessing from its class or its driver's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from taskiq import AsyncBroker, AsyncResultBackend, BrokerMessage

from drivers.base.names import QueueRule
from drivers.base.options import DriverOptions
from drivers.base.spec import BrokerSpec

UrlProblem = Callable[[str, Mapping[str, Any]], str | None]  # (url, options) -> why it cannot work, or None
StoreUrl = Callable[[str, Mapping[str, Any]], str]  # (url, options) -> the URL to use, or QueueConfigurationError


@dataclass(frozen=True)
class DriverInfo:
    """What the manager, the settings and the error messages need to know about a driver, without importing its
    broker library: each driver's package defines its own, the registry lists them."""

    module: str  # the ``DriverModule`` (build, ping), imported when a connection on this driver is resolved
    options: type[DriverOptions]
    extra: str | None = None  # pip extra that installs its libraries
    libraries: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()
    default_port: int = 0
    start_hint: str = ""  # how to start a local server; {port} is the port the URL names
    env_url: Callable[[], str] | None = None  # the URL of a connection that sets none (REDIS_URL, ...)
    url_variables: tuple[str, ...] = ()  # the variables env_url reads, for messages
    url_problem: UrlProblem | None = None  # a URL/option combination the driver cannot serve (checked at boot)
    queue_rule: QueueRule | None = None  # what its broker refuses in a queue name
    idle_wait: tuple[str, float] | None = None  # queue:work --sleep: (its option, option units per second)
    shares_results: bool = True  # its module has results(spec): other connections may keep results there
    keeps_job_state: bool = True  # its control state takes locks and rate limits (unique jobs, job middleware)
    default_connection: bool = True  # every app has a connection of this name and driver
    in_process: bool = False  # its jobs live in the dispatching process: no worker, nothing to show elsewhere
    builds_on_connections: bool = False  # its module has build_over(spec, connection) (failover)
    check_connections: Callable[[BrokerSpec, Mapping[str, str]], None] | None = None  # at boot: (spec, name -> driver)
    uses: Callable[[Mapping[str, Any]], list[str]] | None = None  # (options) -> the other connections it sends to
    redis_store_url: StoreUrl | None = None  # a plain redis:// URL the app's stores may use (failed jobs)

    def start_command(self, where: str) -> str:
        """``start_hint`` for the first server of ``where`` (``host:port,...``), on the port it names."""
        port = where.split(",", 1)[0].rpartition(":")[2]
        return self.start_hint.replace("{port}", port if port.isdigit() else str(self.default_port))


class DriverModule(Protocol):
    """A driver's module: builds a broker from a connection's settings and checks its server answers."""

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


class ConnectionLike(Protocol):
    """What a driver that builds on other connections (failover) gets for each of them."""

    @property
    def broker(self) -> AsyncBroker: ...

    async def startup(self) -> None: ...

    async def ping(self) -> None: ...


class BuildsOnConnections(Protocol):
    """A driver module whose broker sends through other connections (``DriverInfo.builds_on_connections``): the
    manager hands it its ``connection(name)``, as Laravel's FailoverConnector is handed the manager."""

    def build_over(self, spec: BrokerSpec, connection: Callable[[str], ConnectionLike]) -> AsyncBroker: ...


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


@runtime_checkable
class HasNoWorker(Protocol):
    """A broker no worker process can serve (the memory driver runs jobs where they are dispatched; failover
    sends to other connections): ``queue:work`` says why instead of starting."""

    def why_no_worker(self) -> str: ...


@runtime_checkable
class HoldsJobs(Protocol):
    """A broker that fetches jobs itself and holds them while they run (``common.in_flight``): the worker tells it
    how many it may hold at once and how many it may still take (``queue:work --max-jobs``)."""

    def hold_at_most(self, slots: int | None, budget: int | None = None) -> None: ...

    def jobs_held(self) -> int: ...
