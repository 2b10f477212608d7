"""Broker drivers: each builds one kind of TaskIQ broker from a ``BrokerSpec``.

This package knows TaskIQ and the broker client libraries, and nothing of
fastapi-startkit or the queue manager. Its layers: ``base`` (the vocabulary),
``common`` (the consumer toolkit), one package per broker (``redis``,
``rabbitmq``, ``nats``) plus ``memory`` and ``failover``, and the ``registry``
that lists them. Broker libraries are imported only when their driver is
loaded (``load_driver``), so an app on Redis never imports aio_pika or nats.
"""

from drivers.base.contract import DriverInfo
from drivers.base.errors import (
    BrokerAuthenticationError,
    BrokerUnreachableError,
    MissingExtraError,
    QueueConfigurationError,
)
from drivers.base.spec import BrokerFactory, BrokerSpec
from drivers.base.urls import mask_url
from drivers.registry import DRIVERS, driver_info, load_driver

__all__ = [
    "DRIVERS",
    "BrokerAuthenticationError",
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
