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
- an acknowledged job is deleted from the stream (XACK + XDEL), so the stream
  holds only jobs not yet run and never grows without bound, while no MAXLEN
  trimming can drop a job that has not run;
- a read takes as many entries as the worker has free slots (``common.in_flight``),
  acknowledgements and results go out batched with the next read
  (``batch``), and entries read but not finished are given back (added
  again, then acknowledged) when the worker stops, instead of waiting for the
  idle timeout;
- an entry without a ``data`` field (written by something else) is set aside
  as a job that cannot run, instead of crashing the worker;
- consumers of dead workers (idle for ``idle_timeout_ms`` and nothing pending,
  once their jobs were reclaimed) are deleted, so they do not pile up.

A stream is meant for this one consumer group: the deletion after ack would
hide jobs from a second group reading the same stream.

Delayed jobs wait in a sorted set beside the stream (``<stream>:delayed``) and
workers move due ones into the stream, as the list driver does. A worker may
read several queues' streams at once.

On a Redis Cluster (option ``cluster``) a stream's key is hash-tagged
(``queues:stream:{default}``) so it and its ``:delayed`` set share a slot;
streams of different queues live in different slots, so there each is read
with a command of its own, and an idle worker of several queues blocks on the
first one for a short while at a time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage, AsyncBroker, AsyncResultBackend, BrokerMessage
from taskiq_redis import RedisStreamBroker

from drivers.base.contract import QueueCounts
from drivers.base.spec import BrokerSpec
from drivers.common.consuming import Taken
from drivers.common.in_flight import InFlight
from drivers.common.pausing import PausedQueues
from drivers.redis import lua
from drivers.redis.batch import RedisBatcher
from drivers.redis.connecting import (
    CONNECTION_ERRORS,
    build_with,
    connection_kwargs,
    ping_with,
    results_with,
    unreachable,
)
from drivers.redis.holding import RedisHolding
from drivers.redis.names import check_queue
from drivers.redis.options import RedisStreamOptions
from drivers.redis.sending import DelayedJobs, RedisSending, delayed_key
from drivers.redis.target import tagged, target_of

# Stalled jobs (a killed worker's) are looked for at most this often, not after every read.
CLAIM_EVERY = 1.0
# On a cluster an idle worker of several queues blocks on the first stream this long, then looks at the others.
MULTI_STREAM_BLOCK_MS = 250
MIGRATE_DUE_TO_STREAM = lua.source("migrate_to_stream")

Entry = tuple[Any, Any, bytes]  # stream, entry id, job


