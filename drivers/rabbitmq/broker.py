"""RabbitMQ driver: taskiq-aio-pika with a DIRECT exchange, durable queues and persistent messages.

taskiq-aio-pika's default TOPIC exchange drops a job routed to a queue nobody
declared without any error, and with one queue configured it ignores the
job's queue altogether. Here every job is routed by its queue name on a DIRECT
exchange, the target queue is declared (durable) before the first job is sent
to it, so the job waits there until a worker comes, and publishing is
mandatory with publisher confirms: a job RabbitMQ cannot route is an error at
dispatch, never a silent loss. A job is acknowledged after it ran, so a killed
worker's job is delivered again.

Delays wait in a bounded set of delay queues shared by every queue of the
exchange (``delay_queues``): a queue-wide ``x-message-ttl`` keeps expiry in
order, the job stays in RabbitMQ while it waits, and no plugin is needed. A job
that arrives before its ``eta`` (it waited in a shorter bucket, or its delay is
longer than RabbitMQ's TTL limit) is sent back by the worker for the rest, so
no job runs early; a job whose ``eta`` header is not a usable time is a poison
message.

A bad dispatch never breaks the good ones sent with it: names RabbitMQ refuses
(``amq.*``), impossible delays and priorities are refused before anything is
sent, and queues are declared on a short-lived channel of their own, so a
refused declaration (PRECONDITION_FAILED, ACCESS_REFUSED) cannot close the
channel every publish shares. A dispatch waits at most ``send_timeout``
seconds (a partition, a stuck server) and then raises BrokerUnreachableError.

A connection may list several nodes of a cluster (``amqp://u:p@h1/vh,amqp://u:p@h2/vh``):
it connects to the first that answers and reconnects through the list
(``connect``). A worker consumes its queues through one inbox (``inbox``), drained by the consume loop
every broker of ours runs (``common.consuming``). Quorum queues (the default ``queue_type``) are
replicated by the cluster, so a job survives the loss of a minority of nodes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any, ClassVar, cast

from aio_pika import DeliveryMode, ExchangeType, Message
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import AMQPConnectionError
from aiormq.exceptions import (
    ChannelInvalidStateError,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    DeliveryError,
)
from taskiq import AckableMessage, AsyncBroker, AsyncResultBackend, BrokerMessage
from taskiq_aio_pika import AioPikaBroker, Exchange, Queue, QueueType
from taskiq_aio_pika.exceptions import NoStartupError

from drivers.base import labels, reach
from drivers.base.contract import QueueCounts
from drivers.base.delay import MIN_DELAY, due_at, eta_remaining
from drivers.base.errors import (
    BrokerAuthenticationError,
    InvalidDelayError,
    QueueConfigurationError,
)
from drivers.base.names import check_queue_name
from drivers.base.spec import BrokerSpec
from drivers.common.consuming import Consuming, Taken
from drivers.common.deadlines import SendDeadlines
from drivers.common.pausing import CHECK_EVERY, PausedQueues
from drivers.common.poison import RejectedDelivery
from drivers.rabbitmq import delay_queues
from drivers.rabbitmq.connect import connect_first, refusal, unreachable, urls_of
from drivers.rabbitmq.control import RabbitMQControl
from drivers.rabbitmq.declare import Declarations
from drivers.rabbitmq.inbox import Inbox
from drivers.rabbitmq.names import name_problem
from drivers.rabbitmq.options import RabbitMQOptions
from drivers.rabbitmq.results import RabbitMQResultBackend

logger = logging.getLogger("queue_manager.drivers.rabbitmq")

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (AMQPConnectionError, OSError, asyncio.TimeoutError)
# The connection is being re-established: nothing was sent.
NOT_SENT_ERRORS: tuple[type[BaseException], ...] = (AMQPConnectionError, ChannelInvalidStateError)
MAX_PRIORITY = 255  # AMQP's priority is one octet
RETRY_PAUSE = 1.0  # before a job that could not be sent back to wait is handed to the next delivery


def check_queue(queue: str) -> str:
    return check_queue_name(queue, name_problem, "rabbitmq")


def priority_of(message: BrokerMessage) -> int | None:
    """The job's ``priority`` label as AMQP takes it (0-255); an error for anything else, before sending."""
    raw = message.labels.get(labels.PRIORITY)
    if raw in (None, ""):
        return None
    try:
        priority = int(raw)
    except (TypeError, ValueError):
        priority = -1
    if not 0 <= priority <= MAX_PRIORITY:
        raise QueueConfigurationError(
            f"A job's priority label must be a whole number from 0 to {MAX_PRIORITY} (AMQP's range), got "
            f"{str(raw)[:20]!r}."
        )
    return priority


