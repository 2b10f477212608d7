"""Redis list driver (the default): taskiq-redis ``ListQueueBroker`` made safe to leave idle.

TaskIQ's list broker dies when idle: redis-py 8 gives every socket a 5 s
timeout, the endless BRPOP hits it, and the error escapes ``listen()`` and
kills the worker process (taskiq-redis#127, taskiq#658). Here BRPOP blocks
for a bounded time and is re-issued, the socket timeout sits above that, and a
lost connection is re-opened with backoff instead of crashing the worker.

Delivery is at most once: BRPOP removes the job before it runs, so a job in
a worker that is killed is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AsyncBroker, BrokerMessage
from taskiq.serializers import JSONSerializer
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

from drivers.options import RedisOptions
from drivers.reach import unreachable
from drivers.spec import BrokerSpec

logger = logging.getLogger("queue_manager.drivers.redis")

# Errors that mean "the server went away": the worker reconnects instead of dying.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
RECONNECT_BACKOFF = (0.2, 10.0)


def connection_kwargs(options: RedisOptions, block_seconds: float) -> dict[str, Any]:
    """Socket settings for a pool whose longest command blocks ``block_seconds``."""
    return {
        "socket_timeout": block_seconds + 10.0,
        "socket_connect_timeout": options.socket_connect_timeout,
        "socket_keepalive": True,
        "retry_on_timeout": False,
    }


def result_backend(spec: BrokerSpec, options: RedisOptions) -> RedisAsyncResultBackend[Any]:
    return RedisAsyncResultBackend(
        redis_url=str(spec.url),
        serializer=JSONSerializer(),
        prefix_str=options.result_prefix,
        result_ex_time=options.result_ttl,
        max_connection_pool_size=options.max_connections,
        socket_connect_timeout=options.socket_connect_timeout,
        socket_keepalive=True,
    )


async def check_reachable(spec: BrokerSpec, redis: Redis) -> None:
    try:
        await redis.ping()
    except CONNECTION_ERRORS as error:
        raise unreachable(spec, error) from None


async def reconnect_pause(spec: BrokerSpec, error: BaseException, delay: float) -> float:
    """Log a lost connection, wait, and return the next (doubled, capped) delay."""
    logger.warning(
        "Queue connection '%s' lost Redis (%s); reconnecting in %.1fs", spec.name, type(error).__name__, delay
    )
    await asyncio.sleep(delay)
    return min(delay * 2, RECONNECT_BACKOFF[1])


class RedisListBroker(ListQueueBroker):
    """One Redis list per queue (``<prefix><queue>``), LPUSH to send, BRPOP to receive."""

    def __init__(self, spec: BrokerSpec, options: RedisOptions) -> None:
        super().__init__(
            url=str(spec.url),
            queue_name=options.prefix + spec.queue,
            max_connection_pool_size=options.max_connections,
            **connection_kwargs(options, options.block_timeout),
        )
        self.spec = spec
        self.prefix = options.prefix
        self.block_timeout = options.block_timeout

    def queue_key(self, queue: str | None) -> str:
        return self.prefix + queue if queue else self.queue_name

    async def startup(self) -> None:
        async with Redis(connection_pool=self.connection_pool) as redis:
            await check_reachable(self.spec, redis)
        await super().startup()

    async def kick(self, message: BrokerMessage) -> None:
        key = self.queue_key(message.labels.get("queue_name"))
        try:
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.lpush(key, message.message)  # type: ignore[misc]
        except CONNECTION_ERRORS as error:
            raise unreachable(self.spec, error) from None

    async def listen(self) -> AsyncGenerator[bytes, None]:
        delay = RECONNECT_BACKOFF[0]
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    while True:
                        popped = await redis.brpop([self.queue_name], timeout=self.block_timeout)  # type: ignore[misc]
                        delay = RECONNECT_BACKOFF[0]
                        if popped is not None:
                            yield cast(bytes, popped[1])
            except CONNECTION_ERRORS as error:
                delay = await reconnect_pause(self.spec, error, delay)


def build(spec: BrokerSpec) -> AsyncBroker:
    options = RedisOptions.model_validate(dict(spec.options))
    broker = RedisListBroker(spec, options)
    if spec.result_backend:
        broker = broker.with_result_backend(result_backend(spec, options))
    return broker


async def ping(spec: BrokerSpec) -> None:
    await ping_with(spec, RedisOptions.model_validate(dict(spec.options)))


async def ping_with(spec: BrokerSpec, options: RedisOptions) -> None:
    """Open a short-lived connection and PING: the demo and health checks use this."""
    redis = Redis.from_url(str(spec.url), socket_connect_timeout=options.socket_connect_timeout)
    try:
        await check_reachable(spec, redis)
    finally:
        await redis.aclose()
