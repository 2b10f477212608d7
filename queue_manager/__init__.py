"""fastapi-startkit-queue: a Laravel-style queue manager for fastapi-startkit, on TaskIQ."""

from queue_manager.connection import Connection
from queue_manager.errors import BrokerUnreachableError, MissingExtraError, QueueConfigurationError
from queue_manager.manager import QueueManager
from queue_manager.provider import QueueProvider
from queue_manager.settings import ConnectionSettings, QueueSettings

__all__ = [
    "BrokerUnreachableError",
    "Connection",
    "ConnectionSettings",
    "MissingExtraError",
    "QueueConfigurationError",
    "QueueManager",
    "QueueProvider",
    "QueueSettings",
]
