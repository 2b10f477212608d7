# Jobs for chains and batches (Bus.chain / Bus.batch), as an app writes them; each records under $RECORD_DIR.
import asyncio
import json
import os
import time

from queue_manager import Batch, Job, current_job, task


def _record(file: str, **row) -> None:
    with open(os.path.join(os.environ["RECORD_DIR"], file), "a") as handle:
        handle.write(json.dumps({**row, "at": time.time(), "pid": os.getpid()}) + "\n")


@task
async def step(key: str, name: str, sleep: float = 0, fail: bool = False, fail_once: bool = False) -> str:
    """Records its start and end under `key`; sleeps; raises if `fail` (or the first time, if `fail_once`)."""
    _record(key, name=name, event="start", job_id=current_job().job_id)
    if sleep:
        await asyncio.sleep(sleep)
    marker = os.path.join(os.environ["RECORD_DIR"], f"failed-once-{key}-{name}")
    if fail or (fail_once and not os.path.exists(marker)):
        open(marker, "w").close()
        raise RuntimeError(f"{name} failed")
    _record(key, name=name, event="end", job_id=current_job().job_id)
    return name


@task
async def on_then(batch: Batch) -> None:
    _record("then", id=batch.id, processed=batch.processed_jobs, failed=batch.failed_jobs, pending=batch.pending_jobs)


@task
async def on_catch(batch: Batch, error: Exception) -> None:
    _record("catch", id=batch.id, error=str(error))


@task
async def on_finally(batch: Batch) -> None:
    _record(
        "finally", id=batch.id, processed=batch.processed_jobs, failed=batch.failed_jobs, pending=batch.pending_jobs
    )


@task
async def chain_catch(error: Exception) -> None:
    await asyncio.sleep(0.5)  # slower than chain_finally: finally still runs after it (as Laravel runs them)
    _record("chain-catch", error=str(error))


@task
async def chain_finally() -> None:
    _record("chain-finally")


class AddsToItsBatch(Job):
    """Adds `more` steps to the batch it runs in (Laravel's $this->batch()->add([...]))."""

    def __init__(self, key: str, more: int) -> None:
        self.key = key
        self.more = more

    async def handle(self) -> None:
        batch = await self.batch()
        assert batch is not None, "AddsToItsBatch runs in a batch"
        await batch.add([step.dispatch(self.key, f"added-{n}") for n in range(self.more)])
        _record(self.key, name="adder", event="end", job_id=self.job_id)
