"""NATS driver: pull-based JetStream, one durable consumer per queue, work-queue retention.

TaskIQ's core ``NatsBroker`` has no acknowledgements and fans every job out to
every worker; the push JetStream broker refuses a second worker. Pull
consumers share the work, and a work-queue stream deletes a job once it is
acknowledged, so acked jobs do not pile up.

nats-py keeps retrying a server that is down (about two minutes with its
defaults) before it fails; startup first makes one quick attempt so an
unreachable server is a clear error in seconds, then connects with unlimited
reconnects so a running worker survives a server restart.

Delays: JetStream 2.9 cannot hold a message back, so a delayed job is
published at once with an ``eta`` header, and a worker that fetches it before
it is due hands it back with ``nak(delay=remaining)``: the server redelivers it
when due. The job stays in the stream meanwhile, so it survives worker
restarts. A worker may serve several queues (one durable consumer each),
polled in the order given.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import nats
from nats.errors import Error as NatsError
from nats.errors import NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from taskiq import AckableMessage, AsyncBroker, BrokerMessage
from taskiq.serializers import JSONSerializer
from taskiq_nats import NATSObjectStoreResultBackend, PullBasedJetStreamBroker

from drivers.delay import ETA_LABEL, eta_remaining, seconds_until_due
from drivers.options import NatsOptions
from drivers.reach import scrub, unreachable
from drivers.spec import BrokerSpec

logger = logging.getLogger("queue_manager.drivers.nats")

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (NoServersError, NatsError, OSError, TimeoutError)


def error_logger(spec: BrokerSpec) -> Any:
    """nats-py prints a traceback for every failed attempt by default; log one line instead."""

    async def log_error(error: Exception) -> None:
        logger.warning("Queue connection '%s' (nats): %s", spec.name, scrub(str(error) or repr(error), spec.url))

    return log_error


def connect_options(spec: BrokerSpec, options: NatsOptions) -> dict[str, Any]:
    return {
        "connect_timeout": options.connect_timeout,
        "max_reconnect_attempts": -1,
        "error_cb": error_logger(spec),
    }


class NatsQueueBroker(PullBasedJetStreamBroker):
    def __init__(self, spec: BrokerSpec, options: NatsOptions) -> None:
        self.spec = spec
        self.options = options
        self.queues = [spec.queue]
        super().__init__(
            servers=str(spec.url),
            subject=self.subject_for(spec.queue),
            stream_name=options.stream,
            durable=self.durable_for(spec.queue),
            stream_config=StreamConfig(
                name=options.stream,
                subjects=[f"{options.subject_prefix}.>"],
                retention=RetentionPolicy.WORK_QUEUE,
            ),
            # A bounded fetch: cancelling an unbounded one at shutdown hangs the worker.
            pull_consume_batch=options.fetch_batch,
            pull_consume_timeout=options.fetch_timeout,
            **connect_options(spec, options),
        )
        self.subscriptions: list[Any] = []

    def subject_for(self, queue: str) -> str:
        return f"{self.options.subject_prefix}.{queue}"

    @staticmethod
    def durable_for(queue: str) -> str:
        return f"workers_{queue}"

    def consumer_config_for(self, queue: str) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable_for(queue),
            filter_subject=self.subject_for(queue),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.options.ack_wait,
        )

    def listen_to(self, queues: Sequence[str]) -> None:
        """Serve these queues, first one first (call before startup)."""
        self.queues = list(queues)

    async def startup(self) -> None:
        await ping_with(self.spec, self.options)
        try:
            await super().startup()
        except CONNECTION_ERRORS as error:
            raise unreachable(self.spec, error) from None

    async def _startup_consumer(self) -> None:
        self.subscriptions = []
        for queue in self.queues:
            config = self.consumer_config_for(queue)
            await self.js.add_consumer(stream=self.options.stream, config=config)
            subscription = await self.js.pull_subscribe(
                subject=self.subject_for(queue), durable=self.durable_for(queue), config=config
            )
            self.subscriptions.append(subscription)
        self.consumer = self.subscriptions[0]

    async def kick(self, message: BrokerMessage) -> None:
        queue = message.labels.get("queue_name")
        subject = self.subject_for(queue) if queue else self.subject
        headers = {ETA_LABEL: str(message.labels[ETA_LABEL])} if seconds_until_due(message) else None
        await self.js.publish(subject, payload=message.message, headers=headers)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        timeout = self.pull_consume_timeout if len(self.subscriptions) == 1 else 0.2
        while True:
            for subscription in self.subscriptions:
                try:
                    fetched = await subscription.fetch(batch=self.pull_consume_batch, timeout=timeout)
                except NatsTimeoutError:
                    continue
                except NatsError as error:
                    logger.warning("Queue connection '%s' (nats) fetch failed: %s", self.spec.name, error)
                    await asyncio.sleep(1)
                    continue
                for message in fetched:
                    remaining = eta_remaining((message.headers or {}).get(ETA_LABEL))
                    if remaining is not None:
                        await message.nak(delay=remaining)
                        continue
                    yield AckableMessage(data=message.data, ack=message.ack)
                break  # after a delivery, start again from the first (highest-priority) queue


def build(spec: BrokerSpec) -> AsyncBroker:
    options = NatsOptions.model_validate(dict(spec.options))
    broker: AsyncBroker = NatsQueueBroker(spec, options)
    if spec.result_backend:
        backend: NATSObjectStoreResultBackend[Any] = NATSObjectStoreResultBackend(
            servers=str(spec.url),
            bucket_name=options.result_bucket,
            serializer=JSONSerializer(),
            **connect_options(spec, options),
        )
        broker = broker.with_result_backend(backend)
    return broker


async def ping_with(spec: BrokerSpec, options: NatsOptions) -> None:
    try:
        client = await nats.connect(
            str(spec.url),
            connect_timeout=options.connect_timeout,
            max_reconnect_attempts=1,
            allow_reconnect=False,
            error_cb=error_logger(spec),
        )
    except CONNECTION_ERRORS as error:
        raise unreachable(spec, error) from None
    await client.close()


async def ping(spec: BrokerSpec) -> None:
    await ping_with(spec, NatsOptions.model_validate(dict(spec.options)))
