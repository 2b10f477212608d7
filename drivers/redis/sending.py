"""What the Redis list and Redis stream brokers share: delayed jobs and sending, one job or many.

Delays work as in Laravel's Redis queue: a delayed job waits in a sorted set
(``<queue key>:delayed``, scored by its due time) and every worker moves due
jobs into the queue with one atomic script, at most every ``MIGRATE_EVERY``
seconds. The job lives in Redis while it waits, so it survives worker
restarts, and no process besides the workers is needed.

The servers may be one Redis, a Sentinel-watched master or a Redis Cluster (``target``); the brokers
send through ``sender``, which is the right client for each.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from redis.asyncio import Redis
from taskiq import BrokerMessage

from drivers.base import labels
from drivers.base.delay import MIN_DELAY, due_at
from drivers.base.spec import BrokerSpec
from drivers.redis.connecting import CONNECTION_ERRORS, bounded, check_reachable, unreachable
from drivers.redis.control import RedisControl
from drivers.redis.names import check_queue
from drivers.redis.options import RedisCommonOptions
from drivers.redis.target import RedisTarget, client_for, sentinel_pool, tagged

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

    def push_many(self, pipe: Any, key: str, messages: Sequence[BrokerMessage]) -> None:
        """Queue due jobs on one key, in order (a list takes them in one command)."""
        for message in messages:
            self.push(pipe, key, message)

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
    def control_state(self) -> RedisControl:
        """Restart signal, paused queues and throughput counters: keys beside the queues (``<prefix>control <x>``)."""
        return RedisControl(self.sender, self.prefix, self.cluster)

    @cached_property
    def sender(self) -> Redis:
        """One client for every command (a ``RedisCluster`` on a cluster: it routes each command to its slot)."""
        return client_for(self.target, self.connection_pool, self.max_connections, **self.connection)  # type: ignore[no-any-return]

    async def shutdown(self) -> None:
        if self.cluster and "sender" in self.__dict__:  # a cluster's own client (elsewhere: taskiq-redis's pool)
            await self.sender.aclose()
        await super().shutdown()  # type: ignore[misc]

    def sending_options(self, options: RedisCommonOptions) -> None:
        self.send_timeout = options.send_timeout
        self.connect_timeout = options.socket_connect_timeout + options.send_timeout

    async def startup(self) -> None:
        await check_reachable(self.spec, self.sender, self.connect_timeout)
        await super().startup()  # type: ignore[misc]

    def _target(self, message: BrokerMessage) -> tuple[str, float | None]:
        """The message's queue key, and when it is due (None: now); InvalidDelayError before anything is sent."""
        queue = message.labels.get(labels.QUEUE)
        key = self.key_for(check_queue(queue, self.spec.driver) if queue else None)
        due = due_at(message)
        return key, None if due is None or due - time.time() <= MIN_DELAY else due

    def _send(self, redis: Any, message: BrokerMessage) -> Any:
        key, due = self._target(message)
        if due is None:
            return self.push(redis, key, message)
        return redis.zadd(delayed_key(key), {message.message: due})

    async def kick(self, message: BrokerMessage) -> None:
        await bounded(self.spec, self.send_timeout, self._send(self.sender, message))

    async def kick_many(self, messages: Sequence[BrokerMessage]) -> None:
        """Send many jobs in one round trip (``Connection.bulk``)."""
        async with self.sender.pipeline(transaction=False) as pipe:
            run: list[BrokerMessage] = []  # due jobs in a row for one key: one command on a list
            run_key = ""
            for message in messages:
                key, due = self._target(message)
                if run and (due is not None or key != run_key):
                    self.push_many(pipe, run_key, run)
                    run = []
                if due is None:
                    run.append(message)
                    run_key = key
                else:
                    pipe.zadd(delayed_key(key), {message.message: due})
            if run:
                self.push_many(pipe, run_key, run)
            await bounded(self.spec, self.send_timeout, pipe.execute())