class RedisStreamQueueBroker(RedisHolding, RedisSending, RedisStreamBroker):
    def __init__(self, spec: BrokerSpec, options: RedisStreamOptions) -> None:
        target = target_of(str(spec.url), options.cluster)
        connection = connection_kwargs(options, options.block_ms / 1000)
        super().__init__(
            url=target.pool_url,
            queue_name=tagged(options.prefix, spec.queue, target.cluster),
            max_connection_pool_size=options.max_connections,
            consumer_group_name=options.consumer_group,
            consumer_id="0",
            xread_block=options.block_ms,
            maxlen=options.maxlen,
            idle_timeout=options.idle_timeout_ms,
            **connection,
        )
        self.spec = spec
        self.use_target(target, options, connection)
        self.sending_options(options)
        self.prefix = options.prefix
        self.delayed = DelayedJobs(MIGRATE_DUE_TO_STREAM, [options.maxlen or 0])
        self.queues = [spec.queue]
        self.streams = [self.queue_name]
        self.pausing = PausedQueues(self)
        # every entry read and not finished; the heartbeat keeps their idle time low
        self.in_flight: InFlight[Entry] = InFlight(self.idle_timeout / 3000, self._keep_fresh, options.fetch_batch)
        self.batcher = RedisBatcher(self.sender)
        self._last_claim = 0.0

    def listen_to(self, queues: Sequence[str]) -> None:
        """Read these queues' streams (call before the worker starts listening)."""
        self.queues = [check_queue(queue, self.spec.driver) for queue in queues]
        self.streams = [self.key_for(queue) for queue in self.queues]
        self.queue_name = self.streams[0]

    async def _declare_consumer_group(self) -> None:
        """As taskiq-redis, through ``sender`` (its own code opens a client on the pool, which a cluster lacks)."""
        self.additional_streams = {stream: ">" for stream in self.streams[1:]}
        for stream in dict.fromkeys(self.streams):
            try:
                await self.sender.xgroup_create(stream, self.consumer_group_name, id=self.consumer_id, mkstream=True)
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    def push(self, redis: Any, key: str, message: BrokerMessage) -> Any:
        return redis.xadd(key, {b"data": message.message}, maxlen=self.maxlen, approximate=True)

    async def counts(self, queue: str) -> QueueCounts:
        """Entries not yet read (waiting), read and not acknowledged (reserved: running, or about to), delayed."""
        key = self.key_for(queue)
        try:
            async with self.sender.pipeline(transaction=False) as pipe:
                pipe.xlen(key)
                pipe.zcard(delayed_key(key))
                pipe.xpending(key, self.consumer_group_name)
                entries, delayed, pending = await pipe.execute(raise_on_error=False)
        except CONNECTION_ERRORS as error:
            raise unreachable(self.spec, error) from None
        reserved = int(pending["pending"]) if isinstance(pending, dict) else 0  # NOGROUP: no worker yet
        return QueueCounts(int(entries) - reserved, int(delayed), reserved)

    def length(self, pipe: Any, key: str) -> Any:
        """A job leaves the stream when it is acknowledged: the count includes jobs running now."""
        return pipe.xlen(key)

    def empty(self, pipe: Any, key: str) -> Any:
        """Trim rather than delete, so the consumer group (and its workers' reads) stay."""
        return pipe.xtrim(key, maxlen=0, approximate=False)

    # -- receiving (the consume loop is common.consuming's) ---------------------------------------------
    async def recover(self, error: Exception) -> bool:
        """The stream (and its group) was deleted under us: declare it again."""
        if isinstance(error, ResponseError) and "NOGROUP" in str(error):
            await self._declare_consumer_group()
            return True
        return False

    async def take(self, queues: Sequence[str]) -> list[Taken[int]]:
        """Entries for up to the worker's free slots: once a second the stalled ones first (a dead worker's:
        they are the oldest), then due delayed jobs moved in and new entries (without blocking, riding with the
        acknowledgements; blocking if there are none)."""
        wanted = self.in_flight.fetch_size()
        taken: list[Taken[int]] = []
        active = [self.key_for(queue) for queue in queues]
        if time.monotonic() - self._last_claim >= CLAIM_EVERY:
            self._last_claim = time.monotonic()
            taken += await self._reclaim(active, wanted)
            if len(taken) >= wanted:
                return taken
        await self.delayed.migrate(self.sender, active)
        count = wanted - len(taken)
        # In a cluster each stream is in a slot of its own: one read per stream.
        groups = [[stream] for stream in active] if self.cluster else [active]
        read: list[Any] = []
        group_name, consumer = self.consumer_group_name, self.consumer_name
        for group in groups:
            streams: dict[Any, Any] = dict.fromkeys(group, ">")
            left = count - sum(len(entries) for _, entries in read)
            if left <= 0:
                break

            def read_group(pipe: Any, s: dict[Any, Any] = streams, n: int = left) -> Any:
                return pipe.xreadgroup(group_name, consumer, s, count=n)

            read += await self.batcher.add(read_group) or []
        if not read and not taken:
            block = self.block if len(groups) == 1 else min(self.block, MULTI_STREAM_BLOCK_MS)
            first: dict[Any, Any] = dict.fromkeys(groups[0], ">")
            blocked: Any = await self.sender.xreadgroup(group_name, consumer, first, count=count, block=block)
            read = list(blocked or [])
        return taken + [self._hold(s, msg_id, fields) for s, entries in read for msg_id, fields in entries]

    def _hold(self, stream: Any, msg_id: Any, fields: Any) -> Taken[int]:
        # An entry of ours always has "data"; anything else becomes a job that cannot be decoded.
        job = fields.get(b"data") if fields else None
        if not isinstance(job, bytes):
            job = b"stream entry without a data field: " + repr(fields).encode()
        token = self.in_flight.add((stream, msg_id, job))
        return token, AckableMessage(data=job, ack=self._acknowledger(token))

    async def _reclaim(self, streams: Sequence[str], wanted: int) -> list[Taken[int]]:
        """XAUTOCLAIM entries idle past the idle timeout (their worker died), and forget dead consumers."""
        taken: list[Taken[int]] = []
        for stream in streams:
            claimed: Any = await self.sender.xautoclaim(
                stream,
                self.consumer_group_name,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                count=max(1, wanted - len(taken)),
            )
            taken += [self._hold(stream, msg_id, fields) for msg_id, fields in claimed[1] if fields is not None]
            await self._forget_dead_consumers(self.sender, stream)
        return taken

    def _acknowledger(self, token: int) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            """Queued, not awaited: XACK and XDEL go out with the next batch, after this job's result (a
            coroutine, as taskiq-redis's acknowledgements are)."""
            held = self.in_flight.discard(token)
            if held is None:
                return
            stream, msg_id, _ = held
            what = f"acknowledgements (those jobs run again after the idle timeout, {self.idle_timeout} ms)"
            group = self.consumer_group_name
            self.batcher.add_member(("ack", stream), msg_id, lambda pipe, ids: pipe.xack(stream, group, *ids), what)
            self.batcher.add_member(("del", stream), msg_id, lambda pipe, ids: pipe.xdel(stream, *ids), what)

        return ack

    async def _keep_fresh(self, held: list[Entry]) -> None:
        """The heartbeat: XCLAIM (JUSTID, to ourselves) resets the idle time of every entry still held."""
        by_stream: dict[Any, list[Any]] = {}
        for stream, msg_id, _ in held:
            by_stream.setdefault(stream, []).append(msg_id)
        async with self.sender.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xclaim(stream, self.consumer_group_name, self.consumer_name, 0, ids, justid=True)
            await pipe.execute()

    async def return_jobs(self, held: list[Entry]) -> None:
        """Entries this worker will not finish: added again as new entries and acknowledged, in one
        transaction per stream (a cluster keeps each stream in a slot of its own), so another worker runs them
        now rather than after the idle timeout."""
        by_stream: dict[Any, list[Entry]] = {}
        for entry in held:
            by_stream.setdefault(entry[0], []).append(entry)
        try:
            for stream, entries in by_stream.items():
                async with self.sender.pipeline(transaction=True) as pipe:
                    for _, msg_id, job in entries:
                        pipe.xadd(stream, {b"data": job}, maxlen=self.maxlen, approximate=True)
                        pipe.xack(stream, self.consumer_group_name, msg_id)
                        pipe.xdel(stream, msg_id)
                    await pipe.execute()
        except CONNECTION_ERRORS:
            return  # they stay pending: reclaimed after the idle timeout

    async def _forget_dead_consumers(self, redis: Redis, stream: str) -> None:
        """Delete consumers idle past the reclaim time that hold nothing (their jobs were reclaimed)."""
        consumers: Any = await redis.xinfo_consumers(stream, self.consumer_group_name)
        for consumer in consumers:
            name = consumer["name"]
            name = name.decode() if isinstance(name, bytes) else name
            idle_too_long = int(consumer["idle"]) > max(self.idle_timeout, 10 * self.block)
            if name != self.consumer_name and idle_too_long and int(consumer["pending"]) == 0:
                await redis.xgroup_delconsumer(stream, self.consumer_group_name, name)


def build(spec: BrokerSpec) -> AsyncBroker:
    return build_with(spec, RedisStreamOptions, RedisStreamQueueBroker)


def results(spec: BrokerSpec) -> AsyncResultBackend[Any]:
    """This connection's result store, for another connection's jobs (its own are written with its acks)."""
    return results_with(spec, RedisStreamOptions)


async def ping(spec: BrokerSpec) -> None:
    await ping_with(spec, RedisStreamOptions)
