"""Redis list driver (the default): Laravel's reserved-job design on taskiq-redis's ``ListQueueBroker``.

TaskIQ's list broker BRPOPs a job, which removes it from Redis before it runs: a worker that is killed
(OOM, a redeploy) loses every job it was running. Here, as in Laravel's Redis queue, a fetched job is
moved atomically (one Lua script) from the list into a sorted set beside it,
``<queue key>:reserved``, scored by ``now + retry_after``, and deleted from there only when it has
finished (its result written or its retry scheduled). Any worker's next fetch moves expired
reservations back to the queue, so a killed worker's jobs run again after ``retry_after``; while a
worker lives, one heartbeat loop extends the reservations of every job it holds, so a job longer than
``retry_after`` is never started a second time in parallel. On shutdown a worker gives back at once
the jobs it fetched but did not finish.

Because a fetched job is reserved, not gone, a fetch may take several jobs in one round trip: as many
as the worker has free slots (``common.in_flight``), at most ``fetch_batch``. Acknowledgements and
results go out batched (``batch``). An idle worker waits with a blocking ``BLMOVE`` of the
queue onto itself, which wakes it when a job arrives without taking the job out of Redis.

Sending is unchanged (LPUSH to ``<prefix><queue>``; taskiq-redis's ``ListQueueBroker`` on the same key
interoperates), delayed jobs wait in ``<queue key>:delayed`` as before, and several queues are taken in
the order given (strict priority, as Laravel's ``--queue=high,low``). On a Redis Cluster (option ``cluster``)
the queue's key is hash-tagged, ``<prefix>{<queue>}``, so the list, ``:delayed`` and ``:reserved`` share a
slot and the scripts stay legal; the plain key (and so the interop) is kept everywhere else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from hashlib import sha1
from typing import Any

from redis.exceptions import NoScriptError
from taskiq import AckableMessage, AsyncBroker, AsyncResultBackend, BrokerMessage
from taskiq_redis import ListQueueBroker

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
from drivers.redis.options import RedisOptions
from drivers.redis.sending import MIGRATE_BATCH, RedisSending, delayed_key
from drivers.redis.target import tagged, target_of

logger = logging.getLogger("queue_manager.drivers.redis")

# An idle worker serving several queues can block on one list only: it looks at the others this often.
MULTI_QUEUE_POLL = 0.25
PUSH_AT_ONCE = 1000  # values in one LPUSH of a bulk send (the largest Redis command stays small)
FETCH = lua.source("fetch")  # reserve up to N jobs (moving due delayed and expired reserved ones back first)
RELEASE = lua.source("release")  # give reserved jobs back to the head of their queue


def reserved_key(key: str) -> str:
    return f"{key}:reserved"


Held = tuple[str, bytes]  # (queue key, job): a reservation


class RedisListBroker(RedisHolding, RedisSending, ListQueueBroker):
    """One Redis list per queue (``<prefix><queue>``): LPUSH to send; fetched jobs are reserved until done."""

    def __init__(self, spec: BrokerSpec, options: RedisOptions) -> None:
        target = target_of(str(spec.url), options.cluster)
        connection = connection_kwargs(options, options.block_timeout)
        super().__init__(
            url=target.pool_url,
            queue_name=tagged(options.prefix, spec.queue, target.cluster),
            max_connection_pool_size=options.max_connections,
            **connection,
        )
        self.spec = spec
        self.use_target(target, options, connection)
        self.sending_options(options)
        self.prefix = options.prefix
        self.block_timeout = options.block_timeout
        self.retry_after = options.retry_after
        self.queues = [spec.queue]
        # (queue key, job) of every job fetched and not finished
        self.in_flight: InFlight[Held] = InFlight(options.retry_after / 3, self._extend, options.fetch_batch)
        self.batcher = RedisBatcher(self.sender)
        self.pausing = PausedQueues(self)
        self._fetch_sha = sha1(FETCH.encode()).hexdigest()
        self._release = self.sender.register_script(RELEASE)

    def listen_to(self, queues: Sequence[str]) -> None:
        """Serve these queues, first one first (call before the worker starts listening)."""
        self.queues = [check_queue(queue, self.spec.driver) for queue in queues]

    def push(self, redis: Any, key: str, message: BrokerMessage) -> Any:
        return redis.lpush(key, message.message)

    def push_many(self, pipe: Any, key: str, messages: Sequence[BrokerMessage]) -> None:
        """One LPUSH for them all: the first is taken first, as with one LPUSH each."""
        for first in range(0, len(messages), PUSH_AT_ONCE):
            pipe.lpush(key, *(message.message for message in messages[first : first + PUSH_AT_ONCE]))

    async def counts(self, queue: str) -> QueueCounts:
        """Waiting in the list, delayed (not due yet), reserved (fetched by a worker and not finished)."""
        key = self.key_for(queue)
        try:
            async with self.sender.pipeline(transaction=True) as pipe:
                pipe.llen(key)
                pipe.zcard(delayed_key(key))
                pipe.zcard(reserved_key(key))
                waiting, delayed, reserved = await pipe.execute()
        except CONNECTION_ERRORS as error:
            raise unreachable(self.spec, error) from None
        return QueueCounts(int(waiting), int(delayed), int(reserved))

    def length(self, pipe: Any, key: str) -> Any:
        return pipe.llen(key)

    def empty(self, pipe: Any, key: str) -> Any:
        return pipe.delete(key)

    # -- receiving (the consume loop is common.consuming's) ---------------------------------------------
    async def take(self, queues: Sequence[str]) -> list[Taken[int]]:
        """Reserve up to the worker's free slots, first queue first; with none waiting, block on the first queue
        until a job arrives (or ``block_timeout``) and return nothing, so the loop looks at the pauses again."""
        keys = [self.key_for(queue) for queue in queues]
        taken = await self._take(keys, self.in_flight.fetch_size())
        if not taken:
            await self._wait_for_a_job(keys)
        return taken

    async def _take(self, keys: Sequence[str], wanted: int) -> list[Taken[int]]:
        """Reserve up to ``wanted`` jobs, first queue first; each fetch rides in the batch of acknowledgements."""
        taken: list[Taken[int]] = []
        for key in keys:
            now = time.time()
            script_keys = [key, reserved_key(key), delayed_key(key)]
            args = [now, now + self.retry_after, wanted - len(taken), MIGRATE_BATCH]

            def fetch(pipe: Any, k: list[str] = script_keys, a: list[Any] = args) -> Any:
                return pipe.evalsha(self._fetch_sha, 3, *k, *a)

            try:
                jobs = await self.batcher.add(fetch)
            except NoScriptError:  # a new or flushed server: load it, then fetch
                self._fetch_sha = await self.sender.script_load(FETCH)
                jobs = await self.sender.evalsha(self._fetch_sha, 3, *script_keys, *args)
            for job in jobs:
                token = self.in_flight.add((key, job))
                taken.append((token, AckableMessage(data=job, ack=self._acknowledger(token))))
            if len(taken) >= wanted:
                break
        return taken

    async def _wait_for_a_job(self, keys: Sequence[str]) -> None:
        """Block until the first queue has a job (moving its last element onto itself leaves it in place)."""
        timeout = self.block_timeout if len(keys) == 1 else min(self.block_timeout, MULTI_QUEUE_POLL)
        # redis-py types the timeout as int; Redis >= 6 takes fractions of a second.
        await self.sender.blmove(keys[0], keys[0], timeout, "RIGHT", "RIGHT")  # type: ignore[arg-type]

    def _acknowledger(self, token: int) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            """Queued, not awaited: it goes out with the next batch, after this job's result. A coroutine, as
            taskiq-redis's acknowledgements are (code that awaits ``message.ack()`` keeps working)."""
            held = self.in_flight.discard(token)
            if held is not None:
                key, job = held
                reserved = reserved_key(key)
                self.batcher.add_member(
                    reserved,
                    job,
                    lambda pipe, jobs: pipe.zrem(reserved, *jobs),
                    f"acknowledgements (those jobs run again after retry_after, {self.retry_after}s)",
                )

        return ack

    async def _extend(self, held: list[Held]) -> None:
        """The heartbeat: push back the deadline of every job this worker holds (only if still reserved)."""
        deadline = time.time() + self.retry_after
        by_queue: dict[str, dict[bytes, float]] = {}
        for key, job in held:
            by_queue.setdefault(key, {})[job] = deadline
        async with self.sender.pipeline(transaction=False) as pipe:
            for key, jobs in by_queue.items():
                pipe.zadd(reserved_key(key), jobs, xx=True)
            await pipe.execute()

    async def return_jobs(self, held: list[Held]) -> None:
        """Put reserved jobs this worker will not finish back at the head of their queue, now."""
        by_queue: dict[str, list[bytes]] = {}
        for key, job in held:
            by_queue.setdefault(key, []).append(job)
        try:
            for key, jobs in by_queue.items():
                await self._release(keys=[key, reserved_key(key)], args=jobs)
        except CONNECTION_ERRORS as error:
            logger.warning(
                "Queue connection '%s' could not give back %d unfinished jobs (%s); they run again after "
                "retry_after (%ss)",
                self.spec.name,
                len(held),
                type(error).__name__,
                self.retry_after,
            )


def build(spec: BrokerSpec) -> AsyncBroker:
    return build_with(spec, RedisOptions, RedisListBroker)


def results(spec: BrokerSpec) -> AsyncResultBackend[Any]:
    """This connection's result store, for another connection's jobs (its own are written with its acks)."""
    return results_with(spec, RedisOptions)


async def ping(spec: BrokerSpec) -> None:
    await ping_with(spec, RedisOptions)
