"""Both Redis drivers with real queue:work workers on Redis Sentinel (a failover mid-run) and on a 3-master Redis
Cluster (dispatch, results, delays, size/counts/clear, pause, throughput). Each fault test prints a ``MEASURED``
line."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.clusters import redis_cluster, redis_sentinel
from tests.e2e.drivers.test_scale_nats import events, overlapping_starts
from tests.helpers import connections_env, dispatch_jobs, queue_work, ran_jobs, unique, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
TASKS = "--tasks=app.jobs"
JOBS = 40
SECONDS = 2.5
# Redelivery timers longer than a failover takes, so what is measured is the failover, not the timer.
TIMERS = {"redis": ("RETRY_AFTER", "10"), "redis_stream": ("IDLE_TIMEOUT_MS", "10000")}


def sentinel_url(sentinel: Any) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
    return f"redis+sentinel://{hosts}/{sentinel.master_name}"


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
def test_a_sentinel_failover_mid_run_loses_no_job(driver: str, tmp_path: Path, record_dir: Path) -> None:
    queue = unique("q")
    option, value = TIMERS[driver]
    with redis_sentinel(tmp_path) as sentinel:
        env = connections_env(
            {driver: queue},
            record_dir,
            driver,
            REDIS_URL=sentinel_url(sentinel),
            **{f"QUEUE_CONNECTIONS__{driver.upper()}__OPTIONS__{option}": value},
        )
        dispatch_jobs([{"task": "sleepy", "args": [i, SECONDS]} for i in range(JOBS)], env, wait=False)
        with queue_work("--max-async-tasks=10", TASKS, env=env, log=tmp_path / "w.log") as worker:
            assert wait_for(lambda: sum(k == "done" for k, *_ in events(record_dir)) >= 10, timeout=120), (
                worker.output()
            )
            killed_at = time.time()
            old = sentinel.kill_master()
            sentinel.wait_failover(old)
            promoted_at = time.time()
            assert wait_for(
                lambda: any(k == "start" and at > promoted_at for k, _, at, _ in events(record_dir)), 120
            ), worker.output()
            first_start = min(at for k, _, at, _ in events(record_dir) if k == "start" and at > killed_at)
            sentinel.start(old)  # back as a replica of the new master
            done = lambda: {job for kind, job, *_ in events(record_dir) if kind == "done"}  # noqa: E731
            assert wait_for(lambda: done() >= set(range(JOBS)), timeout=180), worker.output()
            output = worker.output()
        record = events(record_dir)
        starts = [job for kind, job, *_ in record if kind == "start"]
        lost = sorted(set(range(JOBS)) - done())
        measure = {
            "jobs": JOBS,
            "lost": len(lost),
            "duplicate_starts": len(starts) - len(set(starts)),
            "started_while_running": len(overlapping_starts(record)),
            "seconds_to_failover": round(promoted_at - killed_at, 2),
            "seconds_to_first_start_after_kill": round(first_start - killed_at, 2),
        }
        print(f"MEASURED sentinel-failover {driver} {json.dumps(measure, sort_keys=True)}")
        assert lost == [], f"lost jobs {lost}"
        assert output.count("Worker ready") == 1, f"the worker process restarted:\n{output}"


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
def test_an_idle_worker_follows_a_sentinel_failover_that_demotes_a_live_master(
    driver: str, tmp_path: Path, record_dir: Path
) -> None:
    """A demoted master answers the worker's blocking fetch (BLMOVE, XREADGROUP) with -UNBLOCKED: the worker
    must take it as a lost connection, not die."""
    queue = unique("q")
    with redis_sentinel(tmp_path) as sentinel:
        env = connections_env({driver: queue}, record_dir, driver, REDIS_URL=sentinel_url(sentinel))
        with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            [row] = dispatch_jobs([{"task": "remember", "args": [1]}], env)
            assert row["value"] == 1
            started = time.time()
            sentinel.wait_failover(sentinel.failover())
            rows = dispatch_jobs([{"task": "remember", "args": [2]}], env, timeout=120)
            recovered = round(time.time() - started, 2)
            output = worker.output()
        assert rows[0]["value"] == 2 and sorted(ran_jobs(record_dir)) == [1, 2], output
        assert output.count("Worker ready") == 1 and "Traceback" not in output, output
        print(f"MEASURED sentinel-demotion {driver} {json.dumps({'seconds_to_next_job': recovered})}")


def cluster_manager(driver: str, url: str, queue: str) -> QueueManager:
    return QueueManager(
        load_settings(
            {"driver": driver, "connections": {driver: {"url": url, "queue": queue, "options": {"cluster": True}}}}
        )
    )


async def pause(driver: str, url: str, queue: str, paused: bool) -> bool:
    manager = cluster_manager(driver, url, queue)
    conn = manager.connection(driver)
    try:
        await (conn.pause() if paused else conn.resume())
        return await conn.paused()
    finally:
        await manager.shutdown()


async def operate(driver: str, url: str, queue: str) -> dict[str, Any]:
    """size/counts/clear from the web side, while the worker has the queue paused."""
    manager = cluster_manager(driver, url, queue)
    conn = manager.connection(driver)
    seen: dict[str, Any] = {}
    try:
        counts = await conn.counts()
        seen["counts"] = (counts.waiting, counts.delayed, counts.reserved)
        seen["size"] = await conn.size()
        seen["cleared"] = await conn.clear()
        after = await conn.counts()
        seen["after_clear"] = (after.waiting, after.delayed, after.reserved)
    finally:
        await manager.shutdown()
    return seen


async def throughput(driver: str, url: str, queue: str) -> int:
    manager = cluster_manager(driver, url, queue)
    try:
        return sum(await manager.connection(driver).throughput(minutes=5) or [])
    finally:
        await manager.shutdown()


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
def test_a_worker_on_a_redis_cluster(driver: str, tmp_path: Path, record_dir: Path) -> None:
    queue = unique("q")
    with redis_cluster(tmp_path) as cluster:
        env = connections_env(
            {driver: queue},
            record_dir,
            driver,
            **{
                # every node given as a startup node (on this connection only: the other Redis connection of the
                # example app stays on its plain URL)
                f"QUEUE_CONNECTIONS__{driver.upper()}__URL": ",".join(cluster.urls),
                f"QUEUE_CONNECTIONS__{driver.upper()}__OPTIONS__CLUSTER": "true",
            },
        )
        with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            specs = [{"task": "remember", "args": [i]} for i in range(20)]
            specs += [{"task": "remember", "args": [50 + i], "delay": 2} for i in range(2)]
            rows = dispatch_jobs(specs, env)
            assert [row["value"] for row in rows] == [*range(20), 50, 51], rows
            assert all(not row["is_err"] for row in rows)
            ran = ran_jobs(record_dir)
            for row, job in zip(rows[20:], (50, 51), strict=True):
                assert ran[job][0] - row["sent_at"] >= 1.9, "a delayed job ran early"

            assert asyncio.run(pause(driver, cluster.url, queue, paused=True))
            assert wait_for(lambda: "is paused: taking no new jobs" in worker.output(), timeout=15), worker.output()
            before = len(ran_jobs(record_dir))
            dispatch_jobs([{"task": "remember", "args": [100 + i]} for i in range(4)], env, wait=False)
            dispatch_jobs([{"task": "remember", "args": [104], "delay": 600}], env, wait=False)
            assert not wait_for(lambda: len(ran_jobs(record_dir)) > before, timeout=3), "a paused queue's job ran"
            seen = asyncio.run(operate(driver, cluster.url, queue))
            assert seen["counts"][:2] == (4, 1) and seen["size"] == 5 and seen["cleared"] == 5, seen
            assert seen["after_clear"][:2] == (0, 0), seen
            assert not asyncio.run(pause(driver, cluster.url, queue, paused=False))

            rows = dispatch_jobs([{"task": "remember", "args": [200 + i]} for i in range(3)], env)
            assert [row["value"] for row in rows] == [200, 201, 202], "resumed"
            assert wait_for(lambda: asyncio.run(throughput(driver, cluster.url, queue)) >= 25, timeout=30)
            output = worker.output()
        assert not {100 + i for i in range(5)} & set(ran_jobs(record_dir)), "cleared jobs never ran"
        assert "CROSSSLOT" not in output and "Traceback" not in output, output
        print(f"MEASURED redis-cluster {driver} {json.dumps({'counts_while_paused': seen['counts']})}")
