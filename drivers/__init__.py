"""Broker drivers: each module builds one kind of TaskIQ broker from a ``BrokerSpec``.

This package knows TaskIQ and the broker client libraries, and nothing of
fastapi-startkit. Broker libraries are imported only when their driver is
loaded (``load_driver``), so an app on Redis never imports aio_pika or nats.
"""

from drivers.errors import BrokerUnreachableError, MissingExtraError, QueueConfigurationError
from drivers.registry import DRIVERS, DriverInfo, driver_info, load_driver
from drivers.spec import BrokerFactory, BrokerSpec
from drivers.urls import mask_url

__all__ = [
    "DRIVERS",
    "BrokerFactory",
    "BrokerSpec",
    "BrokerUnreachableError",
    "DriverInfo",
    "MissingExtraError",
    "QueueConfigurationError",
    "driver_info",
    "load_driver",
    "mask_url",
]
