"""RabbitMQ driver: taskiq-aio-pika with a DIRECT exchange, durable queues and persistent messages.

taskiq-aio-pika's default TOPIC exchange drops a job routed to a queue nobody
declared without any error, and with one queue configured it ignores the
job's queue altogether. Here every job is routed by its queue name on a DIRECT
exchange, the target queue is declared (durable) before the first job is sent
to it, so the job waits there until a worker comes, and publishing is
mandatory with publisher confirms: a job RabbitMQ cannot route is an error at
dispatch, never a silent loss. A job is acknowledged after it ran, so a killed
worker's job is delivered again.

Delays use one small delay queue per (queue, delay in whole seconds): its
``x-message-ttl`` is the delay and it dead-letters into the target queue. A
queue-wide TTL keeps expiry in order (per-message TTLs only expire at the head
of a queue, so a long delay would hold back a short one), the job stays in
RabbitMQ while it waits, and no plugin is needed.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from typing import Any, cast

from aio_pika import DeliveryMode, ExchangeType, Message
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aio_pika.exceptions import AMQPConnectionError
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed
from taskiq import AsyncBroker, AsyncResultBackend, BrokerMessage
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue, QueueType

from drivers import labels
from drivers.delay import seconds_until_due
from drivers.errors import QueueConfigurationError
from drivers.options import RabbitMQOptions
from drivers.poison import RejectsPoison
from drivers.rabbitmq_results import RabbitMQResultBackend
from drivers.reach import unreachable
from drivers.spec import BrokerSpec

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (AMQPConnectionError, OSError, asyncio.TimeoutError)


def dead_letter_queue_name(options: RabbitMQOptions) -> str:
    """One dead-letter queue per exchange and queue type: RabbitMQ refuses to re-declare a queue with another
    type, so connections with classic queues (e.g. for priorities) and quorum ones can share an exchange."""
    suffix = "" if options.queue_type == "quorum" else f".{options.queue_type}"
    return f"{options.exchange}.dead_letter{suffix}"


class RabbitMQBroker(RejectsPoison, AioPikaBroker):
    def __init__(self, spec: BrokerSpec, options: RabbitMQOptions) -> None:
        self.queue_type = QueueType(options.queue_type)
        self.max_priority = options.max_priority
        super().__init__(
            url=spec.url,
            qos=options.qos,
            exchange=Exchange(name=options.exchange, type=ExchangeType.DIRECT),
            task_queues=[self._queue(spec.queue)],
            dead_letter_queue=Queue(name=dead_letter_queue_name(options), type=self.queue_type),
            timeout=options.connect_timeout,
            # Named, so an operator (or a test) can find this process's connections in rabbitmqctl.
            client_properties={"connection_name": f"fastapi-startkit-queue {spec.name}/{spec.queue} pid {os.getpid()}"},
        )
        self.spec = spec
        self.exchange_name = options.exchange
        self._declared: set[str] = set()
        self._exchange_cache: tuple[AbstractChannel, AbstractExchange] | None = None

    def _queue(self, name: str) -> Queue:
        return Queue(name=name, type=self.queue_type, max_priority=self.max_priority)

    def listen_to(self, queues: Sequence[str]) -> None:
        """Consume these queues (call before startup)."""
        self._task_queues = [self._queue(name) for name in queues]

    async def startup(self) -> None:
        try:
            await super().startup()
        except CONNECTION_ERRORS as error:
            await self._close_quietly()
            raise unreachable(self.spec, error) from None
        except ChannelPreconditionFailed as error:
            await self._close_quietly()
            raise self._precondition_error(error) from None
        self._declared = {queue.name for queue in self._task_queues}

    def _precondition_error(self, error: ChannelPreconditionFailed) -> QueueConfigurationError:
        return QueueConfigurationError(
            f"RabbitMQ refused to declare a queue of connection '{self.spec.name}': {error}. A queue or exchange "
            "of that name already exists with other arguments (RabbitMQ never changes them). Delete it if it "
            "holds nothing you need (rabbitmqctl delete_queue NAME), or match it: QUEUE_CONNECTIONS__"
            f"{self.spec.name.upper()}__OPTIONS__QUEUE_TYPE=classic|quorum, or pick another queue name."
        )

    async def _close_quietly(self) -> None:
        for closable in (self.write_conn, self.read_conn):
            if closable is not None:
                await closable.close()
        self.write_conn = self.read_conn = None
        self.write_channel = self.read_channel = None
        await self.result_backend.shutdown()

    def _channel(self) -> AbstractChannel:
        if self.write_channel is None:
            raise RuntimeError(
                f"Queue connection '{self.spec.name}' is not started: call `await broker.startup()` "
                "(the web app's lifespan does it for you) before dispatching."
            )
        return self.write_channel

    async def _exchange_of(self, channel: AbstractChannel) -> AbstractExchange:
        """The exchange object, made once per channel (taskiq-aio-pika makes one per message)."""
        cached = self._exchange_cache
        if cached is None or cached[0] is not channel:
            cached = self._exchange_cache = (channel, await channel.get_exchange(self.exchange_name, ensure=False))
        return cached[1]

    async def _ensure_queue(self, name: str) -> None:
        """Declare a target queue once, bound like the worker's, so a job sent before any worker waits."""
        if name in self._declared:
            return
        try:
            await self._declare_queues_named(self._channel(), [name])
        except ChannelPreconditionFailed as error:
            raise self._precondition_error(error) from None
        self._declared.add(name)

    async def _declare_queues_named(self, channel: AbstractChannel, names: Sequence[str]) -> None:
        saved = self._task_queues
        self._task_queues = [self._queue(name) for name in names]
        try:
            await self._declare_queues(channel)
        finally:
            self._task_queues = saved

    async def _delay_queue_for(self, target: str, seconds: int) -> str:
        name = f"{self.exchange_name}.delay.{target}.{seconds}s"
        if name not in self._declared:
            await self._channel().declare_queue(
                name,
                durable=True,
                arguments={
                    "x-queue-type": "classic",
                    "x-message-ttl": seconds * 1000,
                    "x-dead-letter-exchange": self.exchange_name,
                    "x-dead-letter-routing-key": target,
                    "x-expires": seconds * 1000 + 600_000,
                },
            )
            self._declared.add(name)
        return name

    async def _counted(self, queue: str, clear: bool) -> int:
        self._channel()  # not started: the clear error
        connection = cast(AbstractRobustConnection, self.write_conn)
        # A channel of its own: asking for a queue that does not exist closes the channel.
        async with connection.channel() as channel:
            try:
                declared = await channel.declare_queue(queue, passive=True)
            except ChannelNotFoundEntity:
                return 0
            if clear:
                return int((await declared.purge()).message_count or 0)
            return int(declared.declaration_result.message_count or 0)

    async def size(self, queue: str) -> int:
        """Jobs ready in ``queue``; RabbitMQ does not count jobs running now or waiting in a delay queue."""
        return await self._counted(queue, clear=False)

    async def clear(self, queue: str) -> int:
        """Purge the ready jobs of ``queue``; returns how many."""
        return await self._counted(queue, clear=True)

    async def kick(self, message: BrokerMessage) -> None:
        target = message.labels.get(labels.QUEUE) or self.spec.queue
        await self._ensure_queue(target)
        channel = self._channel()
        priority = message.labels.get(labels.PRIORITY)
        amqp_message = Message(
            body=message.message,
            # Labels travel as headers, as taskiq-aio-pika sends them.
            headers={"task_id": message.task_id, "task_name": message.task_name, **message.labels},
            delivery_mode=DeliveryMode.PERSISTENT,
            priority=int(priority) if priority not in (None, "") else None,
        )
        remaining = seconds_until_due(message)
        if remaining is None:
            await (await self._exchange_of(channel)).publish(amqp_message, routing_key=target, mandatory=True)
            return
        delay_queue = await self._delay_queue_for(target, max(1, math.ceil(remaining)))
        await channel.default_exchange.publish(amqp_message, routing_key=delay_queue, mandatory=True)


def build(spec: BrokerSpec) -> AsyncBroker:
    broker: AsyncBroker = RabbitMQBroker(spec, RabbitMQOptions.model_validate(dict(spec.options)))
    return broker.with_result_backend(results(spec)) if spec.result_backend else broker


def results(spec: BrokerSpec) -> AsyncResultBackend[Any]:
    """This connection's result store: one small expiring queue per result (see ``rabbitmq_results``)."""
    options = RabbitMQOptions.model_validate(dict(spec.options))
    return RabbitMQResultBackend(
        str(spec.url),
        f"{options.exchange}.results.",
        options.result_ttl,
        options.connect_timeout,
        durable=options.result_durable,
    )


async def ping(spec: BrokerSpec) -> None:
    import aio_pika

    options = RabbitMQOptions.model_validate(dict(spec.options))
    try:
        connection = await aio_pika.connect(spec.url, timeout=options.connect_timeout)
    except CONNECTION_ERRORS as error:
        raise unreachable(spec, error) from None
    await connection.close()
