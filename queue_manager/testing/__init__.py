"""Testing support: the queue fake and the pytest plugin's fixtures.

Importing this package gives ``QueueManager.fake()`` its fake (the package's
``__init__`` imports it, so ``manager.fake()`` always works); the manager
itself never imports test doubles.
"""

from queue_manager.manager import QueueManager
from queue_manager.testing.fake import FakedJobError, PushedJob, QueueFake

QueueManager.fake_factory = QueueFake

__all__ = ["FakedJobError", "PushedJob", "QueueFake"]
