"""Callbacks are jobs: a worker runs them, never the process that dispatched the batch or chain.

Each is sent as a job of the built-in task ``queue_manager.bus:callback`` on the batch's (or the failed link's)
connection, with a task id derived from its owner and kind. A send is noted in the store after it was made
(``...:sent``), so a job delivered again does not send it again; should a worker die between the send and the
note, the second copy finds the run claim (``...:<kind>``) taken by the first copy's nonce and does nothing.
The same copy delivered again (its worker died) carries the same nonce, so its run claim is its own and it runs
again, unless the callback already ran to its end: each callback notes that after it (``...:<kind>:<n>:done``).
So a callback runs at least once past a crash mid-run, and never again once it has finished.
"""

from __future__ import annotations

import logging
from typing import Any

from taskiq.utils import maybe_awaitable

from drivers.base.errors import QueueConfigurationError
from queue_manager.bus import wire
from queue_manager.bus.batch import Batch
from queue_manager.bus.callback_sending import CALLBACK_TASK
from queue_manager.bus.context import bus_manager
from queue_manager.running.interactions import current_job
from queue_manager.tasks import registry

logger = logging.getLogger("queue_manager.bus")


class JobError(Exception):
    """The error a ``catch`` callback receives: what the failed job raised, as its worker saw it."""

    def __init__(self, message: str, job_id: str = "", task_name: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.job_id, self.task_name, self.kind = job_id, task_name, kind

    def to_dict(self) -> dict[str, str]:
        return {"message": str(self), "job_id": self.job_id, "task_name": self.task_name, "kind": self.kind}

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> JobError | None:
        if not data:
            return None
        return cls(
            str(data.get("message", "")),
            str(data.get("job_id", "")),
            str(data.get("task_name", "")),
            str(data.get("kind", "")),
        )


@registry.task(task_name=CALLBACK_TASK)
async def run_callbacks(
    owner: str,
    kind: str,
    callbacks: dict[str, list[dict[str, str]]] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """Run the callbacks of one kind (``finish``: then, if all succeeded, and finally; ``catch``; a chain's
    ``failed``: catch, then finally; a chain's ``finally``), each claimed first, so each runs once across every copy
    of this job."""
    manager = bus_manager()
    store = manager.batches.store
    message = current_job().message
    nonce = str(message.labels.get(wire.NONCE) or message.task_id)
    broker = manager.connection().broker
    failure = JobError.of(error)
    batch: Batch | None = None
    all_ran = True  # every job of the batch did its work (none failed, none skipped by a cancel or a failed link)
    if owner.startswith("batch:"):
        row = await store.find(owner.partition(":")[2])
        if row is None:
            logger.warning("Batch %s is gone: its %s callbacks do not run", owner, kind)
            return
        batch = Batch.of(row)
        callbacks = batch.options
        all_ran = not (row.failed or row.skipped or row.cancelled_at)
    callbacks = callbacks or {}
    steps = STEPS.get(kind)
    if steps is None:
        raise QueueConfigurationError(f"Unknown callback kind {kind!r} (a newer version sent it): retry it there.")
    if kind == "finish" and not all_ran:
        steps = ["finally"]
    first_error: BaseException | None = None
    for step in steps:  # each step runs even if one before it raised (finally after a catch that failed)
        try:
            await _run_step(store, owner, step, nonce, callbacks.get(step) or [], batch, failure, broker)
        except Exception as error:
            first_error = first_error or error
    if first_error is not None:
        raise first_error


#: What each kind of callback job runs, in order.
STEPS = {
    "finish": ["then", "finally"],  # a batch whose jobs all ran (then only if all did their work)
    "failed": ["catch", "finally"],  # a chain whose link failed for good, as Laravel runs them
    "catch": ["catch"],
    "finally": ["finally"],
}


async def _run_step(
    store: Any,
    owner: str,
    step: str,
    nonce: str,
    specs: list[dict[str, str]],
    batch: Batch | None,
    failure: JobError | None,
    broker: Any,
) -> None:
    """One step's callbacks, claimed for this copy of the job; each noted done when it ran to its end."""
    if not specs or not await store.claim(f"{owner}:{step}", nonce):
        return
    for number, spec in enumerate(specs):
        done_key = f"{owner}:{step}:{number}:done"
        if await store.owner(done_key) is not None:
            continue  # it ran to its end: this copy was delivered again after that
        args: list[Any] = [] if batch is None else [batch]
        if step == "catch":
            args.append(failure)
        await maybe_awaitable(wire.resolve_callback(spec, broker)(*args))
        await store.claim(done_key, nonce)
