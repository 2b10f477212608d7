"""The built-in drivers: adding a broker is its own package in ``drivers/`` and one entry here.

Adding a driver, step by step (``drivers/nats/`` is a compact example):

1. ``drivers/<name>/`` with:
   - ``__init__.py``: its ``DriverInfo`` (module, options, pip extra and the libraries it installs, URL
     schemes, default port, how to start a local server, the env variable of its URL, its queue-name rule,
     its idle-wait option), importing no broker library;
   - ``options.py``: a ``DriverOptions`` model (validated at boot, without importing the library);
   - the broker module named by ``DriverInfo.module``, with ``build(spec) -> AsyncBroker`` and
     ``async ping(spec)`` (``base.contract.DriverModule``; add it to the mypy check at the bottom of this
     file). Only that module (and what it imports) loads the broker library.
2. One ``DRIVERS`` entry below.
3. The broker's duties: route by the ``labels.QUEUE`` label, honour ``labels.ETA`` / ``labels.DELAY``
   (``base.delay``), raise ``BrokerUnreachableError`` via ``base.reach.unreachable`` when the server cannot be
   reached (``BrokerAuthenticationError`` via ``base.reach.refused`` when it refuses the credentials, also from
   the broker's ``refused(error)``), store results as JSON, offer a ``control_state`` (``base.control``: pause,
   restart, counters; its names hold ``base.names.CONTROL_MARK``, so no queue shares one), check queue names with
   its ``queue_rule``, and consume through ``common.consuming.Consuming`` (``take``/``give_back``): it checks the
   pauses, backs off while the server is away instead of letting ``listen()`` raise (an exception there kills the
   TaskIQ worker process) and rejects poison messages. Optional capabilities (``base.contract``:
   ``CountsQueues``, ``ReportsCounts``, ``SendsInBatches``, ``ServesSeveralQueues``) light up
   ``conn.size/clear/counts``, ``conn.bulk`` batching and ``queue:work --queue=a,b``; a module-level
   ``results(spec)`` (``SharesResults``) lets other connections keep their results there.
4. An extra in ``pyproject.toml``; a row in the README's driver and delivery tables; the driver in
   ``tests.helpers.SERVER_DRIVERS`` so the shared integration and e2e tests run on it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from drivers import failover, memory
from drivers.base.contract import DriverInfo
from drivers.base.errors import MissingExtraError, unknown_name_error
from drivers.nats import NATS
from drivers.rabbitmq import RABBITMQ
from drivers.redis import LIST, STREAM

DISTRIBUTION = "fastapi-startkit-queue"

DRIVERS: dict[str, DriverInfo] = {
    "redis": LIST,
    "redis_stream": STREAM,
    "rabbitmq": RABBITMQ,
    "nats": NATS,
    "memory": memory.DRIVER,
    "failover": failover.DRIVER,
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
    from drivers.base.contract import BuildsOnConnections, DriverModule, SharesResults
    from drivers.nats import broker as nats_broker
    from drivers.rabbitmq import broker as rabbitmq_broker
    from drivers.redis import list_broker, stream_broker

    _CHECKED: tuple[DriverModule, ...] = (failover, memory, nats_broker, rabbitmq_broker, list_broker, stream_broker)
    _SHARING: tuple[SharesResults, ...] = (nats_broker, rabbitmq_broker, list_broker, stream_broker)
    _OVER: tuple[BuildsOnConnections, ...] = (failover,)
