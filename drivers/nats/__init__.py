"""The NATS JetStream driver: pull consumers on a work-queue stream, results and control state in key-value
buckets. This face says what the manager needs to know before nats-py is imported: the registry entry and
the app's ``NATS_URL``. The broker is ``broker``, its client ``client``, results ``results``, replicas in a
cluster ``replicas``, the control state ``control``, the name rules ``names``.
"""

from __future__ import annotations

import os

from drivers.base.contract import DriverInfo
from drivers.nats.names import queue_problem
from drivers.nats.options import NatsOptions


def url_from_env() -> str:
    return os.environ.get("NATS_URL") or "nats://127.0.0.1:4222"


NATS = DriverInfo(
    "drivers.nats.broker",
    NatsOptions,
    extra="nats",
    libraries=("taskiq_nats", "nats"),
    schemes=("nats", "tls", "ws", "wss"),
    default_port=4222,
    start_hint="nats-server -js -p {port}",
    env_url=url_from_env,
    url_variables=("NATS_URL",),
    queue_rule=queue_problem,
    idle_wait=("fetch_timeout", 1.0),
)
