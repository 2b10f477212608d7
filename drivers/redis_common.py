"""What the Redis list and Redis stream drivers share: connections, reconnects, delayed jobs and sending.

Delays work as in Laravel's Redis queue: a delayed job waits in a sorted set
(``<queue key>:delayed``, scored by its due time) and every worker moves due
jobs into the queue with one atomic script, at most every ``MIGRATE_EVERY``
seconds. The job lives in Redis while it waits, so it survives worker
restarts, and no process besides the workers is needed.

The servers may be one Redis, a Sentinel-watched master or a Redis Cluster (``redis_target``); the brokers
send through ``sender``, which is the right client for each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from functools import cached_property
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ClusterError, RedisClusterException, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AsyncBroker, BrokerMessage
from taskiq.serializers import JSONSerializer

from drivers import labels
from drivers.delay import MIN_DELAY, due_at
from drivers.errors import BrokerUnreachableError
from drivers.options import RedisCommonOptions
from drivers.reach import unreachable
from drivers.redis_batch import RedisBatcher
from drivers.redis_results import RedisResults
from drivers.redis_target import RedisTarget, client_for, sentinel_pool, standalone_client, tagged, target_of
from drivers.spec import BrokerSpec

logger = logging.getLogger("queue_manager.drivers.redis")
T = TypeVar("T")

# Errors that mean "the server went away": the worker reconnects instead of dying. In a cluster also a slot whose
# master is down (CLUSTERDOWN, TRYAGAIN while slots move).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ClusterError,
    SlotNotCoveredError,
    TryAgainError,
)
RECONNECT_BACKOFF = (0.2, 10.0)
MIGRATE_EVERY = 0.5
MIGRATE_BATCH = 100


def delayed_key(key: str) -> str:
    return f"{key}:delayed"


class DelayedJobs:
    """Moves due jobs from each queue's ``:delayed`` sorted set into the queue, rate-limited."""

    def __init__(self, script_source: str, extra_args: Sequence[str | int] = ()) -> None:
        self.source = script_source
        self.extra_args = list(extra_args)
        self.last_run = 0.0

    async def migrate(self, redis: Redis, keys: Sequence[str], force: bool = False) -> int:
        now = time.time()
        if not force and now - self.last_run < MIGRATE_EVERY:
            return 0
        self.last_run = now
        script = redis.register_script(self.source)
        moved = 0
        for key in keys:
            moved += int(await script(keys=[delayed_key(key), key], args=[now, MIGRATE_BATCH, *self.extra_args]))
        return moved


