"""The RabbitMQ driver: taskiq-aio-pika on a DIRECT exchange, durable (quorum) queues, delays without a
plugin. This face says what the manager needs to know before aio-pika is imported: the registry entry and the
app's ``RABBITMQ_URL``. The broker is ``broker``; connecting to a node list ``connect``, declarations
``declare``, delay queues ``delay_queues``, results ``results``, the control state ``control``, name rules ``names``.
"""

from __future__ import annotations

import os

from drivers.base.contract import DriverInfo
from drivers.rabbitmq.names import name_problem
from drivers.rabbitmq.options import RabbitMQOptions


def url_from_env() -> str:
    return os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/"


RABBITMQ = DriverInfo(
    "drivers.rabbitmq.broker",
    RabbitMQOptions,
    extra="rabbitmq",
    libraries=("taskiq_aio_pika", "aio_pika", "aiormq", "pamqp"),
    schemes=("amqp", "amqps"),
    default_port=5672,
    start_hint="RABBITMQ_NODE_PORT={port} rabbitmq-server -detached",
    env_url=url_from_env,
    url_variables=("RABBITMQ_URL",),
    queue_rule=name_problem,
    keeps_job_state=False,  # no atomic lock or counter: a RabbitMQ connection names a Redis or NATS one (state)
)
