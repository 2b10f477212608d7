"""fastapi-startkit-queue: a Laravel-style queue manager for fastapi-startkit, on TaskIQ."""

from queue_manager.connection import Connection
from queue_manager.context import current_manager, use_manager
from queue_manager.dispatch import PendingDispatch, dispatch
from queue_manager.errors import (
    BrokerUnreachableError,
    BulkDispatchError,
    InvalidDelayError,
    MissingExtraError,
    QueueConfigurationError,
    RetryError,
)
from queue_manager.manager import QueueManager
from queue_manager.provider import QueueProvider
from queue_manager.settings import ConnectionSettings, QueueSettings
from queue_manager.tasks import QueueTask, task
from queue_manager.testing import QueueFake  # plugs manager.fake() in

__all__ = [
    "BrokerUnreachableError",
    "BulkDispatchError",
    "Connection",
    "ConnectionSettings",
    "InvalidDelayError",
    "MissingExtraError",
    "PendingDispatch",
    "QueueConfigurationError",
    "QueueFake",
    "QueueManager",
    "QueueProvider",
    "QueueSettings",
    "QueueTask",
    "RetryError",
    "current_manager",
    "dispatch",
    "task",
    "use_manager",
]
