"""Laravel's batch commands: ``queue:batches``, ``queue:batch ID``, ``queue:retry-batch ID``,
``queue:prune-batches``. Each is a thin shell over ``manager.batches.store`` (and ``manager.failed`` to retry)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cleo.helpers import argument, option

from drivers import QueueConfigurationError
from queue_manager.batches import FAILED, SKIPPED, hours_ago
from queue_manager.bus import Batch, wire
from queue_manager.bus.batch import callback_queue
from queue_manager.bus.callback_sending import send_callbacks
from queue_manager.console.failed import FailedJobCommand, shown
from queue_manager.failed import FailedJobSummary, RetryIncompleteError

if TYPE_CHECKING:
    from queue_manager.failed import Retried
    from queue_manager.manager import QueueManager

logger = logging.getLogger("queue_manager.bus")


def _when(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _status(batch: Batch) -> str:
    if batch.cancelled:
        return "cancelled" if not batch.finished else "cancelled, finished"
    return "finished" if batch.finished else "running"


async def _find(manager: QueueManager, id: str) -> Batch:
    row = await manager.batches.store.find(str(id).strip())
    if row is None:
        raise QueueConfigurationError(f"No batch has the id {id!r} (python artisan queue:batches lists them).")
    return Batch.of(row)


async def _later_links(manager: QueueManager, batch_id: str, failed_id: str) -> list[str]:
    """The job ids of the links after a failed chain link of the batch: recorded skipped when it failed, they run
    (and count) again once it succeeds."""
    job = await manager.failed.find(failed_id)
    state = wire.chain_state(job.labels) if job is not None else None
    if state is None or state.get("batch") != batch_id:
        return []
    return [wire.link_id(str(state["id"]), later) for later in range(int(state["i"]) + 1, len(state["links"]))]


class QueueBatchesCommand(FailedJobCommand):
    name = "queue:batches"
    description = "List the job batches (newest first), with their progress."
    options = [option("limit", None, "How many to show", flag=False, default="50")]

    def handle(self) -> int:
        return self.run_command(self.list_batches)

    def list_batches(self) -> int:
        try:
            limit = int(self.option("limit"))
        except ValueError:
            raise QueueConfigurationError(f"--limit must be a whole number, got {self.option('limit')!r}.") from None
        rows = self.with_manager(lambda manager: manager.batches.store.all(limit))
        if not rows:
            self.line("<info>No batches.</info>")
            return 0
        batches = [Batch.of(row) for row in rows]
        table = self.table(
            rows=[  # type: ignore[arg-type]
                [
                    batch.id,
                    shown(batch.name),
                    f"{batch.progress()}%",
                    str(batch.total_jobs),
                    str(batch.pending_jobs),
                    str(batch.failed_jobs),
                    _status(batch),
                    _when(batch.created_at),
                ]
                for batch in batches
            ]
        )
        table.set_headers(["ID", "Name", "Progress", "Total", "Pending", "Failed", "Status", "Created at"])
        table.render()
        return 0


class QueueBatchCommand(FailedJobCommand):
    name = "queue:batch"
    description = "Show one job batch, with the ids of its failed jobs."
    arguments = [argument("id", "The batch's id (queue:batches lists them)")]

    def handle(self) -> int:
        return self.run_command(self.show)

    def show(self) -> int:
        batch = self.with_manager(lambda manager: _find(manager, self.argument("id")))
        for label, value in (
            ("ID", batch.id),
            ("Name", shown(batch.name) or "-"),
            ("Progress", f"{batch.progress()}%"),
            ("Total jobs", batch.total_jobs),
            ("Pending jobs", batch.pending_jobs),
            ("Processed jobs", batch.processed_jobs),
            ("Failed jobs", batch.failed_jobs),
            ("Status", _status(batch)),
            ("Created at", _when(batch.created_at)),
            ("Cancelled at", _when(batch.cancelled_at)),
            ("Finished at", _when(batch.finished_at)),
        ):
            self.line(f"<comment>{label}:</comment> {value}")
        if batch.failed_job_ids:
            self.line("<comment>Failed job ids:</comment>")
            for job in batch.failed_job_ids:
                self.line(f"  {shown(job)}")
            self.line("(queue:failed, queue:retry and queue:forget take these ids; queue:retry-batch retries them all)")
        return 0


class QueueRetryBatchCommand(FailedJobCommand):
    name = "queue:retry-batch"
    description = (
        "Send a batch's failed jobs back to their queues (the batch's counts follow; a failed chain link's chain "
        "goes on once it succeeds; a cancelled batch is resumed)."
    )
    arguments = [argument("id", "The batch's id")]

    def handle(self) -> int:
        return self.run_command(self.retry)

    def retry(self) -> int:
        id = self.argument("id")
        try:
            done = self.with_manager(lambda manager: retry_batch(manager, id, self.told))
        except RetryIncompleteError as incomplete:
            self.retried(len(incomplete.retried), id)
            for job in incomplete.not_retried:
                self.line_error(f"Could not retry {shown(str(job))}. It stays failed in the batch.", style="error")
            return self.refused_code
        gone = _gone(id, done) if done.missing else ""
        if not done.retried:
            if not done.missing:
                self.line("<info>The batch has no failed jobs to retry.</info>")
                return 0
            self.line_error(f"{gone}: there is nothing to retry.", style="error")
            return self.refused_code
        self.retried(done.retried, id)
        if done.missing:
            self.line_error(f"{gone}: they cannot be retried, and stay failed in the batch.", style="error")
            return self.refused_code
        return 0

    def told(self, text: str) -> None:
        self.line(f"<comment>{shown(text)}</comment>")

    def retried(self, count: int, id: str) -> None:
        self.line(f"<info>Retried {count} failed job{'' if count == 1 else 's'} of batch {shown(str(id))}.</info>")


@dataclass(frozen=True)
class BatchRetried:
    """What ``retry_batch`` did: jobs sent, and the batch's failed jobs that had no record left to send."""

    retried: int
    missing: int


