"""Connecting the Redis brokers and stores: socket settings, reconnects, bounded waits, build and ping.

redis-py retries nothing by default, waits for minutes on a network that stops answering, and raises its own
errors; here every wait is bounded by the connection's ``send_timeout`` / ``socket_connect_timeout`` and every
failure to reach the server becomes one ``BrokerUnreachableError`` naming host:port (never the password).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AuthenticationError,
    ClusterError,
    ReadOnlyError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AsyncBroker
from taskiq.serializers import JSONSerializer

from drivers.base import reach
from drivers.base.errors import BrokerAuthenticationError, BrokerUnreachableError
from drivers.base.spec import BrokerSpec
from drivers.redis import LIST
from drivers.redis.batch import RedisBatcher
from drivers.redis.options import RedisCommonOptions
from drivers.redis.results import RedisResults
from drivers.redis.target import standalone_client, target_of

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
# What a worker's fetch takes as a lost server too: READONLY, from a master demoted under it (a Sentinel
# failover) or a URL that names a replica. It waits and fetches again, on fresh connections.
FETCH_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, ReadOnlyError)


def refusal(spec: BrokerSpec, error: BaseException) -> BrokerAuthenticationError | None:
    """A refused user or password (WRONGPASS, NOAUTH: redis-py's AuthenticationError), as the error to raise."""
    return reach.refused(spec, error, LIST) if isinstance(error, AuthenticationError) else None


def unreachable(spec: BrokerSpec, error: BaseException) -> BrokerUnreachableError:
    """The list and stream drivers share their server facts (port, start hint)."""
    return refusal(spec, error) or reach.unreachable(spec, error, LIST)


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


def no_answer(spec: BrokerSpec, seconds: float, option: str = "send_timeout") -> BrokerUnreachableError:
    return unreachable(
        spec,
        reach.NoAnswer(
            f"no answer within {option}={seconds:g}s (the job may or may not have reached it: check before "
            f"sending it again; {spec.setting('options', option)} sets the wait)"
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
