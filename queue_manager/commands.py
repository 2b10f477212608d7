"""``python artisan queue:work [CONNECTION] --queue=a,b --workers=N --max-async-tasks=N --tasks=m1,m2``.

It checks everything it can before starting (connection name, queue names,
task modules), then replaces itself with a ``taskiq worker`` process for that
connection, so signals reach TaskIQ directly. Shutdown waits at most
``--shutdown-timeout`` seconds for running jobs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from cleo.helpers import argument, option
from fastapi_startkit.console import Command

from drivers import QueueConfigurationError
from queue_manager.worker import DEFAULT_APP, parse_queues

DEFAULT_TASKS = "app.tasks"


def app_import_path(app: Any) -> str:
    """Where the worker process can import this app from (``QUEUE_APP`` wins)."""
    if os.environ.get("QUEUE_APP"):
        return os.environ["QUEUE_APP"]
    for name, module in list(sys.modules.items()):
        if not name.startswith(("__", "queue_manager")) and getattr(module, "app", None) is app:
            return f"{name}:app"
    return DEFAULT_APP


def positive_int(value: Any, flag: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise QueueConfigurationError(f"{flag} must be a whole number >= 1, got {value!r}.")
    return number


def task_modules(value: str | None) -> list[str]:
    modules = [m.strip() for m in (value or DEFAULT_TASKS).split(",") if m.strip()]
    for module in modules:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            hint = "" if value else " (the default); name your task modules with --tasks=app.tasks,app.mail"
            raise QueueConfigurationError(f"Task module {module!r} cannot be found{hint}.")
    return modules


def worker_argv(
    modules: list[str], workers: int = 1, max_async_tasks: int = 100, shutdown_timeout: int = 30
) -> list[str]:
    """The ``taskiq worker`` command line that serves ``queue_manager.worker:broker``."""
    return [
        sys.executable, "-m", "taskiq", "worker", "queue_manager.worker:broker", *modules,
        "--workers", str(workers), "--max-async-tasks", str(max_async_tasks),
        "--wait-tasks-timeout", str(shutdown_timeout), "--shutdown-timeout", "5",
    ]  # fmt: skip


class QueueWorkCommand(Command):
    name = "queue:work"
    description = "Start a queue worker on a connection (TaskIQ worker processes)."
    arguments = [argument("connection", "The connection to work (default: QUEUE_DRIVER)", optional=True)]
    options = [
        option("connection", None, "The connection to work (same as the argument)", flag=False),
        option("queue", None, "Queues to work, highest priority first: emails,default", flag=False),
        option("workers", "w", "Worker processes", flag=False, default="1"),
        option("max-async-tasks", None, "Jobs one worker process runs at once", flag=False, default="100"),
        option("tasks", None, f"Modules holding your tasks (default {DEFAULT_TASKS})", flag=False),
        option("shutdown-timeout", None, "Seconds to wait for running jobs on shutdown", flag=False, default="30"),
    ]

    def handle(self) -> int:
        try:
            command, env = self.worker_command()
        except QueueConfigurationError as error:
            self.line_error(str(error), style="error")
            return 2
        self.line(f"<info>Processing jobs</info> on {env['QUEUE_WORKER_CONNECTION']}: {env['QUEUE_WORKER_QUEUES']}")
        sys.stdout.flush()
        os.execve(sys.executable, command, env)
        return 0  # not reached

    def worker_command(self) -> tuple[list[str], dict[str, str]]:
        manager = self.container.make("queue.manager")
        positional, named = self.argument("connection"), self.option("connection")
        if positional and named and positional != named:
            raise QueueConfigurationError(f"Two connections given: '{positional}' and --connection={named}.")
        connection = manager.connection(positional or named or None)
        queues = parse_queues(self.option("queue")) or [connection.queue]
        if connection.driver != "memory":
            from queue_manager.worker import serve_queues

            serve_queues(connection.broker, connection.name, queues)
        else:
            raise QueueConfigurationError(
                "The memory connection runs jobs inside the process that dispatches them; it has no worker. "
                "Pick a connection with a server (redis, redis_stream, rabbitmq, nats)."
            )
        workers = positive_int(self.option("workers"), "--workers")
        max_async = positive_int(self.option("max-async-tasks"), "--max-async-tasks")
        shutdown = positive_int(self.option("shutdown-timeout"), "--shutdown-timeout")
        modules = task_modules(self.option("tasks"))
        command = worker_argv(modules, workers, max_async, shutdown)
        env = {
            **os.environ,
            "QUEUE_APP": app_import_path(self.container),
            "QUEUE_WORKER_CONNECTION": connection.name,
            "QUEUE_WORKER_QUEUES": ",".join(queues),
        }
        return command, env