def _gone(id: str, done: BatchRetried) -> str:
    """The batch's failed jobs whose records were forgotten (queue:forget, queue:flush) or pruned."""
    count = f"{done.missing} other" if done.retried else str(done.missing)
    jobs = f"failed job{'' if done.missing == 1 else 's'} {'is' if done.missing == 1 else 'are'}"
    return f"Batch {shown(str(id))}: {count} {jobs} no longer in the failed-jobs store (forgotten or pruned)"


async def retry_batch(manager: QueueManager, id: str, tell: Callable[[str], None]) -> BatchRetried:
    """Send the batch's failed jobs back. A cancelled batch is resumed first (its retried jobs would skip
    themselves: the failure wiped from the counts, the work never done). The counts say pending before the send
    (a job that succeeds at once must not finish the batch early); jobs that were not sent are then recorded
    failed again, and their chains' later links skipped again, so the batch can still finish."""
    batch = await _find(manager, id)
    failed = set(batch.failed_job_ids)
    records = [job for job in await manager.failed.summaries() if job.task_id in failed]
    missing = len(failed - {job.task_id for job in records})
    if not records:
        return BatchRetried(0, missing)
    links = {record.task_id: await _later_links(manager, batch.id, record.id) for record in records}
    store = manager.batches.store
    if batch.cancelled and batch.allows_failures:  # only cancel() cancels such a batch: its jobs would skip
        raise QueueConfigurationError(
            f"Batch {batch.id} was cancelled (batch.cancel()): its jobs skip themselves, so retrying them would "
            "only erase their failures. Nothing was retried."
        )
    resumed = batch.cancelled and await store.resume(batch.id)  # cancelled by its first failure, as it does
    if resumed:
        tell(f"Batch {batch.id} was cancelled; it is resumed: its retried jobs run.")
    await store.forget_failures(batch.id, list(links), [job for later in links.values() for job in later])
    try:
        sent: list[Retried] = await manager.failed.retry([record.id for record in records])
    except RetryIncompleteError as incomplete:  # these were not sent, for sure: as they were before
        unsent = {job.id for job in incomplete.not_retried}
        await _put_back(manager, batch, [r for r in records if r.id in unsent], links, resumed, tell)
        raise
    except BaseException:  # what was sent is not known: nothing is put back, and the user is told
        tell(
            f"Batch {batch.id}: the retry stopped before saying which jobs it sent; their counts say pending. "
            "Once the error is fixed, queue:retry-batch again sends those still in the failed-jobs store."
        )
        raise
    return BatchRetried(len(sent), missing)


async def _put_back(
    manager: QueueManager,
    batch: Batch,
    unsent: list[FailedJobSummary],
    links: dict[str, list[str]],
    resumed: bool,
    tell: Callable[[str], None],
) -> None:
    """The jobs a retry did not send are failed again (their later links skipped again), as before the retry; a
    batch resumed for nothing is cancelled again. If that finishes the batch, its finish callbacks were sent when
    it first finished (their claim is put back), or, if it never had, they are sent now, as a worker would."""
    if not unsent:
        return
    store = manager.batches.store
    finished = False
    try:
        for record in unsent:
            for job, outcome in ((record.task_id, FAILED), *((later, SKIPPED) for later in links[record.task_id])):
                recorded = await store.record(batch.id, job, outcome)
                finished = finished or (recorded is not None and recorded.finished_now)
        if resumed and len(unsent) == len(links):
            await store.cancel(batch.id)
        if finished and batch.finished:
            await store.claim(f"batch:{batch.id}:finish:sent", "1")
            return
    except Exception as error:
        logger.exception("Could not record batch %s's unsent failed jobs as failed again", batch.id)
        tell(f"Batch {batch.id}: could not record its unsent jobs as failed again ({error}); its counts say pending.")
        return
    options = batch.options
    if finished and (options.get("then") or options.get("finally")):
        connection = str(options.get("connection") or manager.get_default_driver())
        try:
            await send_callbacks(manager, f"batch:{batch.id}", "finish", connection, callback_queue(options), {})
        except Exception:
            logger.exception("Could not send the finish callbacks of batch %s", batch.id)


class QueuePruneBatchesCommand(FailedJobCommand):
    name = "queue:prune-batches"
    description = "Delete finished batches older than --hours (24), unfinished ones older than --unfinished, " + (
        "cancelled ones older than --cancelled."
    )
    options = [
        option("hours", None, "Keep finished batches of the last this many hours", flag=False, default="24"),
        option("unfinished", None, "Keep unfinished batches of the last this many hours", flag=False, default="72"),
        option("cancelled", None, "Keep cancelled batches of the last this many hours", flag=False, default="72"),
    ]

    def handle(self) -> int:
        return self.run_command(self.prune)

    def prune(self) -> int:
        hours = self.hours("hours", 24.0) or 0.0
        unfinished = self.hours("unfinished", 72.0) or 0.0
        cancelled = self.hours("cancelled", 72.0) or 0.0
        deleted = self.with_manager(
            lambda manager: manager.batches.store.prune(hours_ago(hours), hours_ago(unfinished), hours_ago(cancelled))
        )
        self.line(f"<info>Deleted {deleted} batch{'' if deleted == 1 else 'es'}.</info>")
        return 0
