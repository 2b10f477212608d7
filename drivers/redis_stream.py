"""Redis stream driver: a consumer group per stream, ack after the job ran, idle jobs reclaimed.

Differences from taskiq-redis's ``RedisStreamBroker`` defaults, and why:
- the group is created at id ``0``, not ``$``: jobs sent before the first
  worker started are run, not skipped;
- XAUTOCLAIM runs after every read, including empty ones, so a killed
  worker's job is re-run after ``idle_timeout_ms`` even when no new job arrives
  (upstream reclaims only when fresh traffic comes), while a job that is
  still running is kept fresh by its worker (XCLAIM JUSTID every third of
  the idle timeout), so a long job is not run twice;
- the stream key differs from the list driver's (``queues:stream:<queue>``),
  so a ``redis`` and a ``redis_stream`` connection can share one server;
- a lost connection is re-opened instead of killing the worker;
- an acknowledged job is deleted from the stream (XACK + XDEL in one round
  trip), so the stream holds only jobs not yet run and never grows without
  bound, while no MAXLEN trimming can drop a job that has not run;
- consumers of dead workers (idle for ``idle_timeout_ms`` and nothing pending,
  once their jobs were reclaimed) are deleted, so they do not pile up.

A stream is meant for this one consumer group: the deletion after ack would
hide jobs from a second group reading the same stream.

Delayed jobs wait in a sorted set beside the stream (``<stream>:delayed``) and
workers move due ones into the stream, as the list driver does. A worker may
read several queues' streams at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage
from taskiq_redis import RedisStreamBroker

from drivers.options import RedisStreamOptions
from drivers.poison import RejectsPoison
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

# Stalled jobs (a killed worker's) are looked for at most this often, not after every read.
CLAIM_EVERY = 1.0

# KEYS: delayed zset, stream. ARGV: now, batch, maxlen (0 = none).
MIGRATE_DUE_TO_STREAM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #due do
  redis.call('ZREM', KEYS[1], due[i])
  if tonumber(ARGV[3]) > 0 then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', due[i])
  else
    redis.call('XADD', KEYS[2], '*', 'data', due[i])
  end
end
return #due
"""


