"""Queue configuration (published by QueueProvider as config/queue.py).

Register it with the provider so these defaults apply:

    providers=[FastAPIProvider, (QueueProvider, QueueConfig)]

Precedence: values in `.env` (QUEUE_DRIVER, QUEUE_CONNECTIONS__<NAME>__<FIELD>,
REDIS_URL, RABBITMQ_URL, NATS_URL, ...) win over the defaults below; a dict
passed as `(QueueProvider, {...})` wins over `.env`.
"""

from pydantic import Field

from queue_manager import ConnectionSettings, QueueSettings


class QueueConfig(QueueSettings):
    # The default connection when .env sets no QUEUE_DRIVER:
    # redis | redis_stream | rabbitmq | nats | memory, or a name defined below.
    driver: str = "redis"

    # Connections added to (or overriding fields of) the five defaults. Each default
    # connection is named after its driver and reads its URL from the environment.
    connections: dict[str, ConnectionSettings] = Field(
        default_factory=lambda: {
            # "emails": {"driver": "rabbitmq", "queue": "emails"},
            # "reports": {"driver": "redis", "queue": "reports", "options": {"result_ttl": 3600}},
        }
    )
