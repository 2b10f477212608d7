"""NATS driver: pull-based JetStream, one durable consumer per queue, work-queue retention.

TaskIQ's core ``NatsBroker`` has no acknowledgements and fans every job out to
every worker; the push JetStream broker refuses a second worker. Pull
consumers share the work, and a work-queue stream deletes a job once it is
acknowledged, so acked jobs do not pile up.

nats-py keeps retrying a server that is down (about two minutes with its
defaults) before it fails; startup first makes one quick attempt so an
unreachable server is a clear error in seconds, then connects with unlimited
reconnects so a running worker survives a server restart.
"""

from __future__ import annotations

import logging
from typing import Any

import nats
from nats.errors import Error as NatsError
from nats.errors import NoServersError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from taskiq import AsyncBroker, BrokerMessage
from taskiq.serializers import JSONSerializer
from taskiq_nats import NATSObjectStoreResultBackend, PullBasedJetStreamBroker

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
        subject = f"{options.subject_prefix}.{spec.queue}"
        durable = f"workers_{spec.queue}"
        super().__init__(
            servers=str(spec.url),
            subject=subject,
            stream_name=options.stream,
            durable=durable,
            stream_config=StreamConfig(
                name=options.stream,
                subjects=[f"{options.subject_prefix}.>"],
                retention=RetentionPolicy.WORK_QUEUE,
            ),
            consumer_config=ConsumerConfig(
                durable_name=durable,
                filter_subject=subject,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=options.ack_wait,
            ),
            # A bounded fetch: cancelling an unbounded one at shutdown hangs the worker.
            pull_consume_timeout=options.fetch_timeout,
            **connect_options(spec, options),
        )
        self.spec = spec
        self.options = options

    async def startup(self) -> None:
        await ping_with(self.spec, self.options)
        try:
            await super().startup()
        except CONNECTION_ERRORS as error:
            raise unreachable(self.spec, error) from None

    async def kick(self, message: BrokerMessage) -> None:
        queue = message.labels.get("queue_name")
        subject = f"{self.options.subject_prefix}.{queue}" if queue else self.subject
        await self.js.publish(subject, payload=message.message, headers=message.labels)


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
