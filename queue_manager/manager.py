"""QueueManager: resolves named connections lazily, caches them, and starts/stops them together.

Laravel's split: the manager knows names and settings; each driver only knows
how to build its broker. Every connection's settings are checked when the
manager is made (at boot), but a broker, and its library, is only built and
imported when its connection is first asked for.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, TaskiqMiddleware

from drivers import DRIVERS, BrokerFactory, BrokerSpec, BrokerUnreachableError, QueueConfigurationError, load_driver
from drivers.base import labels
from drivers.base.contract import BuildsOnConnections, SharesResults
from drivers.base.control import ControlState, control_of
from drivers.base.errors import unknown_name_error
from drivers.base.reach import unreachable
from drivers.common.poison import RejectsPoison
from queue_manager.batches import Batches
from queue_manager.bus.running import BusMiddleware
from queue_manager.connection import Connection, Pinger
from queue_manager.context import current
from queue_manager.dispatch import PendingDispatch, dispatch
from queue_manager.events import Events
from queue_manager.failed import FailedJobs
from queue_manager.running.pipeline import JobMiddleware, check_middleware
from queue_manager.running.retries import RetryMiddleware
from queue_manager.settings import QueueSettings, describe_validation_error, load_settings, url_scheme
from queue_manager.tasks import BrokerTask

logger = logging.getLogger("queue_manager")

ResolvingCallback = Callable[[Connection], None]


class QueueManager:
    #: What ``fake()`` builds. Laravel keeps ``Queue::fake()`` outside the manager too: the package's
    #: ``__init__`` plugs in ``queue_manager.testing``, so nothing here knows a test double, not even its type.
    fake_factory: ClassVar[Callable[..., Any] | None] = None

    def __init__(self, settings: QueueSettings | None = None, base_path: Path | None = None) -> None:
        """``base_path``: the app's, under which the default failed-jobs database lives (storage/queue/)."""
        self.settings = settings if settings is not None else load_settings()
        self._custom: dict[str, BrokerFactory] = dict(self.settings.drivers)
        self._connections: dict[str, Connection] = {}
        self._default = self.settings.driver
        self._resolving: list[ResolvingCallback] = []
        # One registry for the tasks of every connection's broker: a task declared with the guide's
        # @broker.task (on the default connection) is found, and run, by any connection's worker.
        self._tasks: dict[str, AsyncTaskiqDecoratedTask[Any, Any]] = {}
        self._middlewares: list[Callable[[], TaskiqMiddleware]] = []
        #: Job middleware (``handle(job, next)``) every job of every connection runs through: QUEUE_MIDDLEWARES
        #: entries that are not TaskIQ middlewares.
        self.job_middleware: list[JobMiddleware] = []
        #: The app's event dispatcher, as the queue fires its events through it (the provider sets it at boot).
        self.events = Events()
        self.add_middlewares(*self.settings.middlewares)
        #: Laravel's failed jobs: ``manager.failed.all()``, ``find``, ``retry``, ``forget``, ``flush``.
        self.failed = FailedJobs(self, self.settings.failed, base_path)
        #: Job batches (``Bus.batch``) and chain claims: ``manager.batches.store``.
        self.batches = Batches(self.settings.batches, base_path, self._batches_redis_url)
        self.validate()

    # -- names ---------------------------------------------------------------------------------
    @property
    def drivers(self) -> list[str]:
        """Every driver name a connection may use: built-in and extended."""
        return sorted({*DRIVERS, *self._custom})

    @property
    def connection_names(self) -> list[str]:
        return sorted(self.settings.connections)

    def get_default_driver(self) -> str:
        """The default connection's name (Laravel's name for it)."""
        return self._default

    def set_default_driver(self, name: str) -> None:
        self.check_connection_name(name)
        self._default = name

    def extend(self, driver: str, factory: BrokerFactory) -> None:
        """Register a custom driver: ``factory(spec) -> AsyncBroker``."""
        if not callable(factory):
            raise QueueConfigurationError(f"extend('{driver}', ...) needs a callable factory(spec) -> AsyncBroker.")
        self._custom[driver] = factory

    def connected(self, name: str | None = None) -> bool:
        """Has this connection been resolved already?"""
        return (name or self._default) in self._connections

    # -- resolution ----------------------------------------------------------------------------
    def connection(self, name: str | None = None) -> Connection:
        """The named connection (default: QUEUE_DRIVER); the same object on every call."""
        key = name or self._default
        try:
            return self._connections[key]
        except KeyError:
            pass
        self.check_connection_name(key)
        connection = self._resolve(key)
        self._connections[key] = connection
        for callback in list(self._resolving):
            callback(connection)
        return connection

    def resolving(self, callback: ResolvingCallback) -> Callable[[], None]:
        """Call ``callback(connection)`` for every connection resolved from now on (Laravel's ``resolving``
        hook); returns a function that stops it."""
        self._resolving.append(callback)
        return lambda: self._resolving.remove(callback) if callback in self._resolving else None

    def each_broker(self, configure: Callable[[AsyncBroker], Any]) -> None:
        """Call ``configure(broker)`` for every connection's broker, resolved now or later: one place to set up
        what TaskIQ sets up per broker (``taskiq_fastapi.init``, event handlers, dependency overrides)."""
        for connection in self._connections.values():
            configure(connection.broker)
        self.resolving(lambda connection: configure(connection.broker))

    def add_middlewares(self, *middlewares: TaskiqMiddleware | Callable[[], TaskiqMiddleware]) -> None:
        """TaskIQ middlewares for every connection (``broker.add_middlewares`` adds to one broker only).

        A middleware belongs to one broker (TaskIQ sets ``middleware.broker``), so each connection gets a copy
        of it (see ``_factory_of``)."""
        made = [_made(middleware) for middleware in middlewares]
        self.job_middleware.extend(check_middleware([m for m in made if not isinstance(m, TaskiqMiddleware)], _WHERE))
        factories = [_copies(m) for m in made if isinstance(m, TaskiqMiddleware)]
        self._middlewares.extend(factories)
        for connection in self._connections.values():
            connection.broker.add_middlewares(*(make() for make in factories))

    @property
    def tasks(self) -> dict[str, AsyncTaskiqDecoratedTask[Any, Any]]:
        """Every task declared on a connection's broker (``@broker.task``); ``@task`` ones are TaskIQ's shared."""
        return dict(self._tasks)

    @property
    def resolved(self) -> dict[str, Connection]:
        return dict(self._connections)

    @property
    def app_name(self) -> str:
        """This app's name as a key (``QUEUE_APP_NAME``, else ``APP_NAME``): what scopes ``queue:restart``."""
        name = self.settings.app_name or os.environ.get("APP_NAME") or "app"
        return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "app"

    def used_connections(self) -> list[str]:
        """The connections this app uses: the default, every one its settings name, and those they send to (a
        failover's). What commands without a connection argument act on, so an app on Redis alone never connects
        to RabbitMQ or NATS because they are built in."""
        used = [self._default, *self.settings.configured]
        for name in list(used):
            settings = self.settings.connections.get(name)
            known = DRIVERS.get(settings.driver) if settings is not None else None
            if known is not None and known.uses is not None and settings is not None:
                used.extend(known.uses(settings.options))
        return [name for name in dict.fromkeys(used) if name in self.settings.connections]

    def import_tasks(self) -> None:
        """Import the app's task modules (``QUEUE_TASKS``), so the queues their tasks declare are known to a
        process that never imported them itself (an artisan command, the dashboard). A module missing from the
        default setting is skipped; one named explicitly is checked at boot."""
        for module in self.settings.tasks:
            if module not in sys.modules and _findable(module):
                importlib.import_module(module)

    def queues(self, name: str | None = None) -> list[str]:
        """The queues the app is known to use on a connection: its own, and those its tasks declare."""
        key = name or self._default
        self.check_connection_name(key)
        self.import_tasks()
        known = {self.settings.connections[key].queue}
        for found in [*AsyncBroker.global_task_registry.values(), *self._tasks.values()]:
            declared = found.labels.get(labels.QUEUE)
            if declared:
                known.add(str(declared))
        return sorted(known)

    def _resolve(self, name: str) -> Connection:
        settings = self.settings.connections[name]
        spec = self.settings.spec(name)
        shared = settings.results if settings.result_backend else None
        factory, pinger = self._driver(settings.driver)
        broker = factory(replace(spec, result_backend=False) if shared else spec)
        if not isinstance(broker, AsyncBroker):
            raise QueueConfigurationError(
                f"The factory of queue driver '{settings.driver}' returned {type(broker).__name__}, "
                "not a TaskIQ AsyncBroker."
            )
        if shared:
            module: SharesResults = load_driver(self.settings.connections[shared].driver)
            broker = broker.with_result_backend(module.results(self.settings.spec(shared)))
        if broker.decorator_class is AsyncTaskiqDecoratedTask:  # the guide's @broker.task (not a custom class)
            broker.decorator_class = BrokerTask
        broker.local_task_registry.update(self._tasks)
        self._tasks.update(broker.local_task_registry)
        broker.local_task_registry = self._tasks
        if not any(isinstance(m, RetryMiddleware) for m in broker.middlewares):
            retries = RetryMiddleware(
                partial(self.failed.record, name), self.failed, self.job_middleware, self.events, name
            )
            retries.job_state = partial(self.job_state_of, name)
            retries.default_queue = spec.queue
            broker.add_middlewares(retries)
        if not any(isinstance(m, BusMiddleware) for m in broker.middlewares):
            broker.add_middlewares(BusMiddleware(self, name))  # chains move on, batches count: after the retries
        broker.add_middlewares(*(make() for make in self._middlewares))
        if isinstance(broker, RejectsPoison):  # a message no worker can run is recorded, then acknowledged
            broker.poison_handler = partial(self.failed.record_poison, name)
        connection = Connection(spec, broker, pinger)
        connection.job_state = partial(self.job_state_of, name)
        connection.events = self.events
        return connection

    def _driver(self, driver: str) -> tuple[BrokerFactory, Pinger | None]:
        if driver in self._custom:
            return self._custom[driver], None
        module = load_driver(driver)
        if DRIVERS[driver].builds_on_connections:  # failover: handed this manager's connections
            over: BuildsOnConnections = module
            return partial(over.build_over, connection=self.connection), module.ping
        return module.build, module.ping

    # -- testing -------------------------------------------------------------------------------
    def fake(self, tasks: Iterable[Any] | None = None, connections: Iterable[str] | None = None) -> Any:
        """Laravel's ``Queue::fake()``: a ``queue_manager.testing.QueueFake`` that records dispatches instead of
        sending them (use as a context manager to restore the real connections). ``tasks``/``connections`` limit
        what is faked."""
        if self.fake_factory is None:
            raise RuntimeError("manager.fake() needs queue_manager.testing: `import queue_manager` first.")
        return self.fake_factory(self, tasks, connections)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("assert_"):
            raise AttributeError(
                f"QueueManager has no {name}: the assertions are the fake's. Call manager.fake() (or Queue.fake()) "
                "first and assert on what it returns (the Queue facade reaches it while faking)."
            )
        raise AttributeError(name)

    # -- lifecycle -----------------------------------------------------------------------------
    async def startup(self, strict: bool = True) -> None:
        """Start every resolved connection. ``strict=False`` (the web process's lifespan): a connection whose
        server does not answer is logged once and left to start on its first dispatch, so a queue outage is
        not a site outage; dispatching on it raises BrokerUnreachableError until the server is back."""
        for connection in list(self._connections.values()):
            try:
                await connection.startup()
            except Exception as error:  # down, or another service answers at its port (a library's own error)
                if strict or isinstance(error, QueueConfigurationError):
                    raise
                known = DRIVERS.get(connection.driver)
                if not isinstance(error, BrokerUnreachableError):  # in our words: host:port, never the password
                    why = f"Queue connection '{connection.name}' did not start ({type(error).__name__})."
                    error = unreachable(connection.spec, error, known) if known else BrokerUnreachableError(why)
                logger.warning(
                    "%s The app starts anyway: dispatching on connection '%s' raises BrokerUnreachableError "
                    "until its server answers, then works without a restart.",
                    error,
                    connection.name,
                )

    async def shutdown(self) -> None:
        for connection in list(self._connections.values()):
            try:
                await connection.shutdown()
            except Exception:  # one broker failing to close must not keep the others open
                logger.exception("Queue connection '%s' failed to shut down", connection.name)
        await self.failed.close()
        await self.batches.close()

    def _batches_redis_url(self, connection: str | None) -> str:
        """QUEUE_BATCHES__DRIVER=redis: batches in the Redis of QUEUE_BATCHES__CONNECTION (default: the default)."""
        name = connection or self._default
        self.check_connection_name(name)
        settings = self.settings.connections[name]
        known = DRIVERS.get(settings.driver)
        if known is None or known.redis_store_url is None:
            lending = ", ".join(driver for driver, info in DRIVERS.items() if info.redis_store_url is not None)
            raise QueueConfigurationError(
                f"QUEUE_BATCHES__DRIVER=redis keeps batches in the Redis of a queue connection, but connection "
                f"'{name}' uses the {settings.driver} driver. Set QUEUE_BATCHES__CONNECTION to a connection on "
                f"{lending}, or use QUEUE_BATCHES__DRIVER=database."
            )
        return known.redis_store_url(settings.url_value or "", settings.options)

    def dispatch(self, task: Any, *args: Any, **kwargs: Any) -> PendingDispatch:
        """Dispatch a task or a job class's instance (``Queue.dispatch(...)`` through the facade): on its own
        connection if it names one, else the default; await it."""
        pending = dispatch(task, *args, **kwargs)
        return pending if pending.connection_name else pending.on_connection(self._default)

    async def push(self, *jobs: Any, connection: str | None = None, queue: str | None = None) -> list[Any]:
        """fastapi-startkit's ``Queue.push(*jobs)`` (Masonite's shape): send job class instances (or pending
        dispatches), each on its own connection and queue unless given; their handles (None: a unique job that
        was already queued)."""
        handles = []
        for job in jobs:
            pending = job if isinstance(job, PendingDispatch) else self.dispatch(job)
            if connection is not None:
                pending.on_connection(connection)
            if queue is not None:
                pending.on_queue(queue)
            handles.append(await pending)
        return handles

    # -- validation (at boot) ------------------------------------------------------------------
    def check_connection_name(self, name: str) -> None:
        if name not in self.settings.connections:
            prefix = str(type(self.settings).model_config.get("env_prefix") or "").upper()
            raise unknown_name_error(
                "connection",
                name,
                self.settings.connections,
                f"Set {prefix}DRIVER (or {prefix}CONNECTION) to one of them, or define it with "
                f"{prefix}CONNECTIONS__{name.upper()}__DRIVER=<driver>.",
            )

    def validate(self) -> None:
        """Check every connection now, so a bad setting fails at boot instead of at first dispatch."""
        self.check_connection_name(self._default)
        if "tasks" in self.settings.model_fields_set:
            missing = [module for module in self.settings.tasks if not _findable(module)]
            if missing:
                prefix = str(type(self.settings).model_config.get("env_prefix") or "").upper()
                raise QueueConfigurationError(
                    f"{prefix}TASKS names task module(s) that cannot be found: {', '.join(missing)}. Name the "
                    "modules that hold your tasks, comma-separated (app.tasks,app.jobs), importable from where "
                    "the app runs."
                )
        for name in self.settings.connections:
            self._validate_connection(name, self.settings.spec(name))
        self.failed.check()
        if self.settings.batches.driver == "redis":  # the batch store's Redis, checked without connecting
            self._batches_redis_url(self.settings.batches.connection)

    def _validate_connection(self, name: str, spec: BrokerSpec) -> None:
        self._validate_results(name)
        self._validate_state(name)
        if spec.driver in self._custom:
            return
        if spec.driver not in DRIVERS:
            error = unknown_name_error(
                "driver",
                spec.driver,
                self.drivers,
                f"Fix {spec.setting('driver')}, or register the driver in the 'drivers' setting.",
            )
            raise QueueConfigurationError(f"Queue connection '{name}': {error}") from None
        info = DRIVERS[spec.driver]
        if info.check_connections is not None:
            info.check_connections(spec, {other: s.driver for other, s in self.settings.connections.items()})
        if info.schemes and url_scheme(spec.url) not in info.schemes:
            raise QueueConfigurationError(
                f"Queue connection '{name}' (driver {spec.driver}) has url {spec.display_url!r}: it must start "
                f"with {' or '.join(s + '://' for s in info.schemes)}. Fix {spec.setting('url')} "
                "or the driver's *_URL variable."
            )
        if not spec.options:  # the driver's defaults: valid by construction (and no model to build at boot)
            return
        try:
            info.options.model_validate(dict(spec.options))
        except ValidationError as error:
            valid = ", ".join(info.options.model_fields) or "(none)"
            prefix = str(type(self.settings).model_config.get("env_prefix") or "").upper()
            where = ("connections", name, "options")
            raise QueueConfigurationError(
                f"Queue connection '{name}' (driver {spec.driver}) has invalid options:\n"
                f"{describe_validation_error(error, info.options, prefix, where, False)}\n"
                f"Valid options: {valid}."
            ) from None

    def _validate_results(self, name: str) -> None:
        """``results: <other>``: a connection whose built-in driver has a result store, not this one."""
        shared = self.settings.connections[name].results
        if shared is None:
            return
        setting = self.settings.spec(name).setting("results")
        if shared not in self.settings.connections:
            error = unknown_name_error("connection", shared, self.settings.connections, f"Fix {setting}.")
            raise QueueConfigurationError(f"Queue connection '{name}' (its results): {error}") from None
        driver = self.settings.connections[shared].driver
        if shared == name or driver not in DRIVERS or not DRIVERS[driver].shares_results:
            why = (
                "itself (drop the setting: a connection keeps its own results by default)"
                if shared == name
                else f"'{shared}', whose driver ({driver}) has no result store other connections can share"
            )
            sharing = ", ".join(driver for driver, info in DRIVERS.items() if info.shares_results)
            raise QueueConfigurationError(
                f"Queue connection '{name}' cannot keep its results in {why}. Set {setting} to a connection on "
                f"{sharing}."
            )

    def _validate_state(self, name: str) -> None:
        """``state: <other>``: a connection whose server keeps job state (locks, rate limits)."""
        other = self.settings.connections[name].state
        if other is None:
            return
        setting = self.settings.spec(name).setting("state")
        if other not in self.settings.connections:
            error = unknown_name_error("connection", other, self.settings.connections, f"Fix {setting}.")
            raise QueueConfigurationError(f"Queue connection '{name}' (its job state): {error}") from None
        driver = self.settings.connections[other].driver
        if other == name or driver not in DRIVERS or not DRIVERS[driver].keeps_job_state:
            keeping = ", ".join(driver for driver, info in DRIVERS.items() if info.keeps_job_state)
            raise QueueConfigurationError(
                f"Queue connection '{name}' cannot keep its job state on '{other}' (driver {driver}): set {setting} "
                f"to a connection on {keeping}."
            )

    def job_state_of(self, name: str) -> ControlState:
        """Where connection ``name`` keeps job state (unique locks, job middleware): its own server, or the one
        its ``state`` setting names; QueueConfigurationError naming the fix when neither can."""
        settings = self.settings.connections[name]
        holder = settings.state or name
        driver = self.settings.connections[holder].driver
        known = DRIVERS.get(driver)
        control = control_of(self.connection(holder).broker)
        if control is None or (known is not None and not known.keeps_job_state):
            keeping = ", ".join(d for d, info in DRIVERS.items() if info.keeps_job_state)
            raise QueueConfigurationError(
                f"Queue connection '{name}' (driver {driver}) keeps no job state, which unique jobs and job "
                f"middleware (RateLimited, WithoutOverlapping, ThrottlesExceptions) need: set "
                f"{self.settings.spec(name).setting('state')}=<a connection on {keeping}>, as RESULTS names one "
                "for results."
            )
        return control

    def __repr__(self) -> str:
        return (
            f"<QueueManager default={self._default!r} connections={self.connection_names} "
            f"resolved={sorted(self._connections)}>"
        )


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def current_manager() -> QueueManager:
    """The app's manager: the one QueueProvider set at register(), or the one given to ``use_manager``."""
    manager = current()
    if not isinstance(manager, QueueManager):
        raise QueueConfigurationError(f"use_manager() was given {manager!r}, not a QueueManager.")
    return manager


_WHERE = "QUEUE_MIDDLEWARES (or add_middlewares)"


def _made(middleware: Any) -> Any:
    """A middleware given as a class or factory is made once; an instance is taken as it is."""
    if isinstance(middleware, TaskiqMiddleware) or (
        not isinstance(middleware, type) and isinstance(middleware, JobMiddleware)
    ):
        return middleware
    made = middleware() if callable(middleware) else middleware
    if not isinstance(made, TaskiqMiddleware | JobMiddleware):
        raise QueueConfigurationError(
            f"{_WHERE}: {middleware!r} is neither a TaskIQ middleware (a TaskiqMiddleware instance, class or "
            "factory) nor a job middleware (an object with `async def handle(self, job, next)`)."
        )
    return made


def _copies(made: TaskiqMiddleware) -> Callable[[], TaskiqMiddleware]:
    """One TaskIQ middleware per connection: made once, then copied for each broker, so its state is shared
    (Prometheus metrics may only be registered once per process) while ``middleware.broker`` is each one's own."""
    return lambda: copy.copy(made)
