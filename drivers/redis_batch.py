"""Many jobs' writes in one Redis round trip: acknowledgements and results, batched as they come.

A worker running 100 jobs finishes them in bursts; each finished job writes its result and then
acknowledges itself. Sent one by one that is two round trips per job. Here every write queued while
the previous batch is in flight (or in the same turn of the event loop) goes out together in one
MULTI/EXEC, so a job's result and its acknowledgement land atomically and the cost per job is a share
of one round trip. A result is queued without waiting ("write-behind"): the acknowledgement that
follows it waits for the batch that carries both, so a job whose result was not written is never
acknowledged, and runs again (at least once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

logger = logging.getLogger("queue_manager.drivers.redis")

Command = Callable[[Any], Any]  # queues one command on a pipeline


class RedisBatcher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[tuple[Command, asyncio.Future[Any] | None]] = []
        self._flushing: asyncio.Task[None] | None = None

    def add(self, command: Command) -> asyncio.Future[Any]:
        """Queue one command; the future resolves with its reply once its batch is written."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future))
        self._schedule()
        return future

    def add_behind(self, command: Command, what: str) -> None:
        """Queue one command nobody waits for (a result); a failure is logged with ``what`` it was."""
        future = self.add(command)
        future.add_done_callback(lambda done: _log_failure(done, what))

    def _schedule(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    for command, _ in batch:
                        command(pipe)
                    replies = await pipe.execute(raise_on_error=False)
            except BaseException as error:
                for _, future in batch:
                    if future is not None and not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for (_, future), reply in zip(batch, replies, strict=True):
                if future is None or future.done():
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    async def drain(self) -> None:
        """Write whatever is queued (before the connection pool closes)."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)


def _log_failure(future: asyncio.Future[Any], what: str) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        logger.warning("Could not write %s to Redis (%s: %s)", what, type(error).__name__, error)
