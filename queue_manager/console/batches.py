"""Laravel's batch commands: ``queue:batches``, ``queue:batch ID``, ``queue:retry-batch ID``,
``queue:prune-batches``. Each is a thin shell over ``manager.batches.store`` (and ``manager.failed`` to retry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cleo.helpers import argument, option

from drivers import QueueConfigurationError
from queue_manager.batches import hours_ago
from queue_manager.bus import Batch, wire
from queue_manager.console.failed import FailedJobCommand, shown

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager


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
        return 0


class QueueRetryBatchCommand(FailedJobCommand):
    name = "queue:retry-batch"
    description = (
        "Send a batch's failed jobs back to their queues (the batch's counts follow; a failed chain link's chain "
        "goes on once it succeeds)."
    )
    arguments = [argument("id", "The batch's id")]

    def handle(self) -> int:
        return self.run_command(self.retry)

    def retry(self) -> int:
        async def work(manager: QueueManager) -> int:
            batch = await _find(manager, self.argument("id"))
            failed = set(batch.failed_job_ids)
            records = [job for job in await manager.failed.summaries() if job.task_id in failed]
            if not records:
                return 0
            skipped = [job for record in records for job in await _later_links(manager, batch.id, record.id)]
            await manager.batches.store.forget_failures(batch.id, [job.task_id for job in records], skipped)
            retried = await manager.failed.retry([job.id for job in records])
            return len(retried)

        count = self.with_manager(work)
        if not count:
            self.line("<info>The batch has no failed jobs to retry.</info>")
            return 0
        self.line(f"<info>Retried {count} failed job{'' if count == 1 else 's'} of batch {self.argument('id')}.</info>")
        return 0


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
