"""What ``taskiq worker queue_manager.worker:broker app.tasks`` loads: a worker without a bootstrap/broker.py.

The app named by ``QUEUE_APP`` (default ``bootstrap.application:app``) is
booted on first access to ``broker``, and TaskIQ gets the broker of
``QUEUE_WORKER_CONNECTION`` (default: the default connection), listening on
``QUEUE_WORKER_QUEUES`` (comma-separated, first has priority; default: the
connection's queue). ``queue:work`` sets these for you.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from taskiq import AsyncBroker

from drivers import QueueConfigurationError
from drivers.base.contract import HasNoWorker
from drivers.base.names import check_queue_name

DEFAULT_APP = "bootstrap.application:app"
FIRST_WORKER = "worker-0"  # the name TaskIQ's process manager gives its first child
OTHER_WORKERS_WAIT = 3.0


def load_app(path: str | None = None) -> Any:
    target = path or os.environ.get("QUEUE_APP") or DEFAULT_APP
    module_name, _, attribute = target.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            raise QueueConfigurationError(
                f"QUEUE_APP points at {target!r}, but module {module_name!r} cannot be imported. "
                "Run the worker from your project directory, or set QUEUE_APP=package.module:app."
            ) from error
        raise
    try:
        return getattr(module, attribute or "app")
    except AttributeError:
        raise QueueConfigurationError(
            f"QUEUE_APP points at {target!r}, but {module_name!r} has no attribute {attribute or 'app'!r}."
        ) from None


def parse_queues(value: str | Sequence[str] | None) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value or [])
    queues = [check_queue_name(name.strip()) for name in names if name.strip()]
    if len(set(queues)) != len(queues):
        raise QueueConfigurationError(f"A queue is listed twice in {','.join(queues)!r}.")
    return queues


def check_has_worker(connection: Any) -> None:
    """A connection no worker can serve (memory, failover: ``HasNoWorker``) is refused, saying why and what to
    work instead."""
    broker = connection.broker
    if isinstance(broker, HasNoWorker):
        raise QueueConfigurationError(
            f"Connection '{connection.name}' has no worker: {broker.why_no_worker()}. Work a connection with a "
            "server instead (python artisan queue:work <connection>)."
        )


def serve_queues(broker: AsyncBroker, connection: str, queues: list[str]) -> None:
    """Point a worker's broker at these queues, or say why its driver cannot."""
    listen_to = getattr(broker, "listen_to", None)
    if listen_to is None:
        raise QueueConfigurationError(
            f"Queue connection '{connection}' uses a custom driver whose broker has no listen_to(queues); "
            "it can only serve its configured queue. Drop --queue / QUEUE_WORKER_QUEUES."
        )
    listen_to(queues)


class UnknownTaskIsAnError(logging.Filter):
    """TaskIQ drops a job whose task this worker never imported with a mere warning; make it an error
    that says how to fix it (the memory driver raises at dispatch instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith('task "%s" is not found'):
            record.levelno, record.levelname = logging.ERROR, "ERROR"
            record.msg = (
                'Dropped a job of unknown task "%s": this worker never imported it. Add its module to '
                "`queue:work --tasks=...` (or to the module list of `taskiq worker`)."
            )
        return True


def worker_broker(connection: str | None = None, queues: str | Sequence[str] | None = None) -> AsyncBroker:
    logging.getLogger("taskiq.receiver.receiver").addFilter(UnknownTaskIsAnError())
    app = load_app()
    manager = app.make("queue.manager")
    name = connection or os.environ.get("QUEUE_WORKER_CONNECTION") or None
    conn = manager.connection(name)
    wanted = parse_queues(queues if queues is not None else os.environ.get("QUEUE_WORKER_QUEUES"))
    if wanted:
        serve_queues(conn.broker, conn.name, wanted)
    broker: AsyncBroker = conn.broker
    served = ",".join(wanted or [conn.queue])

    started = broker.startup

    async def startup_then_announce() -> None:
        """Ready once the whole startup is done: WORKER_STARTUP handlers run at its beginning, before a driver
        has declared its queues (a message published to a RabbitMQ queue not declared yet is dropped)."""
        await started()
        logging.getLogger("queue_manager.worker").info(
            "Worker ready: connection '%s' (%s), queues %s", conn.name, conn.driver, served
        )

    broker.startup = startup_then_announce  # type: ignore[method-assign]
    return broker


def stop_taskiq_worker(error: Exception) -> None:
    """Inside a ``taskiq worker`` child, stop the whole worker with a failure: TaskIQ restarts a child that fails
    to import its broker forever, printing the same error every second, and a setting will not fix itself.

    TaskIQ's parent process exits 0 on SIGTERM (a clean stop, which a process manager would not restart or
    report), and runs none of our code. So the first child says why in one CRITICAL line and ends the parent
    with SIGUSR1, whose default action (TaskIQ installs no handler for it) is to end the process with a
    non-zero status; every child then exits 1 without a traceback. The other children wait a moment first,
    so none dies, and is restarted, before the parent is gone.
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None or "taskiq.cli.worker.process_manager" not in sys.modules:
        return
    if multiprocessing.current_process().name == FIRST_WORKER:
        logging.getLogger("queue_manager.worker").critical("Stopping the worker: %s", error)
        logging.shutdown()  # flush the line before the process ends
        os.kill(parent.pid, signal.SIGUSR1)
    else:
        time.sleep(OTHER_WORKERS_WAIT)
    os._exit(1)
