"""Queue configuration (published by QueueProvider as config/queue.py).

Register it with the provider so these defaults apply:

    providers=[FastAPIProvider, (QueueProvider, QueueConfig)]

QueueSettings is a pydantic-settings ``BaseSettings``: this class reads the environment
the pydantic-settings way, so ``model_config`` below can change the variable prefix, read
an env file of its own or a secrets directory (one file per setting, e.g. Docker secrets).

Precedence: values in the environment (QUEUE_DRIVER, QUEUE_CONNECTIONS__<NAME>__<FIELD>,
REDIS_URL, RABBITMQ_URL, NATS_URL, ...) win over the defaults below; a dict passed as
`(QueueProvider, {...})` wins over the environment.
"""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from queue_manager import ConnectionSettings, QueueSettings
from queue_manager.failed import FailedSettings


class QueueConfig(QueueSettings):
    model_config = SettingsConfigDict(
        env_prefix="QUEUE_",  # e.g. "JOBS_" to read JOBS_DRIVER, JOBS_CONNECTIONS__NATS__QUEUE, ...
        env_nested_delimiter="__",
        # env_file=".env.queue",       # a file of QUEUE_* lines (real environment variables win over it)
        # secrets_dir="/run/secrets",  # a file named queue_driver holds the value of QUEUE_DRIVER
    )

    # The default connection when the environment sets no QUEUE_DRIVER:
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

    # Where jobs that failed for good are kept (queue:failed, queue:retry, ...). The default is a
    # SQLite file, storage/queue/failed_jobs.sqlite; for several machines use a real database:
    #   QUEUE_FAILED__URL=postgresql+asyncpg://user:password@db/app   (pip install 'fastapi-startkit-queue[postgres]')
    #   QUEUE_FAILED__URL=mysql+aiomysql://user:password@db/app      (pip install 'fastapi-startkit-queue[mysql]')
    # or QUEUE_FAILED__DRIVER=redis (the Redis of QUEUE_FAILED__CONNECTION), or null (keep nothing).
    failed: FailedSettings = FailedSettings(
        # driver="database",
        # url="postgresql+asyncpg://user:password@db/app",
        # table="failed_jobs",
    )
