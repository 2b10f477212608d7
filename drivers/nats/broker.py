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

A job that runs longer than ``ack_wait`` is not handed to a second worker
while it still runs: from delivery until it is acknowledged the worker sends
an in-progress signal every ``ack_wait / 3`` seconds. If the worker dies, the
signals stop and the job is redelivered ``ack_wait`` seconds later.

A pull takes no more jobs than the worker has free slots (and, under
``--max-jobs``, jobs left to run): ``common.in_flight``, as on the Redis
drivers. Jobs pulled and waiting for a slot get the in-progress signal too
(else a batch waiting behind long jobs was redelivered, and run twice, while
its worker lived), and a worker that stops hands back the ones it never
started (``nak``) so they run now, not after ``ack_wait``.

Dispatch during an outage *waits*, at most ``send_timeout`` seconds: a job is
never handed to nats-py while it is disconnected (nats-py would buffer it and
send it after the reconnect, after the dispatch had already failed). If the
server is back in time the job is sent once; if not, ``BrokerUnreachableError``
says it was **not sent**, and it is not sent later either. When the server
took the job but no acknowledgement came back in time (a partition), the
error says the job **may** have been stored: only then can a retry duplicate it.

A message whose ``eta`` header is not a usable time is a poison message
(recorded as failed and acknowledged), not a crash of the worker.

