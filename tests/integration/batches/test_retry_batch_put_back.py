"""``queue:retry-batch`` (``retry_batch``) when the jobs cannot be sent: the batch's counts say pending before the
send, so a broker that does not answer must not leave them so (the batch would never finish). The jobs not sent
are failed again, their chains' later links skipped again, a batch resumed for nothing is cancelled again, and
its finish claim is put back; a cancelled batch whose jobs are sent is resumed (its jobs would skip themselves)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from queue_manager import QueueManager
from queue_manager.batches import DONE, FAILED, SKIPPED, BatchRow
from queue_manager.batches.store import utc_now
from queue_manager.bus import wire
from queue_manager.console.batches import retry_batch
from queue_manager.failed import RetryIncompleteError
from queue_manager.settings import load_settings
from tests.helpers import cleanup_queue, unique
from tests.unit.failed.test_failed_store import make_job

pytestmark = pytest.mark.usefixtures("clean_env")

TASK = "tests.batches.put_back.job"


def manager_on(base: Path, url: str, queue: str) -> QueueManager:
    settings = load_settings(
        {
            "driver": "redis",
            "connections": {"redis": {"url": url, "queue": queue, "options": {"send_timeout": 2}}},
            "failed": {"url": f"sqlite+aiosqlite:///{base / 'failed.sqlite'}"},
            "batches": {"driver": "memory"},
        }
    )
    return QueueManager(settings, base_path=base)


@pytest.fixture
async def down(tmp_path: Path) -> AsyncIterator[QueueManager]:
    """A manager whose broker does not answer (nothing listens on port 1)."""
    manager = manager_on(tmp_path, "redis://127.0.0.1:1/0", unique("q"))
    try:
        yield manager
    finally:
        await manager.shutdown()


async def failed_batch(manager: QueueManager, chain: bool = False) -> tuple[str, str, list[str]]:
    """A batch (without allow_failures) whose job failed and cancelled it, finished, its finish callbacks sent; with
    ``chain``, the failed job is a chain's second link and its two later links were recorded skipped."""
    store = manager.batches.store
    id, job = unique("b"), "9f1c2d3e4f5a4b6c8d7e9f0a1b2c3d4e"
    later: list[str] = []
    labels: dict[str, str] = {}
    if chain:
        chain_id = unique("c")
        job, later = wire.link_id(chain_id, 1), [wire.link_id(chain_id, i) for i in (2, 3)]
        state = {"id": chain_id, "i": 1, "links": [{}, {}, {}, {}], "batch": id}
        labels = {wire.CHAIN: json.dumps(state)}
    options = {"connection": "redis", "allow_failures": False, "then": [{"t": "x"}], "catch": [], "finally": []}
    await store.create(BatchRow(id, "Import", 2 + len(later), options, utc_now()))
    await store.record(id, "ok", DONE)
    await store.record(id, job, FAILED)
    for link in later:
        await store.record(id, link, SKIPPED)
    await store.cancel(id)
    await store.claim(f"batch:{id}:finish:sent", "1")
    record = dataclasses.replace(make_job(1, connection="redis", task_name=TASK), task_id=job, labels=labels)
    await manager.failed.store.log(record)
    return id, job, later


@pytest.mark.parametrize("chain", [False, True], ids=["job", "chain-link"])
async def test_a_broker_that_does_not_answer_leaves_the_batch_as_it_was(down: QueueManager, chain: bool) -> None:
    id, job, later = await failed_batch(down, chain)
    told: list[str] = []
    with pytest.raises(RetryIncompleteError):
        await retry_batch(down, id, told.append)
    row = await down.batches.store.find(id)
    assert row is not None
    assert (row.failed, row.skipped, row.pending, row.failed_job_ids) == (1, len(later), 0, [job]), row
    assert row.finished_at is not None, "finished again: nothing is pending that would ever finish it"
    assert row.cancelled_at is not None, "resumed for nothing: cancelled again"
    assert await down.batches.store.owner(f"batch:{id}:finish:sent") == "1", "its callbacks were sent before"
    assert [summary.task_id for summary in await down.failed.summaries()] == [job], "the record stays"
    assert told == [f"Batch {id} was cancelled; it is resumed: its retried jobs run."]


async def test_a_cancelled_batch_whose_job_is_sent_is_resumed(tmp_path: Path) -> None:
    queue = unique("q")
    manager = manager_on(tmp_path, "redis://127.0.0.1:6379/0", queue)
    try:
        id, _, _ = await failed_batch(manager)
        done = await retry_batch(manager, id, lambda _: None)
        row = await manager.batches.store.find(id)
        assert row is not None and (done.retried, done.missing) == (1, 0)
        assert row.cancelled_at is None, "its retried job must not skip itself"
        assert (row.failed, row.pending, row.finished_at) == (0, 1, None), row
        assert await manager.failed.count() == 0
    finally:
        await manager.shutdown()
        await cleanup_queue("redis", queue)


async def test_a_forgotten_failed_job_is_counted_as_missing(down: QueueManager) -> None:
    id, job, _ = await failed_batch(down)
    assert await down.failed.forget(job), "queue:forget takes the job id queue:batch shows"
    done = await retry_batch(down, id, lambda _: None)
    assert (done.retried, done.missing) == (0, 1)
    row = await down.batches.store.find(id)
    assert row is not None and row.failed == 1 and row.cancelled_at is not None, "left as it was"


async def test_a_batch_cancelled_by_cancel_is_not_retried_into_skipping(down: QueueManager) -> None:
    """A batch that allows failures is cancelled only by ``cancel()``: its retried jobs would skip themselves and
    only erase their failures, so retry-batch refuses and changes nothing."""
    from drivers.base.errors import QueueConfigurationError

    id, job, _ = await failed_batch(down)
    store = down.batches.store
    row = await store.find(id)
    assert row is not None
    row.options["allow_failures"] = True  # the memory store keeps the row it was given
    with pytest.raises(QueueConfigurationError, match=r"was cancelled \(batch.cancel\(\)\).*Nothing was retried"):
        await retry_batch(down, id, lambda text: None)
    after = await store.find(id)
    assert after is not None and after.cancelled_at is not None and after.failed == 1 and job in after.failed_job_ids
    assert await down.failed.store.summaries(), "the failed record stays"
