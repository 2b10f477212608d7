"""The built-in drivers: adding a broker is one module in ``drivers/`` and one entry here.

Adding a driver, step by step:

1. ``drivers/<name>.py`` with ``build(spec) -> AsyncBroker`` and ``async ping(spec)``
   (``contract.DriverModule``; add it to the mypy check at the bottom of this file).
   Import the broker library at the top of that module only: nothing else imports it,
   so apps that do not use the driver never load the library.
2. Its options as a ``DriverOptions`` model in ``drivers/options.py`` (validated at boot,
   without importing the library), and a ``DRIVERS`` entry below: module, options,
   pip extra, the libraries that extra installs, URL schemes, default port, how to start
   a local server (for the "unreachable" error).
3. The broker: route by the ``labels.QUEUE`` label, honour ``labels.ETA`` / ``labels.DELAY``
   (``delay.seconds_until_due``), raise ``BrokerUnreachableError`` via ``reach.unreachable``
   when the server cannot be reached, store results as JSON, and reconnect instead of
   letting ``listen()`` raise (an exception there kills the TaskIQ worker process).
   Optional capabilities (``contract.CountsQueues``, ``SendsInBatches``, ``ServesSeveralQueues``)
   light up ``conn.size/clear``, ``conn.bulk`` batching and ``queue:work --queue=a,b``; a module
   ``results(spec)`` (``contract.SharesResults``) lets other connections keep their results there.
4. An extra in ``pyproject.toml``; a row in the README's driver and delivery tables; the
   driver in ``tests.helpers.SERVER_DRIVERS`` so the shared integration and e2e tests run on it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from drivers.errors import MissingExtraError, unknown_name_error
from drivers.options import (
    DriverOptions,
    FailoverOptions,
    MemoryOptions,
    NatsOptions,
    RabbitMQOptions,
    RedisOptions,
    RedisStreamOptions,
)

DISTRIBUTION = "fastapi-startkit-queue"


@dataclass(frozen=True)
class DriverInfo:
    """What the manager needs to know about a driver before importing it."""

    module: str
    options: type[DriverOptions]
    extra: str | None = None
    libraries: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()
    default_port: int = 0
    start_hint: str = ""  # how to start a local server; {port} is the port the URL names
    shares_results: bool = True  # its module has results(spec): other connections may keep results there

    def start_command(self, where: str) -> str:
        """``start_hint`` for the first server of ``where`` (``host:port,...``), on the port it names."""
        port = where.split(",", 1)[0].rpartition(":")[2]
        return self.start_hint.replace("{port}", port if port.isdigit() else str(self.default_port))


DRIVERS: dict[str, DriverInfo] = {
    "redis": DriverInfo(
        "drivers.redis",
        RedisOptions,
        "redis",
        ("taskiq_redis", "redis"),
        ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel"),
        6379,
        "redis-server --port {port}",
    ),
    "redis_stream": DriverInfo(
        "drivers.redis_stream",
        RedisStreamOptions,
        "redis",
        ("taskiq_redis", "redis"),
        ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel"),
        6379,
        "redis-server --port {port}",
    ),
    "rabbitmq": DriverInfo(
        "drivers.rabbitmq",
        RabbitMQOptions,
        "rabbitmq",
        ("taskiq_aio_pika", "aio_pika", "aiormq", "pamqp"),
        ("amqp", "amqps"),
        5672,
        "RABBITMQ_NODE_PORT={port} rabbitmq-server -detached",
    ),
    "nats": DriverInfo(
        "drivers.nats",
        NatsOptions,
        "nats",
        ("taskiq_nats", "nats"),
        ("nats", "tls", "ws", "wss"),
        4222,
        "nats-server -js -p {port}",
    ),
    "memory": DriverInfo("drivers.memory", MemoryOptions, shares_results=False),
    # Built by the manager from the connections it names (drivers.failover), never through build().
    "failover": DriverInfo("drivers.failover", FailoverOptions, shares_results=False),
}


def driver_info(name: str) -> DriverInfo:
    try:
        return DRIVERS[name]
    except KeyError:
        raise unknown_name_error(
            "driver",
            name,
            DRIVERS,
            "Set a connection's 'driver' to one of them, or register yours with manager.extend().",
        ) from None


def load_driver(name: str) -> ModuleType:
    """Import a built-in driver module; a missing broker library names the extra to install."""
    info = driver_info(name)
    try:
        return importlib.import_module(info.module)
    except ModuleNotFoundError as error:
        missing = (error.name or "").split(".")[0]
        if info.extra is None or missing not in info.libraries:
            raise
        raise MissingExtraError(
            f"The '{name}' queue driver needs the '{missing}' library, which is not installed. "
            f"Install it with: pip install '{DISTRIBUTION}[{info.extra}]'"
        ) from error


if TYPE_CHECKING:  # mypy checks every built-in driver module against the contract
    from drivers import failover, memory, nats, rabbitmq, redis, redis_stream
    from drivers.contract import DriverModule, SharesResults

    _CHECKED: tuple[DriverModule, ...] = (failover, memory, nats, rabbitmq, redis, redis_stream)
    _SHARING: tuple[SharesResults, ...] = (nats, rabbitmq, redis, redis_stream)
