"""The batch commands as processes (``python artisan ...`` in the example app): queue:batches, queue:batch ID,
queue:retry-batch ID (the batch's counts follow, and ``then`` runs once it all succeeded), queue:prune-batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.bus.support import TASKS, batch, bus_env, rows, send, stored
from tests.helpers import queue_work, run_python, wait_for

pytestmark = pytest.mark.e2e


def artisan(env: dict[str, str], *args: str) -> str:
    done = run_python("artisan", *args, env=env, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_list_show_retry_and_prune_batches(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    env = bus_env(queues, record_dir, "redis")
    spec = {
        "batch": [["r", "ok", {}], ["r", "flaky", {"fail_once": True}], ["r", "ok2", {}]],
        "then": True,
        "finally": True,
        "catch": True,
        "allow_failures": True,
        "name": "Nightly <import>",
    }
    with queue_work("redis", TASKS, env=env, log=tmp_path / "w.log") as worker:
        id = send(spec, env)
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()
        listed = artisan(env, "queue:batches")
        assert id in listed and "Nightly <import>" in listed and "100%" in listed, listed
        shown = artisan(env, "queue:batch", id)
        failed = batch(env, id).failed_job_ids
        assert len(failed) == 1 and failed[0] in shown and "Failed jobs: 1" in shown, shown
        assert rows(record_dir, "then") == []

        retried = artisan(env, "queue:retry-batch", id)
        assert "Retried 1 failed job" in retried, retried
        assert wait_for(lambda: len(rows(record_dir, "then")) == 1, timeout=60), worker.output()
    found = batch(env, id)
    assert (found.failed_jobs, found.pending_jobs, found.processed_jobs, found.finished) == (0, 0, 3, True)
    assert len(rows(record_dir, "finally")) == 1, "finally ran once, when the batch first finished"
    assert len(rows(record_dir, "catch")) == 1

    assert "Deleted 0 batches" in artisan(env, "queue:prune-batches")
    assert "Deleted 1 batch" in artisan(env, "queue:prune-batches", "--hours=0")
    assert batch(env, id) is None


def test_retry_batch_of_a_chain_failed_mid_way_runs_its_later_links_in_order_and_counts_them(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """The links after the failed one were recorded skipped (so the batch could finish); once retry-batch puts the
    failed link back and it succeeds, they are pending again, run in order, and the batch finishes after them."""
    env = bus_env(queues, record_dir, "redis")
    chain = [["r", "c0", {}], ["r", "c1", {"fail_once": True}], ["r", "c2", {}], ["r", "c3", {}]]
    spec = {"batch": [chain, ["r", "single", {}]], "then": True, "finally": True, "allow_failures": True}

    def ended() -> list[dict[str, object]]:
        return [row for row in rows(record_dir, "r") if row["event"] == "end"]

    with queue_work("redis", TASKS, env=env, log=tmp_path / "w.log") as worker:
        id = send(spec, env)
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()
        first = stored(env, id)
        assert (first.total_jobs, first.done, first.failed, first.skipped) == (5, 2, 1, 2), first

        assert "Retried 1 failed job" in artisan(env, "queue:retry-batch", id)
        assert wait_for(lambda: len(rows(record_dir, "then")) == 1, timeout=60), worker.output()
        assert wait_for(lambda: "c3" in [row["name"] for row in ended()], timeout=60), worker.output()
    assert [row["name"] for row in ended() if str(row["name"]).startswith("c")] == ["c0", "c1", "c2", "c3"]
    [then] = rows(record_dir, "then")
    assert float(then["at"]) > max(float(row["at"]) for row in ended()), "then ran after the chain's last link"  # type: ignore[arg-type]
    assert (then["processed"], then["pending"], then["failed"]) == (5, 0, 0), then
    row = stored(env, id)
    assert (row.done, row.failed, row.skipped, row.pending, row.finished_at is not None) == (5, 0, 0, 0, True), row
    assert len(rows(record_dir, "finally")) == 1, "finally ran once, when the batch first finished"


def test_an_unknown_batch_is_one_clear_line(queues: dict[str, str], record_dir: Path) -> None:
    env = bus_env(queues, record_dir, "redis")
    done = run_python("artisan", "queue:batch", "nope", env=env, timeout=90)
    assert done.returncode == 1 and "No batch has the id 'nope'" in done.stderr + done.stdout, done.stderr
    assert "Traceback" not in done.stderr


def test_retry_batch_resumes_a_cancelled_batch_and_its_job_really_runs(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """A batch without allow_failures is cancelled by its first failure; retry-batch must resume it, or the retried
    job skips itself (its failure wiped from the counts and the store, its work never done)."""
    env = bus_env(queues, record_dir, "redis")
    spec = {
        "batch": [["r", "ok", {}], ["r", "flaky", {"fail_once": True, "sleep": 0.3}]],
        "then": True,
        "finally": True,
        "catch": True,
    }
    with queue_work("redis", TASKS, env=env, log=tmp_path / "w.log") as worker:
        id = send(spec, env)
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()
        first = batch(env, id)
        assert (first.cancelled, first.failed_jobs, first.finished) == (True, 1, True), first

        retried = artisan(env, "queue:retry-batch", id)  # the cause is fixed: flaky fails only once
        assert f"Batch {id} was cancelled; it is resumed: its retried jobs run." in retried, retried
        assert "Retried 1 failed job" in retried, retried
        assert wait_for(lambda: len(rows(record_dir, "then")) == 1, timeout=60), worker.output()
    ran = [row for row in rows(record_dir, "r") if row["name"] == "flaky" and row["event"] == "end"]
    assert len(ran) == 1, "the retried job's code ran to its end"
    found = batch(env, id)
    assert (found.cancelled, found.failed_jobs, found.pending_jobs, found.processed_jobs) == (False, 0, 0, 2), found
    assert found.finished
    [then] = rows(record_dir, "then")
    assert (then["processed"], then["pending"], then["failed"]) == (2, 0, 0), then
    assert len(rows(record_dir, "finally")) == 1 and len(rows(record_dir, "catch")) == 1


def test_the_job_ids_queue_batch_shows_work_with_the_failed_job_commands(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """queue:batch lists failed jobs by job (task) id: queue:failed, queue:retry and queue:forget take it (whole or a
    prefix), and retry-batch after its record was forgotten says so and exits 1."""
    env = bus_env(queues, record_dir, "redis")
    spec = {"batch": [["r", "ok", {}], ["r", "bad", {"fail": True}]], "finally": True, "allow_failures": True}
    with queue_work("redis", TASKS, env=env, log=tmp_path / "w.log") as worker:
        id = send(spec, env)
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()
        [job] = batch(env, id).failed_job_ids
        assert job in artisan(env, "queue:batch", id)
        shown = artisan(env, "queue:failed", job)
        assert job in shown and "bad failed" in shown, shown
        assert job in artisan(env, "queue:failed", job[:8])
        record = shown.split("ID", 1)[1].split()[0]

        assert f"failed job {record}" in artisan(env, "queue:retry", job)

        def failed_again() -> bool:
            again = run_python("artisan", "queue:failed", job, env=env, timeout=90)
            return again.returncode == 0 and record not in again.stdout

        assert wait_for(failed_again, timeout=60), worker.output()  # it ran, failed again: a new record
    assert "deleted" in artisan(env, "queue:forget", job)
    gone = run_python("artisan", "queue:forget", job, env=env, timeout=90)
    assert gone.returncode == 1 and "No failed job matches" in gone.stdout + gone.stderr, gone.stderr
    assert "Failed jobs: 1" in artisan(env, "queue:batch", id)
    done = run_python("artisan", "queue:retry-batch", id, env=env, timeout=90)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "1 failed job is no longer in the failed-jobs store (forgotten or pruned)" in output, output
    assert "nothing to retry" in output and "Traceback" not in output, output
