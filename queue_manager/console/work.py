"""``python artisan queue:work [CONNECTION] --queue=a,b --tasks=m1,m2 ...``: Laravel's worker command, and
``queue:restart``.

It checks everything it can before starting (connection name, queue names, task modules, every flag),
then replaces itself with the worker process (``queue_manager.worker``: TaskIQ's worker with our
receiver), so your process manager's signals reach it directly. Shutdown waits at most
``--shutdown-timeout`` seconds for running jobs. Flags reach the worker as ``QUEUE_WORKER_*`` variables.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
from typing import Any

from cleo.helpers import argument, option
from fastapi_startkit.console import Command

from drivers import DRIVERS, BrokerSpec, BrokerUnreachableError, QueueConfigurationError
from drivers.base.control import control_of, restart_key
from queue_manager.console.base import DEFAULT_TASKS, ManagerCommand, task_modules
from queue_manager.worker.entry import DEFAULT_APP, check_has_worker, parse_queues, serve_queues
from queue_manager.worker.process import worker_argv


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


def positive_seconds(value: Any, flag: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not math.isfinite(number) or number <= 0:
        raise QueueConfigurationError(f"{flag} must be a number > 0, got {value!r}.")
    return number


LIFECYCLE_FLAGS = ("max-jobs", "max-time", "memory", "stop-when-empty", "once")


def check_reload(workers: int, stopping_flags: list[str]) -> None:
    """``--reload`` is TaskIQ's (its process manager restarts one worker when a file changes): it needs TaskIQ's
    reload extra, one worker, and no flag that stops the worker for good."""
    if importlib.util.find_spec("watchdog") is None:
        raise QueueConfigurationError(
            "--reload needs the 'watchdog' library, which is not installed. Install it with: "
            "pip install 'fastapi-startkit-queue[reload]'"
        )
    if workers > 1:
        raise QueueConfigurationError(f"--reload runs one worker process; drop --workers={workers}.")
    if stopping_flags:
        raise QueueConfigurationError(
            f"--reload restarts the worker whenever it stops, so --{stopping_flags[0]} would never end it; "
            "drop one of them."
        )


class QueueWorkCommand(Command):
    name = "queue:work"
    description = "Start a queue worker on a connection (exit codes: 0 stopped, 1 crashed, 2 bad input, 12 memory)."
    arguments = [argument("connection", "The connection to work (default: QUEUE_DRIVER)", optional=True)]
    options = [
        option("connection", None, "The connection to work (same as the argument)", flag=False),
        option("queue", None, "Queues to work, highest priority first: emails,default", flag=False),
        option("workers", "w", "Worker processes", flag=False, default="1"),
        option("max-async-tasks", None, "Jobs one worker process runs at once", flag=False, default="100"),
        option("tasks", None, f"Modules holding your tasks (default: QUEUE_TASKS, else {DEFAULT_TASKS})", flag=False),
        option("shutdown-timeout", None, "Seconds to wait for running jobs on shutdown", flag=False, default="30"),
        option("max-jobs", None, "Stop after this many jobs (exit 0)", flag=False),
        option("max-time", None, "Stop after this many seconds (exit 0)", flag=False),
        option("memory", None, "Stop when the worker uses more than this many MB (exit 12)", flag=False),
        option("stop-when-empty", None, "Stop when its queues are empty and no job runs (exit 0)"),
        option("once", None, "Run one job, then stop (exit 0)"),
        option("tries", None, "Attempts for jobs whose task sets no retries (Laravel's tries)", flag=False),
        option("backoff", None, "Seconds before each retry of such jobs: 5 or 1,5,30", flag=False),
        option("timeout", None, "Seconds an async job whose task sets none may run", flag=False),
        option("sleep", None, "Seconds an idle worker waits for jobs before looking again", flag=False),
        option("format", None, "Job lines: text or json", flag=False, default="text"),
        option("reload", None, "Development: restart the worker when a file under the app changes"),
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
        queues = [connection.check_queue(queue) for queue in parse_queues(self.option("queue"))] or [connection.queue]
        check_has_worker(connection)
        serve_queues(connection.broker, connection.name, queues)
        workers = positive_int(self.option("workers"), "--workers")
        max_async = positive_int(self.option("max-async-tasks"), "--max-async-tasks")
        shutdown = positive_int(self.option("shutdown-timeout"), "--shutdown-timeout")
        modules = task_modules(self.option("tasks"), manager.settings.tasks)
        if self.option("reload"):
            check_reload(workers, [flag for flag in LIFECYCLE_FLAGS if self.option(flag)])
        env = {
            **os.environ,
            "QUEUE_APP": app_import_path(self.container),
            "QUEUE_WORKER_CONNECTION": connection.name,
            "QUEUE_WORKER_QUEUES": ",".join(queues),
            "QUEUE_WORKER_RESTART_KEY": restart_key(manager.app_name),
            **self.lifecycle_env(workers),
            **self.defaults_env(),
            **self.sleep_env(connection.spec),
        }
        log_level = "INFO" if self.io.output.is_verbose() else "WARNING"
        argv = worker_argv(modules, workers, max_async, shutdown, log_level)
        # An absolute directory: watchdog ignores the changes under a relative root (".") on Linux.
        reload = ["--reload", "--reload-dir", os.getcwd()] if self.option("reload") else []
        return [*argv, *reload], env

    def lifecycle_env(self, workers: int) -> dict[str, str]:
        given = [flag for flag in LIFECYCLE_FLAGS if self.option(flag)]
        if given and workers > 1:
            raise QueueConfigurationError(
                f"--{given[0]} stops one worker process; with --workers={workers} TaskIQ would start it again. "
                f"Run {workers} queue:work processes under your process manager instead (Supervisor's numprocs)."
            )
        env: dict[str, str] = {}
        if self.option("once"):
            env["QUEUE_WORKER_MAX_JOBS"] = "1"
        elif self.option("max-jobs"):
            env["QUEUE_WORKER_MAX_JOBS"] = str(positive_int(self.option("max-jobs"), "--max-jobs"))
        if self.option("max-time"):
            env["QUEUE_WORKER_MAX_TIME"] = str(positive_seconds(self.option("max-time"), "--max-time"))
        if self.option("memory"):
            env["QUEUE_WORKER_MEMORY"] = str(positive_seconds(self.option("memory"), "--memory"))
        if self.option("stop-when-empty"):
            env["QUEUE_WORKER_STOP_WHEN_EMPTY"] = "1"
        output = (self.option("format") or "text").lower()
        if output not in ("text", "json"):
            raise QueueConfigurationError(f"--format must be text or json, got {self.option('format')!r}.")
        env["QUEUE_WORKER_OUTPUT"] = "quiet" if self.io.output.is_quiet() else output
        return env

    def defaults_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.option("tries"):
            env["QUEUE_WORKER_TRIES"] = str(positive_int(self.option("tries"), "--tries"))
        if self.option("backoff"):
            backoff = [positive_seconds(part, "--backoff") for part in str(self.option("backoff")).split(",")]
            env["QUEUE_WORKER_BACKOFF"] = json.dumps(backoff)
        if self.option("timeout"):
            env["QUEUE_WORKER_TIMEOUT"] = str(positive_seconds(self.option("timeout"), "--timeout"))
        return env

    def sleep_env(self, spec: BrokerSpec) -> dict[str, str]:
        """``--sleep``: the driver option that makes an idle worker wait (its registry entry names it)."""
        if not self.option("sleep"):
            return {}
        seconds = positive_seconds(self.option("sleep"), "--sleep")
        known = DRIVERS.get(spec.driver)
        if known is None or known.idle_wait is None:
            raise QueueConfigurationError(
                f"--sleep does not apply to connection '{spec.name}' ({spec.driver}): its server pushes jobs to "
                "the worker as they arrive, so an idle worker never polls. Drop --sleep."
            )
        option_name, per_second = known.idle_wait
        value = seconds * per_second
        return {spec.setting("options", option_name): str(int(value) if per_second > 1 else value)}


class QueueRestartCommand(ManagerCommand):
    """Laravel's ``queue:restart``: a timestamp, per app, that every worker reads once a second from its own
    connection."""

    name = "queue:restart"
    description = (
        "Tell this app's workers to finish their running jobs and exit, so their process manager starts the new code."
    )
    arguments = [
        argument(
            "connections",
            "Only these connections (default: the ones this app uses: the default and those its settings name)",
            optional=True,
            multiple=True,
        )
    ]

    def handle(self) -> int:
        manager = self.container.make("queue.manager")
        names = list(self.argument("connections") or [])
        try:
            for name in names:
                manager.check_connection_name(name)
        except QueueConfigurationError as error:
            return self.refuse(error)
        wanted = names or [n for n in manager.used_connections() if not _in_process(manager, n)]
        stamp = str(time.time())
        key = restart_key(manager.app_name)
        signalled, skipped = self.with_manager(lambda manager: self._signal(manager, wanted, key, stamp))
        for name in signalled:
            self.line(
                f"<info>Restart signalled</info> to the workers of app '{manager.app_name}' on connection '{name}'."
            )
        for name, reason in skipped:
            self.line_error(f"Skipped connection '{name}': {reason}", style="comment")
        return 0 if signalled else 1

    async def _signal(
        self, manager: Any, names: list[str], key: str, stamp: str
    ) -> tuple[list[str], list[tuple[str, str]]]:
        signalled: list[str] = []
        skipped: list[tuple[str, str]] = []
        for name in names:
            connection = manager.connection(name)
            control = control_of(connection.broker)
            if control is None:
                skipped.append((name, "its driver keeps no shared state, so its workers cannot be told"))
                continue
            try:
                await connection.startup()
                await control.set(key, stamp)
            except (BrokerUnreachableError, OSError) as error:
                skipped.append((name, str(error)))
            else:
                signalled.append(name)
        return signalled, skipped


def _in_process(manager: Any, name: str) -> bool:
    """A connection whose jobs live in the dispatching process (memory): no worker elsewhere to tell."""
    known = DRIVERS.get(manager.settings.connections[name].driver)
    return known is not None and known.in_process
