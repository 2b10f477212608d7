"""Chains and batches on the memory driver (in-process, no server): a chain runs in order and stops at a
failure with catch and finally once; a batch runs to the end with then/catch/finally once each; allow_failures;
add from inside a job; cancel; the counts are by job id. The same on real workers is in tests/e2e/bus."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from queue_manager import Batch, Bus, Job, NeverAwaitedWarning, QueueManager, task, use_manager
from queue_manager.batches import DONE, FAILED, BatchRow, MemoryBatchStore
from queue_manager.batches.store import utc_now
from queue_manager.settings import load_settings

RAN: list[Any] = []


@task
async def step(name: str) -> str:
    RAN.append(name)
    return name


@task
async def boom(name: str) -> None:
    RAN.append(name)
    raise RuntimeError(f"{name} broke")


@task
async def chain_failed(error: Exception) -> None:
    RAN.append(("catch", str(error)))


@task
async def chain_done() -> None:
    RAN.append("finally")


@task
async def batch_then(batch: Batch) -> None:
    RAN.append(("then", batch.processed_jobs, batch.failed_jobs))


@task
async def batch_catch(batch: Batch, error: Exception) -> None:
    RAN.append(("catch", str(error)))


@task
async def batch_finally(batch: Batch) -> None:
    RAN.append(("finally", batch.processed_jobs, batch.failed_jobs, batch.pending_jobs))


class ImportRows(Job):
    def __init__(self, start: int) -> None:
        self.start = start

    async def handle(self) -> None:
        batch = await self.batch()
        assert batch is not None
        RAN.append(("rows", self.start))
        if self.start == 0:
            await batch.add([ImportRows(100)])


async def wait_for(condition: Callable[[], bool], within: float = 10) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110  (a condition on what jobs recorded, not an event)
            await asyncio.sleep(0.01)


@pytest.fixture
async def manager(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[QueueManager]:
    RAN.clear()
    queue = QueueManager(load_settings({"driver": "memory"}), base_path=tmp_path)
    use_manager(queue)
    with queue.failed.isolated(), queue.batches.isolated():
        yield queue
    await queue.shutdown()
    use_manager(None)


async def test_a_chain_runs_in_order_then_its_finally(manager: QueueManager) -> None:
    await Bus.chain([step.dispatch("a"), step.dispatch("b"), step.dispatch("c")]).finally_(chain_done).dispatch()
    await wait_for(lambda: "finally" in RAN)
    assert RAN == ["a", "b", "c", "finally"]


async def test_a_chain_stops_at_a_failure_and_runs_catch_and_finally_once(manager: QueueManager) -> None:
    chain = Bus.chain([step.dispatch("a"), boom.dispatch("b"), step.dispatch("c")])
    await chain.catch(chain_failed).finally_(chain_done).dispatch()
    await wait_for(lambda: "finally" in RAN)
    await asyncio.sleep(0.1)
    assert RAN == ["a", "b", ("catch", "RuntimeError: b broke"), "finally"]


async def test_a_batch_runs_then_and_finally_once_with_exact_counts(manager: QueueManager) -> None:
    batch = await (
        Bus.batch([step.dispatch(str(n)) for n in range(20)])
        .then(batch_then)
        .catch(batch_catch)
        .finally_(batch_finally)
        .name("Import")
        .dispatch()
    )
    await wait_for(lambda: any(isinstance(r, tuple) and r[0] == "finally" for r in RAN))
    assert ("then", 20, 0) in RAN and ("finally", 20, 0, 0) in RAN
    assert not any(isinstance(r, tuple) and r[0] == "catch" for r in RAN)
    found = await Bus.find_batch(batch.id)
    assert found is not None and found.finished and found.progress() == 100 and found.name == "Import"


async def test_a_failing_job_runs_catch_once_and_skips_then(manager: QueueManager) -> None:
    batch = await (
        Bus.batch([step.dispatch("a"), boom.dispatch("b"), boom.dispatch("c")])
        .then(batch_then)
        .catch(batch_catch)
        .finally_(batch_finally)
        .allow_failures()
        .dispatch()
    )
    await wait_for(lambda: any(isinstance(r, tuple) and r[0] == "finally" for r in RAN))
    catches = [r for r in RAN if isinstance(r, tuple) and r[0] == "catch"]
    assert len(catches) == 1
    assert not any(isinstance(r, tuple) and r[0] == "then" for r in RAN)
    assert ("finally", 1, 2, 0) in RAN
    found = await Bus.find_batch(batch.id)
    assert found is not None and found.failed_jobs == 2 and len(found.failed_job_ids) == 2
    assert not found.cancelled  # allow_failures


async def test_a_batch_without_allow_failures_is_cancelled_at_its_first_failure(manager: QueueManager) -> None:
    batch = await Bus.batch([boom.dispatch("x")]).dispatch()
    await wait_for(lambda: "x" in RAN)
    await asyncio.sleep(0.05)
    found = await Bus.find_batch(batch.id)
    assert found is not None and found.cancelled and found.finished


async def test_a_job_adds_to_its_own_batch_and_the_chain_inside_counts(manager: QueueManager) -> None:
    batch = await (
        Bus.batch([ImportRows(0), [step.dispatch("c1"), step.dispatch("c2")]]).finally_(batch_finally).dispatch()
    )
    await wait_for(lambda: any(isinstance(r, tuple) and r[0] == "finally" for r in RAN))
    assert ("rows", 100) in RAN and RAN.index("c1") < RAN.index("c2")
    found = await Bus.find_batch(batch.id)
    assert found is not None and found.total_jobs == 4 and found.processed_jobs == 4 and found.pending_jobs == 0


async def test_a_chain_in_a_batch_that_fails_lets_the_batch_finish(manager: QueueManager) -> None:
    batch = await (
        Bus.batch([[boom.dispatch("c1"), step.dispatch("c2"), step.dispatch("c3")], step.dispatch("s")])
        .allow_failures()
        .finally_(batch_finally)
        .dispatch()
    )
    await wait_for(lambda: any(isinstance(r, tuple) and r[0] == "finally" for r in RAN))
    assert "c2" not in RAN
    found = await Bus.find_batch(batch.id)
    assert found is not None and found.pending_jobs == 0 and found.failed_jobs == 1 and found.total_jobs == 4


async def test_a_cancelled_batch_skips_its_queued_jobs(manager: QueueManager) -> None:
    batch = await Bus.batch([step.dispatch(f"j{n}").delay(0.3) for n in range(5)]).finally_(batch_finally).dispatch()
    await batch.cancel()
    await wait_for(lambda: any(isinstance(r, tuple) and r[0] == "finally" for r in RAN))
    found = await Bus.find_batch(batch.id)
    assert found is not None and found.cancelled and found.pending_jobs == 0
    assert not any(isinstance(r, str) and r.startswith("j") for r in RAN)


async def test_pending_dispatches_handed_to_the_bus_do_not_warn(manager: QueueManager) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", NeverAwaitedWarning)
        chain = Bus.chain([step.dispatch("a")])
        batch = Bus.batch([step.dispatch("b")])
        del chain, batch
        import gc

        gc.collect()


async def test_a_callback_must_be_found_by_a_worker(manager: QueueManager) -> None:
    from drivers.base.errors import QueueConfigurationError

    with pytest.raises(QueueConfigurationError, match="declared jobs"):
        Bus.batch([step.dispatch("a")]).then(lambda batch: None)


async def test_the_store_counts_each_job_once_and_finishes_once() -> None:
    store = MemoryBatchStore()
    await store.create(BatchRow("b1", "", 2, {}, utc_now()))
    first = await store.record("b1", "j1", DONE)
    again = await store.record("b1", "j1", DONE)
    assert first is not None and again is not None and first.new and not again.new
    assert again.row.done == 1 and again.row.pending == 1 and not again.finished_now
    last = await store.record("b1", "j2", FAILED)
    assert last is not None and last.finished_now and last.row.failed == 1
    redelivered = await store.record("b1", "j2", FAILED)
    assert redelivered is not None and not redelivered.finished_now


async def test_the_fake_records_chains_and_batches(manager: QueueManager) -> None:
    with manager.fake() as fake:
        fake.assert_nothing_batched()
        await Bus.chain([step.dispatch("a"), ImportRows(1), boom.dispatch("b")]).dispatch()
        await Bus.batch([step.dispatch(str(n)) for n in range(10)]).name("Import").dispatch()
        fake.assert_chained([step, ImportRows, boom])
        fake.assert_batched(lambda batch: batch.name == "Import" and len(batch.jobs) == 10)
        with pytest.raises(AssertionError, match="Expected the chain"):
            fake.assert_chained([step, boom])
        with pytest.raises(AssertionError, match="matching the callback"):
            fake.assert_batched(lambda batch: batch.name == "Export")
        with pytest.raises(AssertionError, match="Expected no batch"):
            fake.assert_nothing_batched()
        fake.assert_pushed(step, times=11)  # the chain's first link and the batch's ten
    assert RAN == [], "nothing ran while faked"


def test_batch_store_settings_are_checked_at_boot(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from drivers.base.errors import QueueConfigurationError

    clean_env.setenv("QUEUE_BATCHES__DRIVER", "mongo")
    with pytest.raises(QueueConfigurationError, match="batches"):
        load_settings()
    clean_env.setenv("QUEUE_BATCHES__DRIVER", "database")
    clean_env.setenv("QUEUE_BATCHES__URL", "postgresql://app:secret@db/app")
    with pytest.raises(QueueConfigurationError) as refused:
        load_settings()
    assert "asyncpg" in str(refused.value) and "secret" not in str(refused.value)
    clean_env.delenv("QUEUE_BATCHES__URL")
    clean_env.setenv("QUEUE_BATCHES__DRIVER", "redis")
    clean_env.setenv("QUEUE_BATCHES__CONNECTION", "rabbitmq")
    with pytest.raises(QueueConfigurationError, match="QUEUE_BATCHES__CONNECTION"):
        QueueManager(load_settings(), base_path=tmp_path)  # at boot, not at the first batch


async def test_the_default_store_is_sqlite_under_storage(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    manager = QueueManager(load_settings({"driver": "memory"}), base_path=tmp_path)
    use_manager(manager)
    try:
        batch = await Bus.batch([step.dispatch("x")]).name("On disk").dispatch()
        assert (tmp_path / "storage" / "queue" / "batches.sqlite").exists()
        found = await Bus.find_batch(batch.id)
        assert found is not None and found.name == "On disk" and found.finished
    finally:
        await manager.shutdown()
        use_manager(None)


async def test_an_empty_batch_is_finished_at_once_and_runs_then_and_finally(manager: QueueManager) -> None:
    """No job will ever finish it (Laravel runs its callbacks at once): finished when dispatched, then/finally once."""
    batch = await Bus.batch([]).then(batch_then).catch(batch_catch).finally_(batch_finally).dispatch()
    await wait_for(lambda: any(isinstance(r, tuple) and r[0] == "finally" for r in RAN))
    assert RAN.count(("then", 0, 0)) == 1 and RAN.count(("finally", 0, 0, 0)) == 1, RAN
    found = await Bus.find_batch(batch.id)
    assert found is not None and found.finished and found.total_jobs == 0 and found.pending_jobs == 0


async def test_a_callback_that_ran_to_its_end_does_not_run_again_whichever_copy_comes(manager: QueueManager) -> None:
    """A copy of a callback job delivered again after it ran to its end (its worker killed before the
    acknowledgement) carries the same nonce: its run claim is its own, but its done claim says it ran. A second
    send (another nonce) finds the run claim taken. A copy killed mid-run is run again (tests/e2e/bus faults)."""
    from queue_manager.bus import wire
    from queue_manager.bus.callback_sending import CALLBACK_TASK

    id = "b-done-once"
    spec = wire.callback_spec(batch_then, "test")
    now = utc_now()
    await manager.batches.store.create(BatchRow(id, "", 0, {"then": [spec]}, now, finished_at=now))
    owner = f"batch:{id}"
    connection = manager.connection()
    for nonce in ("n1", "n1", "n2"):  # sent, delivered again after its end, sent again
        sent = await connection.send_named(
            CALLBACK_TASK,
            [],
            {"owner": owner, "kind": "finish"},
            {wire.NONCE: nonce},
            wire.callback_id(owner, "finish"),
        )
        result = await sent.wait_result(timeout=10)
        assert not result.is_err, result.error
    assert RAN.count(("then", 0, 0)) == 1, RAN


class HoldsASocket(Job):
    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()

    async def handle(self) -> None:
        return None


async def test_mistakes_in_building_a_chain_or_batch_are_named(manager: QueueManager) -> None:
    """What a new user got wrong, each with the error that says what and how to fix it."""
    from drivers.base.errors import QueueConfigurationError
    from queue_manager.errors import JobPayloadError

    job = HoldsASocket()
    try:
        with pytest.raises(JobPayloadError, match="sock"):  # not "is not a job": the attribute is the problem
            Bus.chain([job])
    finally:
        job.sock.close()
    with pytest.raises(QueueConfigurationError, match=r"takes a list of jobs.*Bus.chain\(\[job, \.\.\.\]\)"):
        Bus.chain(ImportRows(1))  # type: ignore[arg-type]
    with pytest.raises(QueueConfigurationError, match=r"Bus.batch\(\[job, \.\.\.\]\)"):
        Bus.batch(ImportRows(1))  # type: ignore[arg-type]
    assert len(Bus.batch(ImportRows(n) for n in range(3)).jobs) == 3, "a generator of jobs is a list of them"
    pending = Bus.batch([step.dispatch("a")])
    with pytest.raises(QueueConfigurationError, match="takes a string"):
        pending.name(None)  # type: ignore[arg-type]
    with pytest.raises(QueueConfigurationError, match="True or False"):
        pending.allow_failures("no")  # type: ignore[arg-type]
    with pytest.raises(QueueConfigurationError, match="connection's name"):
        pending.on_connection("")
    with pytest.raises(QueueConfigurationError, match="connection's name"):
        Bus.chain([step.dispatch("b")]).on_connection("")


async def test_a_callback_from_the_running_script_is_refused_and_a_worker_never_imports_one(
    manager: QueueManager,
) -> None:
    """A callback in __main__ (the dispatching script) no worker can import; and a worker runs only callbacks whose
    module it imported itself (as it runs only tasks it knows), never importing what a message names."""
    import sys

    from drivers.base.errors import QueueConfigurationError
    from queue_manager.bus import wire

    async def finished_in_script() -> None: ...

    finished_in_script.__module__ = "__main__"  # as a function of the script `python import.py` runs
    with pytest.raises(QueueConfigurationError, match=r"__main__.*queue:work imports"):
        Bus.batch([step.dispatch("a")]).then(task(finished_in_script))
    named = task(name="reports.send")(chain_done.original_func)  # a custom name, in an imported module: fine
    assert wire.callback_spec(named, "then") == {"task": "reports.send"}
    broker = manager.connection().broker
    assert "json.tool" not in sys.modules or pytest.skip("json.tool is imported already")
    with pytest.raises(QueueConfigurationError, match=r"not known to this worker.*json\.tool.*--tasks"):
        wire.resolve_callback({"job": "json.tool:main"}, broker)
    assert "json.tool" not in sys.modules, "a message made the worker import a module"
    with pytest.raises(QueueConfigurationError, match="not known to this worker"):
        wire.resolve_callback({"task": "app.nowhere:done"}, broker)


@task(queue="imports")
async def import_done(batch: Batch) -> None:
    RAN.append("import_done")


async def test_batch_callbacks_go_where_a_worker_of_the_batch_listens(manager: QueueManager) -> None:
    """The queue a callback declares, else the batch's, else its first job's; never silently the default queue."""
    assert Bus.batch([step.dispatch("a").on_queue("rows")]).then(batch_then)._callback_queue() == "rows"
    assert Bus.batch([[step.dispatch("a").on_queue("links")]]).then(batch_then)._callback_queue() == "links"
    assert Bus.batch([step.dispatch("a").on_queue("rows")]).on_queue("mine")._callback_queue() == "mine"
    declared = Bus.batch([step.dispatch("a").on_queue("rows")]).on_queue("mine").then(import_done)
    assert declared._callback_queue() == "imports"
    assert Bus.batch([step.dispatch("a")])._callback_queue() is None  # the connection's default, as its jobs


@task
async def failing_catch(batch: Batch, error: Exception) -> None:
    RAN.append("catch ran")
    raise RuntimeError("the notifier is down")


async def _run_callback_job(manager: QueueManager, owner: str, kind: str, nonce: str, **payload: Any) -> Any:
    from queue_manager.bus import wire
    from queue_manager.bus.callback_sending import CALLBACK_TASK

    sent = await manager.connection().send_named(
        CALLBACK_TASK, [], {"owner": owner, "kind": kind, **payload}, {wire.NONCE: nonce}, wire.callback_id(owner, kind)
    )
    return await sent.wait_result(timeout=10)


async def test_jobs_a_cancel_skipped_count_as_skipped_so_then_never_runs_even_once_resumed(
    manager: QueueManager,
) -> None:
    from queue_manager.bus.running import CANCEL_CHECK

    """A job of a cancelled batch did none of its work: it counts as skipped (processed, not done), so a batch that
    queue:retry-batch resumed and whose retried job succeeded still does not run ``then`` (its other jobs never ran)."""
    later = step.dispatch("a").delay(CANCEL_CHECK + 0.2)  # after the worker's cached "not cancelled" expired
    batch = await Bus.batch([boom.dispatch("x"), later]).then(batch_then).dispatch()
    async with asyncio.timeout(10):
        while (row := await manager.batches.store.find(batch.id)) is None or row.finished_at is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    assert row is not None and row.failed == 1 and row.skipped == 1 and row.done == 0 and "a" not in RAN
    store = manager.batches.store
    [failed_job] = row.failed_job_ids
    assert await store.resume(batch.id)
    await store.forget_failures(batch.id, [failed_job])
    recorded = await store.record(batch.id, failed_job, DONE)  # the retried job succeeded
    assert recorded is not None and recorded.finished_now
    assert not (await _run_callback_job(manager, f"batch:{batch.id}", "finish", "n1")).is_err
    assert not any(isinstance(r, tuple) and r[0] == "then" for r in RAN), RAN


async def test_a_catch_that_raises_still_lets_finally_run_and_an_unknown_kind_fails(manager: QueueManager) -> None:
    from queue_manager.bus import wire

    id = "b-catch-raises"
    specs = {"catch": [wire.callback_spec(failing_catch, "t")], "finally": [wire.callback_spec(batch_finally, "t")]}
    await manager.batches.store.create(BatchRow(id, "", 0, specs, utc_now(), finished_at=utc_now()))
    result = await _run_callback_job(
        manager, f"batch:{id}", "failed", "n1", callbacks=specs, error={"message": "RuntimeError: x"}
    )
    assert result.is_err and "the notifier is down" in str(result.error)
    assert "catch ran" in RAN and any(isinstance(r, tuple) and r[0] == "finally" for r in RAN), RAN
    unknown = await _run_callback_job(manager, f"batch:{id}", "someday", "n2")
    assert unknown.is_err and "Unknown callback kind 'someday'" in str(unknown.error)
