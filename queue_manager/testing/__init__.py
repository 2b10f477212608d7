"""Testing support: the queue fake and the pytest plugin's fixtures."""

from queue_manager.testing.fake import FakedJobError, PushedJob, QueueFake

__all__ = ["FakedJobError", "PushedJob", "QueueFake"]
