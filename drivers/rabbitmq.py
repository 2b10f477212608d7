"""RabbitMQ driver: taskiq-aio-pika with a DIRECT exchange and durable queues.

taskiq-aio-pika's default TOPIC exchange drops a job routed to a queue nobody
declared without any error; a DIRECT exchange with declared queues lets the
driver refuse an unknown queue at dispatch instead. Messages are persistent;
a job is acknowledged after it ran, so a killed worker's job is delivered again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aio_pika import ExchangeType
from aio_pika.exceptions import AMQPConnectionError
from taskiq import AsyncBroker
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue, QueueType

from drivers.options import RabbitMQOptions
from drivers.rabbitmq_results import RabbitMQResultBackend
from drivers.reach import unreachable
from drivers.spec import BrokerSpec

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (AMQPConnectionError, OSError, asyncio.TimeoutError)


class RabbitMQBroker(AioPikaBroker):
    def __init__(self, spec: BrokerSpec, options: RabbitMQOptions) -> None:
        queue_type = QueueType(options.queue_type)
        super().__init__(
            url=spec.url,
            qos=options.qos,
            exchange=Exchange(name=options.exchange, type=ExchangeType.DIRECT),
            task_queues=[Queue(name=spec.queue, type=queue_type)],
            dead_letter_queue=Queue(name=f"{options.exchange}.dead_letter", type=queue_type),
            timeout=options.connect_timeout,
        )
        self.spec = spec

    async def startup(self) -> None:
        try:
            await super().startup()
        except CONNECTION_ERRORS as error:
            await self._close_quietly()
            raise unreachable(self.spec, error) from None

    async def _close_quietly(self) -> None:
        for closable in (self.write_conn, self.read_conn):
            if closable is not None:
                await closable.close()
        self.write_conn = self.read_conn = None
        self.write_channel = self.read_channel = None
        await self.result_backend.shutdown()


def build(spec: BrokerSpec) -> AsyncBroker:
    options = RabbitMQOptions.model_validate(dict(spec.options))
    broker: AsyncBroker = RabbitMQBroker(spec, options)
    if spec.result_backend:
        backend: RabbitMQResultBackend[Any] = RabbitMQResultBackend(
            str(spec.url), f"{options.exchange}.results.", options.result_ttl, options.connect_timeout
        )
        broker = broker.with_result_backend(backend)
    return broker


async def ping(spec: BrokerSpec) -> None:
    import aio_pika

    options = RabbitMQOptions.model_validate(dict(spec.options))
    try:
        connection = await aio_pika.connect(spec.url, timeout=options.connect_timeout)
    except CONNECTION_ERRORS as error:
        raise unreachable(spec, error) from None
    await connection.close()
