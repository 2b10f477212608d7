"""The errors a user of the queue can see; all carry a message that says how to fix them."""

from drivers.errors import BrokerUnreachableError, MissingExtraError, QueueConfigurationError

__all__ = ["BrokerUnreachableError", "MissingExtraError", "QueueConfigurationError"]