class RedisStreamQueueBroker(RejectsPoison, RedisSending, RedisStreamBroker):
    def __init__(self, spec: BrokerSpec, options: RedisStreamOptions) -> None:
        super().__init__(
            url=str(spec.url),
            queue_name=options.prefix + spec.queue,
            max_connection_pool_size=options.max_connections,
            consumer_group_name=options.consumer_group,
            consumer_id="0",
            xread_block=options.block_ms,
            maxlen=options.maxlen,
            idle_timeout=options.idle_timeout_ms,
            **connection_kwargs(options, options.block_ms / 1000),
        )
        self.spec = spec
        self.prefix = options.prefix
        self.delayed = DelayedJobs(MIGRATE_DUE_TO_STREAM, [options.maxlen or 0])
        self.streams = [self.queue_name]
        self.in_flight: dict[Any, set[Any]] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    def listen_to(self, queues: Sequence[str]) -> None:
        """Read these queues' streams (call before the worker starts listening)."""
        self.streams = [self.key_for(queue) for queue in queues]
        self.queue_name = self.streams[0]

    async def _declare_consumer_group(self) -> None:
        self.additional_streams = {stream: ">" for stream in self.streams[1:]}
        await super()._declare_consumer_group()

    def key_for(self, queue: str | None) -> str:
        return self.prefix + queue if queue else self.queue_name

    def push(self, redis: Any, key: str, message: BrokerMessage) -> Any:
        return redis.xadd(key, {b"data": message.message}, maxlen=self.maxlen, approximate=True)

    def length(self, pipe: Any, key: str) -> Any:
        """A job leaves the stream when it is acknowledged: the count includes jobs running now."""
        return pipe.xlen(key)

    def empty(self, pipe: Any, key: str) -> Any:
        """Trim rather than delete, so the consumer group (and its workers' reads) stay."""
        return pipe.xtrim(key, maxlen=0, approximate=False)

    def _message(self, stream: Any, msg_id: Any, fields: Any) -> AckableMessage:
        return AckableMessage(data=fields[b"data"], ack=self._ack_and_delete(stream, msg_id))

    def _ack_and_delete(self, stream: Any, msg_id: Any) -> Callable[[], Awaitable[None]]:
        """Acknowledge and delete; until then the job is in ``in_flight``, whose idle time the heartbeat
        keeps low, so a job that runs longer than ``idle_timeout_ms`` is not reclaimed (and run twice)."""
        self.in_flight.setdefault(stream, set()).add(msg_id)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._keep_in_flight_fresh())

        async def ack() -> None:
            self.in_flight[stream].discard(msg_id)
            async with self.sender.pipeline(transaction=True) as pipe:
                pipe.xack(stream, self.consumer_group_name, msg_id)
                pipe.xdel(stream, msg_id)
                await pipe.execute()

        return ack

    async def _keep_in_flight_fresh(self) -> None:
        """One loop for all running jobs: XCLAIM (JUSTID, to ourselves) resets their idle time."""
        while True:
            await asyncio.sleep(self.idle_timeout / 3000)
            for stream, ids in self.in_flight.items():
                if ids:
                    try:
                        await self.sender.xclaim(
                            stream, self.consumer_group_name, self.consumer_name, 0, list(ids), justid=True
                        )
                    except CONNECTION_ERRORS:
                        continue

    async def shutdown(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await super().shutdown()

    async def _forget_dead_consumers(self, redis: Redis, stream: str) -> None:
        """Delete consumers idle past the reclaim time that hold nothing (their jobs were reclaimed)."""
        consumers: Any = await redis.xinfo_consumers(stream, self.consumer_group_name)
        for consumer in consumers:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            idle_too_long = int(consumer["idle"]) > max(self.idle_timeout, 10 * self.block)
            if name != self.consumer_name and idle_too_long and int(consumer["pending"]) == 0:
                await redis.xgroup_delconsumer(stream, self.consumer_group_name, name)

    async def deliveries(self) -> AsyncGenerator[AckableMessage, None]:
        delay = RECONNECT_BACKOFF[0]
        last_claim = 0.0
        while True:
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    while True:
                        await self.delayed.migrate(redis, self.streams)
                        fetched: Any = await redis.xreadgroup(
                            self.consumer_group_name,
                            self.consumer_name,
                            dict.fromkeys(self.streams, ">"),
                            block=self.block,
                            count=self.count,
                        )
                        delay = RECONNECT_BACKOFF[0]
                        for stream, entries in fetched or []:
                            for msg_id, fields in entries:
                                yield self._message(stream, msg_id, fields)
                        if time.monotonic() - last_claim < CLAIM_EVERY:
                            continue
                        last_claim = time.monotonic()
                        for stream in self.streams:
                            claimed: Any = await redis.xautoclaim(
                                stream,
                                self.consumer_group_name,
                                self.consumer_name,
                                min_idle_time=self.idle_timeout,
                                count=self.unacknowledged_batch_size,
                            )
                            for msg_id, fields in claimed[1]:
                                if fields:
                                    yield self._message(stream, msg_id, fields)
                            await self._forget_dead_consumers(redis, stream)
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                # The stream (and its group) was deleted under us: declare it again.
                await self._declare_consumer_group()
            except CONNECTION_ERRORS as error:
                delay = await reconnect_pause(self.spec, error, delay)


def build(spec: BrokerSpec) -> AsyncBroker:
    return build_with(spec, RedisStreamOptions, RedisStreamQueueBroker)


async def ping(spec: BrokerSpec) -> None:
    await ping_with(spec, RedisStreamOptions)
