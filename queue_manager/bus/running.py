"""What a worker does for chains and batches: a TaskIQ middleware on every connection's broker.

It hooks in after the attempts policy (``running.retries``) has decided: in ``post_execute`` a job has either
succeeded, or will run again (its result is TaskIQ's ``NoResultError``: a retry or a release), or failed for good.
Only the first and last are outcomes. A batch job's outcome is recorded under its job id (so a job delivered
twice counts once) and the one worker whose record finished the batch sends the callbacks. A chain link that
succeeded sends the next link (once: see ``wire``); one that failed for good sends the chain's catch and finally.
All of this happens before the job is acknowledged, so a worker killed meanwhile leaves the job to be delivered
again and the work to be done by the next worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError

from drivers.base import labels as wire_labels
from queue_manager.batches import DONE, FAILED, SKIPPED
from queue_manager.batches.store import Outcome
from queue_manager.bus import wire
from queue_manager.bus.batch import callback_queue
from queue_manager.bus.callback_sending import send_callbacks
from queue_manager.bus.callbacks import JobError
from queue_manager.bus.chain import send_link
from queue_manager.bus.context import BusManager
from queue_manager.running.interactions import _CURRENT

logger = logging.getLogger("queue_manager.bus")
CANCEL_CHECK = 1.0  # seconds a worker trusts what it read of a batch not being cancelled


class _Skip:
    """Job middleware put in front of a job that must not run (its batch is cancelled, or it is a second copy of
    a chain link): its code does not run. A second copy counts as nothing; a job of a cancelled batch counts as
    skipped (it did none of its work, so the batch's ``then`` never runs, even once resumed)."""

    async def handle(self, job: Any, next: Any) -> Any:
        return None


class BusMiddleware(TaskiqMiddleware):
    def __init__(self, manager: BusManager, connection: str) -> None:
        super().__init__()
        self.manager = manager
        self.connection = connection
        self._duplicates: set[int] = set()
        self._cancel_skipped: set[int] = set()
        self._cancelled: dict[str, tuple[float, bool]] = {}  # batch -> (when read, cancelled)
        self._reading: dict[str, asyncio.Future[Any]] = {}  # batch -> the store read under way

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        labels = message.labels
        if wire.CHAIN not in labels and wire.BATCH not in labels:
            return message
        skip = False
        state = wire.chain_state(labels)
        if state is not None and labels.get(wire.NONCE):
            run_key = f"chain:{state['id']}:{int(state['i'])}:run"
            if not await self.manager.batches.store.claim(run_key, str(labels[wire.NONCE])):
                logger.info("Job %s is a second copy of chain link %s: skipped", message.task_id, run_key)
                self._duplicates.add(id(message))
                skip = True
        batch_id = labels.get(wire.BATCH)
        if not skip and batch_id and await self._is_cancelled(str(batch_id)):
            self._cancel_skipped.add(id(message))
            skip = True
        if skip:
            interactions = _CURRENT.get()
            if interactions is not None and interactions.message is message:
                interactions.middleware = [_Skip(), *interactions.middleware]
        return message

    async def _is_cancelled(self, batch_id: str) -> bool:
        """Read from the store at most once per ``CANCEL_CHECK`` seconds per batch, by one job while the others
        running meanwhile wait for its answer (a cancel reaches every worker within that; so does a resume, which
        ``queue:retry-batch`` makes of a cancelled batch)."""
        now = time.monotonic()
        seen = self._cancelled.get(batch_id)
        if seen is not None and not seen[1] and now - seen[0] < CANCEL_CHECK:
            return False  # "cancelled" is read again each time: a resume (queue:retry-batch) counts at once
        reading = self._reading.get(batch_id)
        if reading is None:
            reading = asyncio.ensure_future(self.manager.batches.store.find(batch_id, with_failed_ids=False))
            self._reading[batch_id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(batch_id, None))
        row = await asyncio.shield(reading)
        cancelled = row is not None and row.cancelled_at is not None
        if len(self._cancelled) > 1000:
            self._cancelled.clear()
        self._cancelled[batch_id] = (now, cancelled)
        return cancelled

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        labels = message.labels
        if wire.CHAIN not in labels and wire.BATCH not in labels:
            return
        if id(message) in self._duplicates:
            self._duplicates.discard(id(message))
            return
        cancel_skipped = id(message) in self._cancel_skipped
        self._cancel_skipped.discard(id(message))
        if result.is_err and isinstance(result.error, NoResultError):
            return  # it runs again (a retry or a release): no outcome yet
        failed = bool(result.is_err)
        error = JobError(_describe(result.error), message.task_id, message.task_name) if failed else None
        try:
            state = wire.chain_state(labels)
            batch_id = str(labels.get(wire.BATCH) or "") or None
            if state is not None:
                await self._chain(message, state, error)
            if batch_id is not None:
                await self._batch(batch_id, message.task_id, error, SKIPPED if cancel_skipped else DONE)
        except Exception:
            logger.exception("Could not record the outcome of job %s for its chain or batch", message.task_id)
            raise

    async def _chain(self, message: TaskiqMessage, state: dict[str, Any], error: JobError | None) -> None:
        index, links = int(state["i"]), state["links"]
        chain = f"chain:{state['id']}"
        connection = str(links[index].get("c") or self.connection)
        callbacks = {"catch": state.get("catch") or [], "finally": state.get("finally") or []}
        queue = wire.declared_queue(callbacks["catch"], callbacks["finally"]) or links[index].get("l", {}).get(
            wire_labels.QUEUE
        )
        if error is None:
            if index + 1 < len(links):
                sent_key = f"{chain}:{index + 1}:sent"
                if await self.manager.batches.store.owner(sent_key) is None:
                    await send_link(self.manager, state, index + 1)
                    await self.manager.batches.store.claim(sent_key, "1")
            elif callbacks["finally"]:
                await send_callbacks(self.manager, chain, "finally", connection, queue, {"callbacks": callbacks})
            return
        if state.get("batch"):  # the links after it never run: they are done with, so the batch can finish
            for later in range(index + 1, len(links)):
                await self.manager.batches.store.record(str(state["batch"]), wire.link_id(state["id"], later), SKIPPED)
        if callbacks["catch"] or callbacks["finally"]:  # one job: catch, then finally (as Laravel runs them)
            payload = {"callbacks": callbacks, "error": error.to_dict()}
            await send_callbacks(self.manager, chain, "failed", connection, queue, payload)

    async def _batch(self, batch_id: str, job_id: str, error: JobError | None, succeeded: Outcome = DONE) -> None:
        store = self.manager.batches.store
        recorded = await store.record(batch_id, job_id, FAILED if error is not None else succeeded)
        if recorded is None:
            logger.warning("Job %s belongs to batch %s, which the batch store does not know", job_id, batch_id)
            return
        row = recorded.row
        options = row.options
        connection = str(options.get("connection") or self.connection)
        queue = callback_queue(options)
        owner = f"batch:{batch_id}"
        if error is not None:
            if not options.get("allow_failures"):
                await store.cancel(batch_id)
            if options.get("catch"):
                await send_callbacks(self.manager, owner, "catch", connection, queue, {"error": error.to_dict()})
        again = row.pending == 0 and row.finished_at is not None and not recorded.new  # a re-delivered last job
        if (recorded.finished_now or again) and (options.get("then") or options.get("finally")):
            await send_callbacks(self.manager, owner, "finish", connection, queue, {})


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "failed"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


__all__ = ["BusMiddleware"]