Several servers (``nats://h1:4222,nats://h2:4222``) are handed to nats-py as its
server pool: it connects to one of them and, when that one goes away, to the
next (and to the servers the cluster announces). ``replicas`` keeps the stream
and the buckets on that many servers of a JetStream cluster (``replicas``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any, ClassVar

from nats.errors import AuthorizationError, ConnectionClosedError, NoServersError, OutboundBufferLimitError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError
from taskiq import AckableMessage, AsyncBroker, AsyncResultBackend, BrokerMessage
from taskiq_nats import PullBasedJetStreamBroker

from drivers.base import labels, reach
from drivers.base.contract import QueueCounts
from drivers.base.delay import MIN_DELAY, due_at, eta_remaining
from drivers.base.errors import (
    BrokerAuthenticationError,
    BrokerUnreachableError,
    InvalidDelayError,
    QueueConfigurationError,
)
from drivers.base.names import check_queue_name
from drivers.base.spec import BrokerSpec
from drivers.base.urls import host_port, split_urls
from drivers.common.consuming import Consuming, Taken
from drivers.common.in_flight import InFlight
from drivers.common.pausing import PausedQueues
from drivers.common.poison import RejectedDelivery
from drivers.nats import NATS
from drivers.nats.client import StrictTlsClient, TlsNotOfferedError, connect
from drivers.nats.control import NatsControl
from drivers.nats.names import CONSUMER_PREFIX, queue_problem
from drivers.nats.options import NatsOptions
from drivers.nats.replicas import about_replicas, match_replicas, refused
from drivers.nats.results import NatsResults

logger = logging.getLogger("queue_manager.drivers.nats")

STREAM_NAME_IN_USE = 10058  # JetStream: a stream of that name exists with another configuration
# Only failures to reach the server: a JetStream API error (a config conflict) must not read as "unreachable".
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    NoServersError,
    ConnectionClosedError,
    NatsTimeoutError,
    OSError,
    TimeoutError,
    TlsNotOfferedError,
)
RECONNECT_POLL = 0.05  # how often a dispatch waiting for a reconnect looks again


class NotSent(ConnectionError):
    """Why a job was not handed to nats-py at all (so it will not turn up after a reconnect either)."""


class NoAcknowledgement(reach.NoAnswer):
    """The job went out but JetStream did not acknowledge it in time: it may or may not have been stored."""


def refusal(spec: BrokerSpec, error: BaseException) -> BrokerAuthenticationError | None:
    """The server refused the user, password or token ("Authorization Violation"), as the error to raise."""
    refused = isinstance(error, AuthorizationError) or (
        isinstance(error, NatsError) and "authorization violation" in str(error).lower()
    )
    return reach.refused(spec, error, NATS) if refused else None


def unreachable(spec: BrokerSpec, error: BaseException) -> BrokerUnreachableError:
    return refusal(spec, error) or reach.unreachable(spec, error, NATS)


def error_logger(spec: BrokerSpec) -> Any:
    """nats-py prints a traceback for every failed attempt by default; log one line instead."""

    where = host_port(str(spec.url), NATS.default_port)

    async def log_error(error: Exception) -> None:
        reason = reach.scrub(str(error) or repr(error), spec.url)
        logger.warning("Queue connection '%s' (nats at %s): %s", spec.name, where, reason)

    return log_error


def servers(spec: BrokerSpec) -> list[str]:
    """The connection's servers: nats-py takes a list (a comma-separated string would be read as one URL)."""
    return split_urls(str(spec.url))


def replicas_setting(spec: BrokerSpec) -> str:
    return spec.setting("options", "replicas")


def check_queue(queue: str) -> str:
    return check_queue_name(queue, queue_problem, "nats")


def connect_options(spec: BrokerSpec, options: NatsOptions) -> dict[str, Any]:
    return {
        "connect_timeout": options.connect_timeout,
        "max_reconnect_attempts": -1,
        "error_cb": error_logger(spec),
    }


class NatsQueueBroker(Consuming[int], PullBasedJetStreamBroker):
    connection_errors: ClassVar[tuple[type[BaseException], ...]] = (NatsError,)
    reconnect_backoff: ClassVar[tuple[float, float]] = (1.0, 1.0)  # nats-py reconnects by itself meanwhile

    def __init__(self, spec: BrokerSpec, options: NatsOptions) -> None:
        self.spec = spec
        self.options = options
        self.queues = [spec.queue]
        self.pausing = PausedQueues(self)
        super().__init__(
            servers=servers(spec),
            subject=self.subject_for(spec.queue),
            stream_name=options.stream,
            durable=self.durable_for(spec.queue),
            stream_config=StreamConfig(
                name=options.stream,
                subjects=[f"{options.subject_prefix}.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                num_replicas=options.replicas or 1,
            ),
            # A bounded fetch: cancelling an unbounded one at shutdown hangs the worker.
            pull_consume_batch=options.fetch_batch,
            pull_consume_timeout=options.fetch_timeout,
            **connect_options(spec, options),
        )
        self.client = StrictTlsClient()  # type: ignore[misc]  # tls:// means TLS (see nats_client)
        self.subscriptions: list[Any] = []
        self.in_flight: InFlight[Any] = InFlight(options.ack_wait / 3, self._in_progress, options.fetch_batch)
        self._client_open = False  # nats-py cannot close a client that never connected (it asserts)

    def subject_for(self, queue: str) -> str:
        return f"{self.options.subject_prefix}.{queue}"

    @staticmethod
    def durable_for(queue: str) -> str:
        return CONSUMER_PREFIX + queue

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
        self.queues = [check_queue(queue) for queue in queues]

    @cached_property
    def control_state(self) -> NatsControl:
        """Restart signal and paused queues in the ``<stream>_control`` bucket, counters beside it."""
        return NatsControl(self)

    async def startup(self) -> None:
        await ping_with(self.spec, self.options)
        try:
            await super().startup()
            self._client_open = True
        except BaseException as error:
            await self._close_quietly()
            if isinstance(error, CONNECTION_ERRORS):
                raise unreachable(self.spec, error) from None
            raise

    async def _close_quietly(self) -> None:
        """A failed startup must not leave connections open."""
        for close in (self.client.close, self.result_backend.shutdown):
            try:
                await close()
            except Exception:  # already closed or never opened
                logger.debug("closing after a failed startup", exc_info=True)

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

    def _acknowledger(self, token: int, message: Any) -> Callable[[], Awaitable[None]]:
        """Until the job is acknowledged it is in ``in_flight``, whose heartbeat keeps it in progress."""

        async def ack() -> None:
            self.in_flight.discard(token)
            await message.ack()

        return ack

    async def _in_progress(self, messages: list[Any]) -> None:
        """The heartbeat: every job held (running, or pulled and waiting for a slot) is still in progress."""
        for message in messages:  # one acknowledged since the list was taken takes "+WPI" harmlessly
            await message.in_progress()

    async def _hand_back(self, message: Any, delay: float | None = None) -> None:
        try:
            await message.nak(delay=delay)
        except NatsError as error:  # the server redelivers it after ack_wait anyway
            logger.debug("could not hand back a job: %s", error)

    def refused(self, error: BaseException) -> BrokerAuthenticationError | None:
        return refusal(self.spec, error)

    async def give_back(self, held: list[int]) -> None:
        """Pulled jobs this worker will not start go back to the stream now, not after ``ack_wait``."""
        for token in held:
            message = self.in_flight.discard(token)
            if message is not None:
                await self._hand_back(message)

    async def _add_or_reuse_stream(self) -> None:
        """Create the stream, or check an existing one can serve as a work queue for our subjects (and give it
        the configured replicas)."""
        try:
            await self.js.add_stream(config=self.stream_config)
            return
        except BadRequestError as error:
            if error.err_code != STREAM_NAME_IN_USE:
                replicas = self.options.replicas
                if replicas is not None and replicas > 1 and about_replicas(error):
                    what = f"the stream '{self.options.stream}'"
                    raise refused(what, replicas, error, replicas_setting(self.spec)) from None
                raise
        existing = (await self.js.stream_info(self.options.stream)).config
        wanted = f"{self.options.subject_prefix}.>"
        if existing.retention != RetentionPolicy.WORK_QUEUE or wanted not in (existing.subjects or []):
            raise QueueConfigurationError(
                f"NATS stream '{self.options.stream}' already exists with retention="
                f"{getattr(existing.retention, 'value', existing.retention)} and subjects={existing.subjects}, but "
                f"queue connection '{self.spec.name}' needs retention=workqueue and subjects=['{wanted}']. "
                f"Delete it (nats stream rm {self.options.stream}) if it holds nothing you need, or use another "
                f"stream: {self.spec.setting('options', 'stream')}=<name>."
            )
        what = f"stream '{self.options.stream}'"
        await match_replicas(self.js, self.options.stream, self.options.replicas, what, replicas_setting(self.spec))

    async def shutdown(self) -> None:
        # Jobs still running here were cut off by --shutdown-timeout: left to ack_wait, since a sync task's
        # thread may still run them; those never started go back now.
        self.in_flight.stop()
        await self.give_back_taken()
        if self._client_open:
            self._client_open = False
            # TaskIQ's own shutdown first (taskiq-nats closes the client before it): the worker's last
            # throughput and metrics flush in a middleware's shutdown still needs the connection
            await AsyncBroker.shutdown(self)
            await self.client.close()
        else:  # the server was down at startup: nothing of ours is open
            await AsyncBroker.shutdown(self)

    async def size(self, queue: str) -> int:
        """Jobs in ``queue``'s subject: waiting, delayed (they wait in the stream) and running now."""
        subject = self.subject_for(queue)
        info = await self.js.stream_info(self.options.stream, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))

    async def counts(self, queue: str) -> QueueCounts:
        """From the queue's durable consumer: not yet delivered (waiting), delivered and not acknowledged
        (reserved: running, or a delayed job handed back until due). Before any worker made the consumer,
        every job in the subject is waiting."""
        try:
            info = await self.js.consumer_info(self.options.stream, self.durable_for(queue))
        except NotFoundError:
            return QueueCounts(await self.size(queue), None, 0)
        return QueueCounts(int(info.num_pending or 0), None, int(info.num_ack_pending or 0))

    async def clear(self, queue: str) -> int:
        """Purge ``queue``'s subject from the stream; returns how many jobs it held just before."""
        count = await self.size(queue)
        await self.js.purge_stream(self.options.stream, subject=self.subject_for(queue))
        return count

    async def kick(self, message: BrokerMessage) -> None:
        queue = message.labels.get(labels.QUEUE)
        subject = self.subject_for(check_queue(queue)) if queue else self.subject
        # Labels travel as headers, as taskiq-nats sends them; a delayed job's due time is absolute.
        headers = {key: str(value) for key, value in message.labels.items()}
        due = due_at(message)  # InvalidDelayError here, before anything is sent
        if due is not None and due - time.time() > MIN_DELAY:
            headers[labels.ETA] = str(due)
        else:
            headers.pop(labels.ETA, None)
        await self._publish(subject, message.message, headers)

    async def _publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> None:
        """Publish once connected, within ``send_timeout``; never while nats-py is reconnecting (see the module
        docstring: the error then means "not sent", and stays true)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.send_timeout
        while not self.client.is_connected:
            if self.client.is_closed:
                raise unreachable(self.spec, NotSent("the connection is closed; the job was not sent"))
            if loop.time() >= deadline:
                raise unreachable(
                    self.spec,
                    NotSent(
                        f"not connected for send_timeout={self.options.send_timeout:g}s (reconnecting); the job "
                        "was not sent and will not be sent later: sending it again is safe"
                    ),
                )
            await asyncio.sleep(RECONNECT_POLL)
        try:
            await self.js.publish(subject, payload=payload, headers=headers, timeout=max(0.1, deadline - loop.time()))
        except TimeoutError:  # nats-py's own TimeoutError is one too
            raise unreachable(
                self.spec,
                NoAcknowledgement(
                    f"no acknowledgement within send_timeout={self.options.send_timeout:g}s: the job may or may "
                    "not have been stored (check before sending it again)"
                ),
            ) from None
        except (ConnectionClosedError, OutboundBufferLimitError, NoServersError) as error:
            raise unreachable(self.spec, NotSent(f"{type(error).__name__}: {error}; the job was not sent")) from None

    # -- receiving (the consume loop is common.consuming's) ---------------------------------------------
    async def take(self, queues: Sequence[str]) -> list[Taken[int]]:
        """One pull from the first queue that has jobs (so the first queue goes first), as many as the worker
        has free slots; a job not due yet goes straight back with its remaining delay."""
        active = set(queues)
        timeout = self.pull_consume_timeout if len(self.subscriptions) == 1 else 0.2
        for queue, subscription in zip(self.queues, self.subscriptions, strict=True):
            if queue not in active:
                continue
            try:
                fetched = await subscription.fetch(batch=self.in_flight.fetch_size(), timeout=timeout)
            except (NatsTimeoutError, TimeoutError):  # nats-py raises either when nothing came in time
                continue
            taken: list[Taken[int]] = []
            for message in fetched:
                try:
                    remaining = eta_remaining((message.headers or {}).get(labels.ETA))
                except InvalidDelayError as error:
                    token = self.in_flight.add(message)
                    ack = self._acknowledger(token, message)
                    bad = f"header 'eta': {error}"
                    taken.append((token, RejectedDelivery(data=message.data, ack=ack, reason="bad label", error=bad)))
                    continue
                if remaining is not None:
                    await self._hand_back(message, remaining)
                    continue
                token = self.in_flight.add(message)
                taken.append((token, AckableMessage(data=message.data, ack=self._acknowledger(token, message))))
            if fetched:
                return taken
        return []


def build(spec: BrokerSpec) -> AsyncBroker:
    broker: AsyncBroker = NatsQueueBroker(spec, NatsOptions.model_validate(dict(spec.options)))
    return broker.with_result_backend(results(spec)) if spec.result_backend else broker


def results(spec: BrokerSpec) -> AsyncResultBackend[Any]:
    """This connection's result store: a JetStream key-value bucket with a TTL (see ``nats_results``)."""
    options = NatsOptions.model_validate(dict(spec.options))
    return NatsResults(
        servers(spec),
        options.result_bucket,
        options.result_ttl,
        replicas=options.replicas,
        replicas_setting=replicas_setting(spec),
        **connect_options(spec, options),
    )


async def ping_with(spec: BrokerSpec, options: NatsOptions) -> None:
    try:
        client = await connect(
            servers(spec),
            connect_timeout=options.connect_timeout,
            max_reconnect_attempts=1,
            allow_reconnect=False,
            error_cb=_raised_anyway,
        )
    except CONNECTION_ERRORS as error:
        raise unreachable(spec, error) from None
    except NatsError as error:
        if (refused := refusal(spec, error)) is None:
            raise
        raise refused from None
    await client.close()


async def _raised_anyway(error: Exception) -> None:
    """A ping's connection does not reconnect: what goes wrong is raised, and said once."""


async def ping(spec: BrokerSpec) -> None:
    await ping_with(spec, NatsOptions.model_validate(dict(spec.options)))
