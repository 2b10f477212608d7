"""fastapi-startkit-queue: a Laravel-style queue manager for fastapi-startkit, on TaskIQ.

The rooms: ``settings``, ``manager``, ``connection``, ``dispatch``/``tasks``/``sending`` (declaring and sending
jobs), ``jobs`` (what happens when one runs), ``failed`` (failed jobs), ``worker`` (the worker process),
``scheduler``, ``console`` (artisan commands), ``web`` (health and dashboard), ``provider``, and ``testing``
(the fake and the pytest plugin, plugged in from outside). What a custom driver needs is exported here too
(``BrokerSpec``, ``BrokerFactory``, ``ControlState``, ``QueueCounts``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drivers import BrokerFactory, BrokerSpec
from drivers.base.contract import QueueCounts
from drivers.base.control import ControlState
from queue_manager.bus import Batch, Bus
from queue_manager.connection import Connection
from queue_manager.context import use_manager
from queue_manager.dispatch import PendingDispatch, dispatch
from queue_manager.errors import (
    BrokerAuthenticationError,
    BrokerUnreachableError,
    BulkDispatchError,
    DispatchUnreachableError,
    InvalidDelayError,
    JobPayloadError,
    MissingExtraError,
    NeverAwaitedWarning,
    QueueConfigurationError,
    RetryError,
    UnrunnableJobError,
)
from queue_manager.jobs import Job, PendingJob
from queue_manager.manager import QueueManager, current_manager
from queue_manager.provider import QueueProvider
from queue_manager.running.interactions import current_job, job_of
from queue_manager.settings import ConnectionSettings, QueueSettings
from queue_manager.tasks import QueueTask, task

if TYPE_CHECKING:
    from queue_manager.testing import QueueFake


def _fake(*args: Any, **kwargs: Any) -> QueueFake:
    """``manager.fake()``: imports the fake on first use, not in every app's boot (the core never imports it)."""
    from queue_manager.testing import QueueFake

    return QueueFake(*args, **kwargs)


if QueueManager.fake_factory is None:
    QueueManager.fake_factory = _fake


def __getattr__(name: str) -> Any:
    if name == "QueueFake":
        from queue_manager.testing import QueueFake

        return QueueFake
    raise AttributeError(f"module 'queue_manager' has no attribute {name!r}")


__all__ = [
    "Batch",
    "BrokerAuthenticationError",
    "BrokerFactory",
    "BrokerSpec",
    "BrokerUnreachableError",
    "BulkDispatchError",
    "Bus",
    "Connection",
    "ConnectionSettings",
    "ControlState",
    "DispatchUnreachableError",
    "InvalidDelayError",
    "Job",
    "JobPayloadError",
    "MissingExtraError",
    "NeverAwaitedWarning",
    "PendingDispatch",
    "PendingJob",
    "QueueConfigurationError",
    "QueueCounts",
    "QueueFake",
    "QueueManager",
    "QueueProvider",
    "QueueSettings",
    "QueueTask",
    "RetryError",
    "UnrunnableJobError",
    "current_job",
    "current_manager",
    "dispatch",
    "job_of",
    "task",
    "use_manager",
]
