"""Redis list driver (the default): taskiq-redis ``ListQueueBroker`` made safe to leave idle.

TaskIQ's list broker dies when idle: redis-py 8 gives every socket a 5 s
timeout, the endless BRPOP hits it, and the error escapes ``listen()`` and
kills the worker process (taskiq-redis#127, taskiq#658). Here BRPOP blocks
for a bounded time and is re-issued, the socket timeout sits above that, and a
lost connection is re-opened with backoff instead of crashing the worker.

Delivery is at most once: BRPOP removes the job before it runs, so a job in
a worker that is killed is lost.

Delayed jobs wait in a sorted set beside the list (see ``redis_common``).
A worker may serve several queues: BRPOP takes the keys in the order given,
so the first queue has strict priority, as Laravel's ``--queue=high,low``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

from redis.asyncio import Redis
from taskiq import AsyncBroker, BrokerMessage
from taskiq_redis import ListQueueBroker

from drivers.options import RedisOptions
from drivers.redis_common import (
    CONNECTION_ERRORS,
    RECONNECT_BACKOFF,
    DelayedJobs,
    RedisSending,
    build_with,
    connection_kwargs,
    ping_with,
    reconnect_pause,
)
from drivers.spec import BrokerSpec

# KEYS: delayed zset, target. ARGV: now, batch. Moves due jobs to the target, oldest first.
MIGRATE_DUE_TO_LIST = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due do
  redis.call('ZREM', KEYS[1], due[i])
  redis.call('RPUSH', KEYS[2], due[i])
end
return #due
"""


class RedisListBroker(RedisSending, ListQueueBroker):
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
        self.queues = [spec.queue]
        self.delayed = DelayedJobs(MIGRATE_DUE_TO_LIST)

    def listen_to(self, queues: Sequence[str]) -> None:
        """Serve these queues, first one first (call before the worker starts listening)."""
        self.queues = list(queues)

    def key_for(self, queue: str | None) -> str:
        return self.prefix + queue if queue else self.queue_name

    def push(self, redis: Any, key: str, message: BrokerMessage) -> Any:
        return redis.lpush(key, message.message)

    def length(self, pipe: Any, key: str) -> Any:
        return pipe.llen(key)

    def empty(self, pipe: Any, key: str) -> Any:
        return pipe.delete(key)

    async def listen(self) -> AsyncGenerator[bytes, None]:
        delay = RECONNECT_BACKOFF[0]
        keys = [self.key_for(queue) for queue in self.queues]
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    while True:
                        await self.delayed.migrate(redis, keys)
                        popped = await redis.brpop(keys, timeout=self.block_timeout)  # type: ignore[misc]
                        delay = RECONNECT_BACKOFF[0]
                        if popped is not None:
                            yield cast(bytes, popped[1])
            except CONNECTION_ERRORS as error:
                delay = await reconnect_pause(self.spec, error, delay)


def build(spec: BrokerSpec) -> AsyncBroker:
    return build_with(spec, RedisOptions, RedisListBroker)


async def ping(spec: BrokerSpec) -> None:
    await ping_with(spec, RedisOptions)
