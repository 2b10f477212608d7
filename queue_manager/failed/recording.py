"""Recording failed jobs without holding up a worker: a record goes to the store within ``WRITE_TIMEOUT``;
if the store does not answer, it goes to this machine's spool (``spool``) instead, and so do the next ones
at once while the store stays away, until a background task has written the spool to the store.

So a job's worker slot (or, for a poison message, the fetch loop) waits at most ``WRITE_TIMEOUT`` for the
first record of an outage and not at all for the next ones, and no record is lost: before, a store cut off
by a partition held each failing job's slot ~61 s (asyncpg's connect timeout) and then dropped its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from queue_manager.failed.record import FailedJob
from queue_manager.failed.spool import Spool
from queue_manager.failed.store import FailedJobStore

logger = logging.getLogger("queue_manager.failed")

WRITE_TIMEOUT = 5.0  # seconds a record may take to reach the store before it goes to the spool
FLUSH_PAUSES = (0.5, 10.0)  # seconds between attempts to write the spool while the store is away: first, most


class Recorder:
    """Writes records to ``store()``, or to the spool under ``base_path()`` while it does not answer."""

    def __init__(self, store: Callable[[], FailedJobStore], base_path: Callable[[], Path]) -> None:
        self._store = store
        self._base_path = base_path
        self._spool: Spool | None = None
        self._flushing: asyncio.Task[None] | None = None
        #: Why the store did not answer, while it is away (records go straight to the spool).
        self.away: str | None = None

    @property
    def spool(self) -> Spool:
        if self._spool is None:
            self._spool = Spool(self._base_path(), self._store().identity)
        return self._spool

    async def write(self, job: FailedJob) -> str | None:
        """Keep ``job``: None once it is in the store, else where it waits for the store (a sentence)."""
        store = self._store()
        if self.away is None:
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await store.log(job)
                return None
            except Exception as error:
                if not self._unreachable(store, error):
                    raise
                self._went_away(store, error)
        path = await asyncio.to_thread(self.spool.add, job)
        self.flush_soon()
        return f"kept in {path.parent} until the store answers ({self.away})"

    def resume(self) -> None:
        """Write what an earlier process left in the spool (a worker starting), in the background."""
        if self.spool.pending():
            self.flush_soon()

    def flush_soon(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def close(self) -> None:
        """Stop flushing (what is left stays in the spool for the next process)."""
        flushing, self._flushing = self._flushing, None
        if flushing is not None and not flushing.done():
            flushing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flushing

    # -- the spool to the store ------------------------------------------------------------------------
    async def _flush(self) -> None:
        pause, written = FLUSH_PAUSES[0], 0
        while True:
            pending = await asyncio.to_thread(self.spool.pending)
            if not pending:
                if self.away is None:
                    break
                self.away = None  # new records go to the store again; one more look for any spooled meanwhile
                continue
            done, answered = await self._write_spooled(pending)
            written += done
            if not answered:
                await asyncio.sleep(pause)
                pause = min(pause * 2, FLUSH_PAUSES[1])
            elif not done:  # every one is being written by another process: let it
                await asyncio.sleep(FLUSH_PAUSES[0])
            else:
                pause = FLUSH_PAUSES[0]
        if written:
            logger.warning(
                "Wrote %d failed job(s) from the spool %s to the failed-jobs store", written, self.spool.directory
            )

    async def _write_spooled(self, paths: list[Path]) -> tuple[int, bool]:
        """Write these spooled records to the store until it stops answering: how many were written, and
        whether it answered throughout."""
        store, written = self._store(), 0
        for path in paths:
            try:
                with self.spool.taking(path) as job:
                    if job is None:  # another process has it
                        continue
                    async with asyncio.timeout(WRITE_TIMEOUT):
                        await store.log(job)
                written += 1
            except Exception as error:
                if self._unreachable(store, error):
                    self._went_away(store, error)
                    return written, False
                self._set_aside(path, store.describe(error))
        return written, True

    def _set_aside(self, path: Path, reason: str) -> None:
        """A record the store refuses (or a file that is not one) is moved out of the way, not tried forever."""
        try:
            kept: Path | str = self.spool.set_aside(path)
        except OSError as error:
            kept = f"{path} (could not be moved: {error})"
        logger.error("The failed-jobs store refused a spooled failed job (%s); it is kept in %s", reason, kept)

    @staticmethod
    def _unreachable(store: FailedJobStore, error: BaseException) -> bool:
        return isinstance(error, TimeoutError) or store.unreachable(error)

    def _went_away(self, store: FailedJobStore, error: BaseException) -> None:
        reason = store.describe(error) if str(error) else f"no answer within {WRITE_TIMEOUT:g} s"
        if self.away is None:
            logger.warning(
                "The failed-jobs store (%s) did not answer (%s): failed jobs are kept in %s and written to it "
                "when it answers",
                store.where,
                reason,
                self.spool.directory,
            )
        self.away = reason