def dead_letter_queue_name(options: RabbitMQOptions) -> str:
    """One dead-letter queue per exchange and queue type: RabbitMQ refuses to re-declare a queue with another
    type, so connections with classic queues (e.g. for priorities) and quorum ones can share an exchange."""
    suffix = "" if options.queue_type == "quorum" else f".{options.queue_type}"
    return f"{options.exchange}.dead_letter{suffix}"


class RabbitMQBroker(Consuming[AbstractIncomingMessage], AioPikaBroker):
    connection_errors: ClassVar[tuple[type[BaseException], ...]] = (*CONNECTION_ERRORS, ChannelInvalidStateError)
    reconnect_backoff: ClassVar[tuple[float, float]] = (0.5, 5.0)  # aio-pika reconnects by itself meanwhile

    def __init__(self, spec: BrokerSpec, options: RabbitMQOptions) -> None:
        self.queue_type = QueueType(options.queue_type)
        self.max_priority = options.max_priority
        super().__init__(
            url=urls_of(spec.url)[0],
            qos=options.qos,
            exchange=Exchange(name=options.exchange, type=ExchangeType.DIRECT),
            task_queues=[self._queue(check_queue(spec.queue))],
            dead_letter_queue=Queue(name=dead_letter_queue_name(options), type=self.queue_type),
            timeout=options.connect_timeout,
            # Named, so an operator (or a test) can find this process's connections in rabbitmqctl.
            client_properties={"connection_name": f"fastapi-startkit-queue {spec.name}/{spec.queue} pid {os.getpid()}"},
        )
        self.spec = spec
        self.pausing = PausedQueues(self)
        self.exchange_name = options.exchange
        self.send_timeout = options.send_timeout
        self.deadlines = SendDeadlines(options.send_timeout)
        self.declarations = Declarations()
        self._exchange_cache: tuple[AbstractChannel, AbstractExchange] | None = None
        self.connect_timeout = options.connect_timeout
        self.queues = [spec.queue]
        self.inbox = Inbox()
        self._consumable: dict[str, tuple[AbstractQueue, dict[str, Any]]] | None = None

    def _queue(self, name: str) -> Queue:
        return Queue(name=name, type=self.queue_type, max_priority=self.max_priority)

    def listen_to(self, queues: Sequence[str]) -> None:
        """Consume these queues (call before startup)."""
        self._task_queues = [self._queue(check_queue(name)) for name in queues]
        self.queues = [queue.name for queue in self._task_queues]

    @cached_property
    def control_state(self) -> RabbitMQControl:
        """Restart signal and paused queues: a stream per value beside the exchange (``<exchange>.control <name>``)."""
        return RabbitMQControl(self)

    async def startup(self) -> None:
        """taskiq-aio-pika's startup, with connections through ``connect_first`` (its ``connect_robust`` takes one
        URL) and a publishing channel that raises for a returned job (taskiq-aio-pika's lets RabbitMQ return an
        unroutable job unnoticed)."""
        try:
            await AsyncBroker.startup(self)  # middlewares and the result backend, as AioPikaBroker.startup does
            self.write_conn = await self._connect()
            self.write_channel = await self.write_conn.channel(on_return_raises=True)
            if self.is_worker_process:
                self.read_conn = await self._connect()
                self.read_channel = await self.read_conn.channel()
            await self._declare_exchanges()
            await self._declare_queues(self.write_channel)
        except CONNECTION_ERRORS as error:
            await self._close_quietly()
            raise unreachable(self.spec, error) from None
        except ChannelPreconditionFailed as error:
            await self._close_quietly()
            raise self._precondition_error(error) from None
        self.declarations.mark(*(queue.name for queue in self._task_queues))

    async def _connect(self) -> AbstractRobustConnection:
        label = f"Queue connection '{self.spec.name}' (rabbitmq)"
        kwargs = self.connection_options()
        connection = await connect_first(self.spec.url, connect_timeout=self.connect_timeout, label=label, **kwargs)
        return cast(AbstractRobustConnection, connection)

    def connection_options(self) -> dict[str, Any]:
        """What every connection of this broker is opened with besides its URL (its ``client_properties``)."""
        return {key: value for key, value in self._conn_kwargs.items() if key != "timeout"}

    def _precondition_error(self, error: ChannelPreconditionFailed) -> QueueConfigurationError:
        return QueueConfigurationError(
            f"RabbitMQ refused to declare a queue of connection '{self.spec.name}': {error}. A queue or exchange "
            "of that name already exists with other arguments (RabbitMQ never changes them). Delete it if it "
            f"holds nothing you need (rabbitmqctl delete_queue NAME), or match it: "
            f"{self.spec.setting('options', 'queue_type')}=classic|quorum, or pick another queue name."
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

    async def _ready_channel(self) -> AbstractChannel:
        """The publishing channel, once aio-pika has re-opened it (after a lost connection or a closed channel)."""
        channel = self._channel()
        if channel.is_closed and isinstance(channel, AbstractRobustChannel):
            await channel.ready()
        return channel

    async def _exchange_of(self, channel: AbstractChannel, name: str | None = None) -> AbstractExchange:
        """The exchange object, made once per channel (taskiq-aio-pika makes one per message)."""
        if name is not None:
            return await channel.get_exchange(name, ensure=False)
        cached = self._exchange_cache
        if cached is None or cached[0] is not channel:
            cached = self._exchange_cache = (channel, await channel.get_exchange(self.exchange_name, ensure=False))
        return cached[1]

    # -- declaring, on channels of their own (rabbitmq_declare) -------------------------------------------------
    async def _declare_apart(self, declare: Callable[[AbstractChannel], Awaitable[None]]) -> None:
        """``declare`` on a short-lived channel: a refusal closes that channel, not the publishing one."""
        self._channel()  # not started: the clear error
        connection = cast(AbstractRobustConnection, self.write_conn)
        try:
            async with connection.channel(publisher_confirms=False) as channel:
                await declare(channel)
        except ChannelPreconditionFailed as error:
            raise self._precondition_error(error) from None

    async def _ensure_queue(self, name: str) -> None:
        """Declare a target queue once, bound like the worker's, so a job sent before any worker waits."""

        async def declare(channel: AbstractChannel) -> None:
            await self._declare_queues_named(channel, [name])

        await self.declarations.once(name, lambda: self._declare_apart(declare))

    async def _declare_queues_named(self, channel: AbstractChannel, names: Sequence[str]) -> None:
        saved = self._task_queues
        self._task_queues = [self._queue(name) for name in names]
        try:
            await self._declare_queues(channel)
        finally:
            self._task_queues = saved

    async def _delay_queue_for(self, bucket: int) -> None:
        """The bucket's delay queue and its binding to the delay exchange, declared again every few minutes so
        its ``x-expires`` never deletes it while a job waits in it."""
        exchange = delay_queues.exchange_name(self.exchange_name)
        name = delay_queues.queue_name(self.exchange_name, bucket)

        async def declare(channel: AbstractChannel) -> None:
            await channel.declare_exchange(exchange, ExchangeType.HEADERS, durable=True)
            queue = await channel.declare_queue(
                name, durable=True, arguments=delay_queues.queue_arguments(self.exchange_name, bucket)
            )
            await queue.bind(exchange, arguments=delay_queues.binding(bucket))

        await self.declarations.once(name, lambda: self._declare_apart(declare), delay_queues.REDECLARE_EVERY)

    # -- sending ----------------------------------------------------------------------------------------------
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
        # Everything RabbitMQ would refuse (closing the channel every publish shares) is refused here first.
        target = check_queue(message.labels.get(labels.QUEUE) or self.spec.queue)
        priority = priority_of(message)
        due = due_at(message)
        # Labels travel as headers, as taskiq-aio-pika sends them; a delayed job's due time is absolute.
        headers: dict[str, Any] = {"task_id": message.task_id, "task_name": message.task_name, **message.labels}
        if due is not None and due - time.time() > MIN_DELAY:
            headers[labels.ETA] = str(due)
        else:
            headers.pop(labels.ETA, None)
            due = None
        amqp_message = Message(
            body=message.message, headers=headers, delivery_mode=DeliveryMode.PERSISTENT, priority=priority
        )
        await self._within_send_timeout(self._send(target, amqp_message, due))

    async def _within_send_timeout(self, sending: Awaitable[None]) -> None:
        try:
            await self.deadlines.run(sending)
        except TimeoutError:
            raise unreachable(
                self.spec,
                reach.NoAnswer(
                    f"no answer within send_timeout={self.send_timeout:g}s (the job may or may not have reached "
                    "RabbitMQ: check before sending it again; "
                    f"{self.spec.setting('options', 'send_timeout')} sets the wait)"
                ),
            ) from None
        except NOT_SENT_ERRORS as error:
            raise unreachable(self.spec, error) from None

    async def _send(self, target: str, amqp_message: Message, due: float | None) -> None:
        await self._ensure_queue(target)
        if due is not None:
            return await self._send_delayed(target, amqp_message, due)
        try:
            await self._publish(target, amqp_message)
        except DeliveryError:
            # Returned unroutable (so not stored): the queue was deleted since we declared it. Declare it again
            # and send once more; a second return is an error, never a silent loss.
            self.declarations.forget(target)
            await self._ensure_queue(target)
            await self._publish(target, amqp_message)

    async def _publish(self, target: str, amqp_message: Message) -> None:
        channel = await self._ready_channel()
        await (await self._exchange_of(channel)).publish(amqp_message, routing_key=target, mandatory=True)

    async def _send_delayed(self, target: str, amqp_message: Message, due: float) -> None:
        bucket = delay_queues.bucket_for(due - time.time())
        await self._delay_queue_for(bucket)
        amqp_message.headers[delay_queues.HEADER] = str(bucket)
        channel = await self._ready_channel()
        exchange = await self._exchange_of(channel, delay_queues.exchange_name(self.exchange_name))
        try:
            await exchange.publish(amqp_message, routing_key=target, mandatory=True)
        except DeliveryError:
            self.declarations.forget(delay_queues.queue_name(self.exchange_name, bucket))
            raise

    # -- receiving (the consume loop is common.consuming's) ---------------------------------------------
    async def take(self, queues: Sequence[str]) -> list[Taken[AbstractIncomingMessage]]:
        """What RabbitMQ delivered for the queues not paused (waiting up to a second for the first): a job not due
        yet goes back to wait (its ``eta`` header), one whose header is no time is poison."""
        await self.inbox.follow(await self._consumable_queues(), queues)
        active, taken = set(queues), list[Taken[AbstractIncomingMessage]]()
        for queue, message in await self.inbox.get(self._qos, CHECK_EVERY):
            if queue not in active:  # delivered before its queue was paused
                await message.nack(requeue=True)
                continue
            try:
                remaining = eta_remaining((message.headers or {}).get(labels.ETA))
            except InvalidDelayError as error:
                bad = f"header 'eta': {error}"
                taken.append(
                    (message, RejectedDelivery(data=message.body, ack=message.ack, reason="bad label", error=bad))
                )
                continue
            if remaining is None:
                taken.append((message, AckableMessage(data=message.body, ack=message.ack)))
            else:
                await self._wait_again(message, time.time() + remaining)
        return taken

    def refused(self, error: BaseException) -> BrokerAuthenticationError | None:
        return refusal(self.spec, error)

    async def rest(self) -> None:
        """All this worker's queues are paused: no consumer left, and what was delivered goes back now."""
        await self.inbox.follow(await self._consumable_queues(), [])
        await self.give_back(self.inbox.drain())
        await super().rest()

    async def _consumable_queues(self) -> dict[str, tuple[AbstractQueue, dict[str, Any]]]:
        """The worker's queues, declared on the reading channel (once), with its prefetch."""
        if self._consumable is None:
            if self.read_channel is None:
                raise NoStartupError("Call startup before starting listening.")
            await self.read_channel.set_qos(prefetch_count=self._qos)
            declared = await self._declare_queues(self.read_channel)
            self._consumable = {queue.name: (queue, arguments) for queue, arguments in declared}
        return self._consumable

    async def give_back(self, held: list[AbstractIncomingMessage]) -> None:
        """Delivered and never started: back to their queue now (a closed channel requeues them anyway)."""
        for message in held:
            try:
                await message.nack(requeue=True)
            except Exception as error:  # the channel is gone: RabbitMQ requeued it already
                logger.debug("could not hand back a job: %s", error)

    async def shutdown(self) -> None:
        await self.give_back_taken()
        await self.give_back(self.inbox.drain())
        if "control_state" in self.__dict__:  # its reads have a connection of their own
            await self.control_state.close()
        await super().shutdown()

    async def counts(self, queue: str) -> QueueCounts:
        """Ready jobs only: RabbitMQ tells no per-queue count of unacknowledged jobs over AMQP, and delayed
        jobs wait in delay queues shared by every queue."""
        return QueueCounts(await self.size(queue), None, None)

    async def _wait_again(self, message: AbstractIncomingMessage, due: float) -> None:
        """A job that came before its eta: published to wait for the rest, then acknowledged (at least once)."""
        target = message.routing_key or self.spec.queue
        again = Message(
            body=message.body,
            headers=dict(message.headers or {}),
            delivery_mode=DeliveryMode.PERSISTENT,
            priority=message.priority,
        )
        try:
            await self._within_send_timeout(self._send_delayed(target, again, due))
        except Exception as error:  # RabbitMQ is in trouble: give it back, and do not spin on it
            logger.warning("Queue connection '%s' could not hold back an early job: %s", self.spec.name, error)
            await asyncio.sleep(RETRY_PAUSE)
            await message.nack(requeue=True)
            return
        await message.ack()


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
        label=f"Queue connection '{spec.name}' (rabbitmq results)",
    )


async def ping(spec: BrokerSpec) -> None:
    options = RabbitMQOptions.model_validate(dict(spec.options))
    label = f"Queue connection '{spec.name}' (rabbitmq)"
    try:
        connection = await connect_first(spec.url, connect_timeout=options.connect_timeout, label=label, robust=False)
    except CONNECTION_ERRORS as error:
        raise unreachable(spec, error) from None
    await connection.close()
