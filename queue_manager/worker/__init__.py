"""The worker: the process ``queue:work`` runs (``process``; ``python -m queue_manager.worker``), TaskIQ's receiver
with Laravel's lifecycle flags (``receiver``), the worker's own middlewares (``middlewares``), its job lines and
log records (``output``), how many jobs it may hold (``capacity``), and the broker a ``taskiq worker`` loads
(``entry``).

``taskiq worker queue_manager.worker:broker app.tasks`` works: ``broker`` boots the app named by ``QUEUE_APP``
on first access and hands TaskIQ the broker of ``QUEUE_WORKER_CONNECTION`` (see ``entry``).
"""

from __future__ import annotations

from typing import Any

from drivers import QueueConfigurationError


def __getattr__(name: str) -> Any:
    if name == "broker":
        from queue_manager.worker.entry import stop_taskiq_worker, worker_broker

        try:
            return worker_broker()
        except QueueConfigurationError as error:
            stop_taskiq_worker(error)
            raise
    raise AttributeError(f"module 'queue_manager.worker' has no attribute {name!r}")
