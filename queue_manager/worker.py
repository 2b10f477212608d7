"""``taskiq worker queue_manager.worker:broker app.tasks``: a worker without a bootstrap/broker.py.

The app named by ``QUEUE_APP`` (default ``bootstrap.application:app``) is
booted on first access to ``broker``, and the broker of
``QUEUE_WORKER_CONNECTION`` (default: the default connection) is handed to
TaskIQ.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from taskiq import AsyncBroker

from drivers import QueueConfigurationError

DEFAULT_APP = "bootstrap.application:app"


def load_app(path: str | None = None) -> Any:
    target = path or os.environ.get("QUEUE_APP") or DEFAULT_APP
    module_name, _, attribute = target.partition(":")
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


def worker_broker(connection: str | None = None) -> AsyncBroker:
    app = load_app()
    manager = app.make("queue.manager")
    broker: AsyncBroker = manager.connection(connection or os.environ.get("QUEUE_WORKER_CONNECTION") or None).broker
    return broker


def __getattr__(name: str) -> Any:
    if name == "broker":
        return worker_broker()
    raise AttributeError(name)
