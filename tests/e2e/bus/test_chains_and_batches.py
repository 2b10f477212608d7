"""Chains and batches on real workers, on every server driver (issue 25): a chain runs in order and stops at a
failure with catch and finally once; a chain across connections; a batch with then/catch/finally once each with
two workers; allow_failures; add from inside a job; cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.bus.support import TASKS, batch, bus_env, rows, send
from tests.helpers import SERVER_DRIVERS, queue_work, wait_for

pytestmark = pytest.mark.e2e


def names(record_dir: Path, key: str, event: str = "end") -> list[str]:
    return [row["name"] for row in rows(record_dir, key) if row["event"] == event]


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_chain_runs_in_order_and_stops_at_a_failure_with_catch_and_finally_once(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = bus_env(queues, record_dir, driver)
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        send({"chain": [["ok", "a", {}], ["ok", "b", {"sleep": 0.1}], ["ok", "c", {}]], "finally": True}, env)
        assert wait_for(lambda: len(rows(record_dir, "chain-finally")) == 1, timeout=60), worker.output()
        assert names(record_dir, "ok") == ["a", "b", "c"]
        send(
            {
                "chain": [["bad", "a", {}], ["bad", "b", {"fail": True}], ["bad", "c", {}]],
                "catch": True,
                "finally": True,
            },
            env,
        )
        assert wait_for(lambda: len(rows(record_dir, "chain-finally")) == 2, timeout=60), worker.output()
        assert wait_for(lambda: len(rows(record_dir, "chain-catch")) == 1, timeout=30), worker.output()
    assert names(record_dir, "bad", "start") == ["a", "b"], "the link after the failure never runs"
    [caught] = rows(record_dir, "chain-catch")
    assert caught["error"] == "RuntimeError: b failed"
    assert len(rows(record_dir, "chain-finally")) == 2 and len(rows(record_dir, "chain-catch")) == 1
    assert caught["at"] < rows(record_dir, "chain-finally")[1]["at"], "catch ran to its end before finally (Laravel)"


def test_a_batch_without_a_queue_sends_its_callbacks_where_its_jobs_go(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """A worker that serves only the queue the batch's jobs go to runs the batch's then and finally too (they used to
    go to the connection's default queue, where no worker of the batch listened)."""
    env = bus_env(queues, record_dir, "redis")
    jobs_queue = f"{queues['redis']}-jobs"
    with queue_work("redis", TASKS, f"--queue={jobs_queue}", env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        id = send(
            {"batch": [["q", "a", {}], ["q", "b", {}]], "then": True, "finally": True, "jobs_queue": jobs_queue}, env
        )
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()
        assert wait_for(lambda: len(rows(record_dir, "then")) == 1, timeout=30), worker.output()
    assert sorted(names(record_dir, "q")) == ["a", "b"]
    assert rows(record_dir, "then")[0]["id"] == id


def test_a_chain_runs_across_connections_rabbitmq_then_nats(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = bus_env(queues, record_dir, "rabbitmq")
    with (
        queue_work("rabbitmq", TASKS, env=env, log=tmp_path / "r.log") as rabbit,
        queue_work("nats", TASKS, env=env, log=tmp_path / "n.log") as nats,
    ):
        rabbit.wait_ready()
        nats.wait_ready()
        send(
            {
                "chain": [["x", "on-rabbit", {}], ["x", "on-nats", {}], ["x", "back-on-rabbit", {}]],
                "connections": ["rabbitmq", "nats", "rabbitmq"],
                "finally": True,
            },
            env,
        )
        assert wait_for(lambda: len(rows(record_dir, "chain-finally")) == 1, timeout=60), (
            rabbit.output() + nats.output()
        )
    ran = rows(record_dir, "x")
    assert [row["name"] for row in ran if row["event"] == "end"] == ["on-rabbit", "on-nats", "back-on-rabbit"]
    pids = {row["name"]: row["pid"] for row in ran}
    assert pids["on-rabbit"] == pids["back-on-rabbit"] != pids["on-nats"], "each link ran on its connection's worker"


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_batch_runs_then_catch_and_finally_once_each_with_two_workers(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = bus_env(queues, record_dir, driver)
    with (
        queue_work(driver, TASKS, env=env, log=tmp_path / "w1.log") as one,
        queue_work(driver, TASKS, env=env, log=tmp_path / "w2.log") as two,
    ):
        one.wait_ready()
        two.wait_ready()
        good = send(
            {
                "batch": [["g", f"j{n}", {}] for n in range(40)],
                "then": True,
                "finally": True,
                "catch": True,
                "name": "Import",
            },
            env,
        )
        mixed = send(
            {
                "batch": [["m", f"j{n}", {"fail": n in (3, 7)}] for n in range(20)],
                "then": True,
                "catch": True,
                "finally": True,
                "allow_failures": True,
            },
            env,
        )
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 2, timeout=90), one.output() + two.output()
        assert wait_for(lambda: len(rows(record_dir, "catch")) == 1, timeout=30), one.output() + two.output()
    then = rows(record_dir, "then")
    assert [row["id"] for row in then] == [good], "then: only the batch whose jobs all succeeded, once"
    assert then[0]["processed"] == 40 and then[0]["pending"] == 0
    [caught] = rows(record_dir, "catch")
    assert caught["id"] == mixed and "failed" in caught["error"]
    finals = {row["id"]: row for row in rows(record_dir, "finally")}
    assert finals[good]["processed"] == 40 and finals[mixed]["processed"] == 18 and finals[mixed]["failed"] == 2
    found = batch(env, mixed)
    assert found.finished and not found.cancelled and found.pending_jobs == 0 and len(found.failed_job_ids) == 2
    assert batch(env, good).name == "Import" and batch(env, good).progress() == 100


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_job_adds_to_its_batch_and_a_chain_inside_a_batch_counts(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = bus_env(queues, record_dir, driver)
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        id = send(
            {
                "batch": [["a", "single", {}], [["a", "c1", {}], ["a", "c2", {}]]],
                "adder": ["a", 3],
                "finally": True,
                "then": True,
            },
            env,
        )
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()
    assert sorted(names(record_dir, "a")) == sorted(["single", "c1", "c2", "adder", "added-0", "added-1", "added-2"])
    found = batch(env, id)
    assert found.total_jobs == 7 and found.processed_jobs == 7 and found.pending_jobs == 0
    assert len(rows(record_dir, "then")) == 1


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_cancelled_batch_skips_its_queued_jobs_and_still_finishes(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = bus_env(queues, record_dir, driver)
    id = send({"batch": [["c", f"j{n}", {}] for n in range(10)], "finally": True, "then": True, "cancel": True}, env)
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()
    assert rows(record_dir, "c") == [], "queued jobs of a cancelled batch skip themselves"
    assert rows(record_dir, "then") == []
    found = batch(env, id)
    assert found.cancelled and found.finished and found.pending_jobs == 0


@pytest.mark.parametrize("driver", ["redis", "rabbitmq"])
def test_the_batch_store_on_redis(driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    """QUEUE_BATCHES__DRIVER=redis: the batch and its chain claims in the Redis of QUEUE_BATCHES__CONNECTION."""
    import asyncio

    from queue_manager.batches.redis import RedisBatchStore
    from tests.helpers import unique
    from tests.integration.failed.stores import REDIS_URL, delete_keys

    prefix = f"test:{unique('batches')}"
    env = bus_env(
        queues,
        record_dir,
        driver,
        QUEUE_BATCHES__DRIVER="redis",
        QUEUE_BATCHES__CONNECTION="redis",
        QUEUE_BATCHES__PREFIX=prefix,
    )
    try:
        with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            id = send(
                {
                    "batch": [["s", f"j{n}", {}] for n in range(10)] + [[["s", "c1", {}], ["s", "c2", {}]]],
                    "then": True,
                    "finally": True,
                },
                env,
            )
            assert wait_for(lambda: len(rows(record_dir, "finally")) == 1, timeout=60), worker.output()

        async def read() -> tuple[int, int, int]:
            store = RedisBatchStore(REDIS_URL, prefix)
            try:
                row = await store.find(id)
                assert row is not None
                return row.total_jobs, row.done, row.pending
            finally:
                await store.close()

        assert asyncio.run(read()) == (12, 12, 0)
        assert len(rows(record_dir, "then")) == 1
    finally:
        asyncio.run(delete_keys(prefix))
