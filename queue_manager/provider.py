"""QueueProvider: the fastapi-startkit service provider that wires the queue into an app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi_startkit.support import Provider
from taskiq import TaskiqEvents, TaskiqState

from drivers import QueueConfigurationError
from queue_manager.connection import Connection
from queue_manager.console import commands
from queue_manager.context import use_manager
from queue_manager.manager import QueueManager
from queue_manager.settings import load_settings
from queue_manager.settings.environment import dotenv_files, restore_real_environment
from queue_manager.worker.capacity import tell_capacity
from queue_manager.worker.output import QuietReleases, configure_worker_logging

WORKER_LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)-7s][%(processName)s] %(message)s"  # TaskIQ's

PROVIDER_KEY = "queue"


def config_example() -> Path:
    """``config_examples/queue.py``: inside the wheel, or at the repository root in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "config_examples" / "queue.py", here.parent / "config_examples" / "queue.py"):
        if candidate.exists():
            return candidate
    return here.parent / "config_examples" / "queue.py"


class QueueProvider(Provider):
    """Binds ``queue.manager``, ``queue``, ``queue.connection`` and ``broker``.

    Register it after ``FastAPIProvider``. Config given at registration,
    ``(QueueProvider, {...})`` or ``(QueueProvider, QueueConfig)``, wins over
    ``.env``.
    """

    provider_key = PROVIDER_KEY

    def register(self) -> None:
        receiver_log = logging.getLogger("taskiq.receiver.receiver")
        if not any(isinstance(f, QuietReleases) for f in receiver_log.filters):
            receiver_log.addFilter(QuietReleases())  # a released job is not an error, in any process
        if self.app.base_path is not None:
            restore_real_environment(dotenv_files(Path(self.app.base_path), getattr(self.app, "env", None)))
        try:
            manager = QueueManager(load_settings(self.config or None), base_path=self.app.base_path)
            manager.resolving(self._configure_worker)
            default = manager.connection()
        except QueueConfigurationError as error:
            # In a `taskiq worker` child (the guide's `taskiq worker bootstrap.broker:broker`), TaskIQ would
            # start the child again every second, forever: a setting does not fix itself, so stop the worker.
            from queue_manager.worker.entry import stop_taskiq_worker

            stop_taskiq_worker(error)
            raise
        use_manager(manager)
        self.app.bind("queue.manager", manager)
        self.app.bind("queue", manager)
        self.app.bind("queue.connection", default)
        self.app.bind("broker", default.broker)

    def _configure_worker(self, connection: Connection) -> None:
        """In a worker process: the queue's log records get a handler of their own (``worker.output``), and a
        broker that fetches jobs learns how many this process may hold (``worker.capacity``)."""
        broker = connection.broker

        def configure(_state: TaskiqState) -> None:
            configure_worker_logging(self.app, WORKER_LOG_FORMAT)
            tell_capacity(broker)

        connection.broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, configure)

    def boot(self) -> None:
        if self.app.has("events"):  # every provider has registered by now: an EventServiceProvider's too
            self.app.make("queue.manager").events.dispatcher = self.app.make("events")
        self.publishes({config_example(): "config/queue.py"})
        self.commands(commands())
        self._compose_lifespan()

    def _compose_lifespan(self) -> None:
        """Start the resolved connections with the web process (Starlette 1.x has no startup handlers)."""
        try:
            router = self.app.fastapi.router
        except RuntimeError:  # FastAPI is not installed: a worker-only app
            return
        manager: QueueManager = self.app.make("queue.manager")
        inner = router.lifespan_context
        if manager.settings.health_path or manager.settings.dashboard:
            from queue_manager.web import add_routes

            add_routes(self.app, manager)

        @asynccontextmanager
        async def queue_lifespan(app: Any) -> AsyncIterator[Any]:
            if any(connection.broker.is_worker_process for connection in manager.resolved.values()):
                async with inner(app) as state:
                    yield state
                return
            await manager.startup(strict=False)
            try:
                async with inner(app) as state:
                    yield state
            finally:
                await manager.shutdown()

        router.lifespan_context = queue_lifespan
