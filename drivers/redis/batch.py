"""Many jobs' Redis commands in one round trip: results, acknowledgements and the next fetch, batched.

A busy worker finishes jobs in bursts, and each finished job writes its result, acknowledges itself,
and frees a slot that the worker fills with a fetch. Sent one by one that is three round trips per
job. Here results and acknowledgements are queued without waiting ("write-behind"), and every command
queued during the same few turns of the event loop, or while the previous batch is in flight, goes
out together in one MULTI/EXEC: the results and acknowledgements of the jobs that just finished, and
the fetch that replaces them. A job's result is queued before its acknowledgement, so a job is never
acknowledged without its result, and a batch that does not arrive leaves its jobs reserved: they run
again (at least once).

On a Redis Cluster one MULTI/EXEC cannot span slots (results live under their task ids, acknowledgements
beside each queue), and redis-py's cluster pipeline refuses EVALSHA. There a batch goes out in two steps:
first the results, in one cluster pipeline (redis-py groups it per node); only once every one of them is
written, the acknowledgements and fetches, each a command of its own, concurrently. If a result could not be
written, no acknowledgement of that batch is sent: its jobs stay reserved and run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Hashable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

logger = logging.getLogger("queue_manager.drivers.redis")

Command = Callable[[Any], Any]  # queues one command on a pipeline
MembersCommand = Callable[[Any, list[Any]], Any]  # queues one command for many members (ids, jobs)
# How long the first command of a batch waits for company (unless the batch fills up first): at a few
# thousand jobs a second, jobs finish a fraction of a millisecond apart.
LINGER = 0.002  # measured: 0.5 ms gave 6 % fewer jobs/s than 2 ms, 4 ms no more
FULL = 256


Entry = tuple[Command, asyncio.Future[Any], bool]  # the command, its reply, "it writes a result"


class RedisBatcher:
    def __init__(self, redis: Redis | RedisCluster) -> None:
        self.redis = redis
        self.cluster = isinstance(redis, RedisCluster)
        self._pending: list[Entry] = []
        self._flushing: asyncio.Task[None] | None = None
        self._full: asyncio.Future[None] | None = None
        self._members: dict[Hashable, list[Any]] = {}

    def add(self, command: Command, result: bool = False) -> asyncio.Future[Any]:
        """Queue one command (``result``: it stores a job's result, so it must be written before the batch's
        acknowledgements); the future resolves with its reply once its batch is written."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future, result))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        elif self._full is not None and len(self._pending) >= FULL and not self._full.done():
            self._full.set_result(None)
        return future

    def add_behind(self, command: Command, what: str, result: bool = False) -> None:
        """Queue one command nobody waits for; a failure is logged with ``what`` it was."""
        self.add(command, result).add_done_callback(lambda done: _log_failure(done, what))

    def add_member(self, group: Hashable, member: Any, command: MembersCommand, what: str) -> None:
        """Queue ``member`` for one command per ``group`` and batch, nobody waiting (e.g. one ZREM of every
        job acknowledged meanwhile: ``command(pipe, members)``); a failure is logged with ``what`` it was."""
        members = self._members.get(group)
        if members is None:
            members = self._members[group] = []
            self.add_behind(lambda pipe: command(pipe, members), what)  # this batch's members only
        members.append(member)

    async def _flush(self) -> None:
        while self._pending:
            if len(self._pending) < FULL:
                self._full = asyncio.get_running_loop().create_future()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full, LINGER)
                self._full = None
            # A member added from now on belongs to the next batch: on a cluster this batch's results are awaited
            # before its acknowledgements are sent, and a job finishing meanwhile must not be acknowledged here
            # while its result waits in the next batch.
            batch, self._pending, self._members = self._pending, [], {}
            if self.cluster:
                await self._send_on_cluster(batch)
            else:
                await self._send(batch, transaction=True)

    async def _send(self, batch: list[Entry], transaction: bool) -> bool:
        """One pipeline (MULTI/EXEC if ``transaction``); True if every command succeeded."""
        try:
            async with self.redis.pipeline(transaction=transaction) as pipe:
                for command, _, _ in batch:
                    command(pipe)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as error:
            _fail(batch, error)
            if isinstance(error, asyncio.CancelledError):
                raise
            return False
        for (_, future, _), reply in zip(batch, replies, strict=True):
            _settle(future, reply)
        return not any(isinstance(reply, Exception) for reply in replies)

    async def _send_on_cluster(self, batch: list[Entry]) -> None:
        """Results first (one cross-slot pipeline), then everything else, each command on its own slot."""
        results = [entry for entry in batch if entry[2]]
        others = [entry for entry in batch if not entry[2]]
        if results and not await self._send(results, transaction=False):
            _fail(others, ConnectionError("a result of this batch was not written, so its acknowledgements wait"))
            return
        replies = await asyncio.gather(*(_run(self.redis, command) for command, _, _ in others), return_exceptions=True)
        for (_, future, _), reply in zip(others, replies, strict=True):
            if isinstance(reply, asyncio.CancelledError):
                raise reply
            _settle(future, reply)

    async def drain(self) -> None:
        """Write whatever is queued (before the connection pool closes)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)


async def _run(redis: Any, command: Command) -> Any:
    """A command written for a pipeline, sent on the client instead (where it returns an awaitable)."""
    reply = command(redis)
    return await reply if inspect.isawaitable(reply) else reply


def _settle(future: asyncio.Future[Any], reply: Any) -> None:
    if future.done():
        return
    if isinstance(reply, BaseException):
        future.set_exception(reply)
    else:
        future.set_result(reply)


def _fail(batch: list[Entry], error: BaseException) -> None:
    for _, future, _ in batch:
        if not future.done():
            future.set_exception(error)


def _log_failure(future: asyncio.Future[Any], what: str) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        logger.warning("Could not write %s to Redis (%s: %s)", what, type(error).__name__, error)