def connection_kwargs(options: RedisCommonOptions, block_seconds: float) -> dict[str, Any]:
    """Socket settings for a pool whose longest command blocks ``block_seconds``.

    redis-py retries nothing by default, so after a server restart the first command on each
    pooled (now dead) connection fails, and a worker would lose the result of a job it ran.
    A few quick retries on a fresh connection cover that.
    """
    # No socket_keepalive here: redis-py turns it on for TCP itself, and a unix socket (unix:///path.sock)
    # refuses the argument, which made every command fail.
    return {
        "socket_timeout": block_seconds + 10.0,
        "socket_connect_timeout": options.socket_connect_timeout,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def result_backend(spec: BrokerSpec, options: RedisCommonOptions) -> RedisResults[Any]:
    target = target_of(str(spec.url), options.cluster)
    connection = connection_kwargs(options, 0.0)
    results: RedisResults[Any] = RedisResults(
        redis_url=target.pool_url,
        serializer=JSONSerializer(),
        prefix_str=options.result_prefix,
        result_ex_time=options.result_ttl,
        max_connection_pool_size=options.max_connections,
        **connection,
    )
    results.use(target, options.max_connections, connection)
    return results


class NoAnswer(TimeoutError):
    """The server accepted the connection but did not answer in time (a network partition, a stuck server)."""


def no_answer(spec: BrokerSpec, seconds: float, option: str = "send_timeout") -> BrokerUnreachableError:
    return unreachable(
        spec,
        NoAnswer(
            f"no answer within {option}={seconds:g}s (the job may or may not have reached it: check before "
            f"sending it again; QUEUE_CONNECTIONS__{spec.name.upper()}__OPTIONS__{option.upper()} sets the wait)"
        ),
    )


async def bounded(spec: BrokerSpec, seconds: float, work: Awaitable[T], option: str = "send_timeout") -> T:
    """``work``, or BrokerUnreachableError once ``seconds`` pass or the connection fails: a dispatch never blocks
    for the minutes redis-py's socket timeouts and retries add up to when the network stops answering."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise no_answer(spec, seconds, option) from None
    except CONNECTION_ERRORS as error:
        raise unreachable(spec, error) from None


async def check_reachable(spec: BrokerSpec, redis: Redis, seconds: float) -> None:
    try:
        await bounded(spec, seconds, redis.ping(), "socket_connect_timeout")
    except RedisClusterException as error:  # "Redis Cluster cannot be connected": no startup node answered
        raise unreachable(spec, error) from None


async def reconnect_pause(spec: BrokerSpec, error: BaseException, delay: float) -> float:
    """Log a lost connection, wait, and return the next (doubled, capped) delay."""
    logger.warning(
        "Queue connection '%s' lost Redis (%s); reconnecting in %.1fs", spec.name, type(error).__name__, delay
    )
    await asyncio.sleep(delay)
    return min(delay * 2, RECONNECT_BACKOFF[1])


class RedisSending:
    """What the list and the stream broker share: a fail-fast startup and sending, one job or many.

    One Redis client is kept for sending (commands still take pooled connections), instead of a
    new client object per job as taskiq-redis does.
    """

    spec: BrokerSpec
    connection_pool: Any
    send_timeout: float = 5.0
    connect_timeout: float = 5.0
    target: RedisTarget = RedisTarget("server", "")
    max_connections: int | None = None
    connection: dict[str, Any]
    prefix: str
    queue_name: str

    def use_target(self, target: RedisTarget, options: RedisCommonOptions, connection: dict[str, Any]) -> None:
        """Send to ``target``'s servers: a sentinel pool replaces taskiq-redis's pool; a cluster gets its own
        client (the pool taskiq-redis made stays unused)."""
        self.target, self.max_connections, self.connection = target, options.max_connections, connection
        if target.kind == "sentinel":
            self.connection_pool = sentinel_pool(target, options.max_connections, **connection)

    @property
    def cluster(self) -> bool:
        return self.target.cluster

    def key_for(self, queue: str | None) -> str:
        """The queue's key; in a cluster hash-tagged (``queues:{default}``) so all of its keys share one slot."""
        return tagged(self.prefix, queue, self.cluster) if queue else self.queue_name

    def push(self, redis: Any, key: str, message: BrokerMessage) -> Any:
        """Queue a due job on ``redis`` (a client or a pipeline)."""
        raise NotImplementedError

    def length(self, pipe: Any, key: str) -> Any:
        """Queue on ``pipe`` the command that counts the jobs in ``key``."""
        raise NotImplementedError

    def empty(self, pipe: Any, key: str) -> Any:
        """Queue on ``pipe`` the command that removes every job in ``key``."""
        raise NotImplementedError

    async def _counted(self, queue: str, clear: bool) -> int:
        key = self.key_for(queue)
        try:
            async with self.sender.pipeline(transaction=True) as pipe:
                self.length(pipe, key)
                pipe.zcard(delayed_key(key))
                if clear:
                    self.empty(pipe, key)
                    pipe.delete(delayed_key(key))
                waiting, delayed, *_ = await pipe.execute()
        except CONNECTION_ERRORS as error:
            raise unreachable(self.spec, error) from None
        return int(waiting) + int(delayed)

    async def size(self, queue: str) -> int:
        """Jobs waiting in ``queue``, delayed ones included."""
        return await self._counted(queue, clear=False)

    async def clear(self, queue: str) -> int:
        """Delete every job waiting in ``queue`` (delayed ones too), in one transaction; returns how many."""
        return await self._counted(queue, clear=True)

    @cached_property
    def sender(self) -> Redis:
        """One client for every command (a ``RedisCluster`` on a cluster: it routes each command to its slot)."""
        return client_for(self.target, self.connection_pool, self.max_connections, **self.connection)  # type: ignore[no-any-return]

    async def close_sender(self) -> None:
        if self.cluster and "sender" in self.__dict__:
            await self.sender.aclose()

    def sending_options(self, options: RedisCommonOptions) -> None:
        self.send_timeout = options.send_timeout
        self.connect_timeout = options.socket_connect_timeout + options.send_timeout

    async def startup(self) -> None:
        await check_reachable(self.spec, self.sender, self.connect_timeout)
        await super().startup()  # type: ignore[misc]

    def _send(self, redis: Any, message: BrokerMessage) -> Any:
        key = self.key_for(message.labels.get(labels.QUEUE))
        due = due_at(message)  # InvalidDelayError here, before anything is sent
        if due is None or due - time.time() <= MIN_DELAY:
            return self.push(redis, key, message)
        return redis.zadd(delayed_key(key), {message.message: due})

    async def kick(self, message: BrokerMessage) -> None:
        await bounded(self.spec, self.send_timeout, self._send(self.sender, message))

    async def kick_many(self, messages: Sequence[BrokerMessage]) -> None:
        """Send many jobs in one round trip (``Connection.bulk``)."""
        async with self.sender.pipeline(transaction=False) as pipe:
            for message in messages:
                self._send(pipe, message)
            await bounded(self.spec, self.send_timeout, pipe.execute())


def build_with(spec: BrokerSpec, options_type: type[RedisCommonOptions], broker_type: Any) -> AsyncBroker:
    options = options_type.model_validate(dict(spec.options))
    broker: AsyncBroker = broker_type(spec, options)
    if spec.result_backend:
        results = result_backend(spec, options)
        results.batcher, results.write_behind = getattr(broker, "batcher", None), True  # they go with the acks
        broker = broker.with_result_backend(results)
    return broker


def results_with(spec: BrokerSpec, options_type: type[RedisCommonOptions]) -> RedisResults[Any]:
    """A Redis result store for another connection's jobs (``results: <this connection>``): its writes are
    batched, and each job waits for its own, since they cannot travel with that broker's acknowledgement."""
    results = result_backend(spec, options_type.model_validate(dict(spec.options)))
    results.batcher = RedisBatcher(results.client)
    return results


async def ping_with(spec: BrokerSpec, options_type: type[RedisCommonOptions]) -> None:
    """Open a short-lived connection and PING: the demo and health checks use this."""
    options = options_type.model_validate(dict(spec.options))
    target = target_of(str(spec.url), options.cluster)
    try:
        redis = standalone_client(target, socket_connect_timeout=options.socket_connect_timeout)
    except CONNECTION_ERRORS as error:  # a cluster client asks its startup nodes for the slots when it starts
        raise unreachable(spec, error) from None
    try:
        await check_reachable(spec, redis, options.socket_connect_timeout + options.send_timeout)
    finally:
        await redis.aclose()
