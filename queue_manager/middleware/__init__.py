"""Job middleware, Laravel's: ``RateLimited``, ``WithoutOverlapping``, ``ThrottlesExceptions``, ``Skip``.

A job class returns them from ``middleware()``, a ``@task`` function takes ``@task(middleware=[...])``, and
``QUEUE_MIDDLEWARES`` puts them around every job of a connection. Their state (windows, locks) lives on the job's
connection's server, or on the one its ``STATE`` setting names (a RabbitMQ connection keeps none of its own).
"""

from queue_manager.middleware.limits import Limit, RateLimits, rate_limits
from queue_manager.middleware.overlapping import WithoutOverlapping
from queue_manager.middleware.rate_limited import RateLimited
from queue_manager.middleware.skip import Skip
from queue_manager.middleware.state import NoJobState
from queue_manager.middleware.throttles import ThrottlesExceptions

__all__ = [
    "Limit",
    "NoJobState",
    "RateLimited",
    "RateLimits",
    "Skip",
    "ThrottlesExceptions",
    "WithoutOverlapping",
    "rate_limits",
]
