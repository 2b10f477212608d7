"""Insight (issue 26) on a real Redis Cluster and a real Redis Sentinel setup (tests/clusters.py), for both Redis
drivers: what a worker records (metrics, recent and failed jobs, a monitored tag's own list, its heartbeat) is read
back by another process's connection with ``metrics()``, ``recent_jobs()`` (also by tag), ``workers()``,
``monitor_tag()`` and ``monitored_tags()``.

On a cluster the insight keys are plain control keys (``<prefix>control insight:<connection>:...``, no hash tag),
so one worker's write (one pipeline, ``RedisControl.write``) and one reader's ``entries`` reach several nodes: the
tests check that they really do land on different masters. On Sentinel every command goes to the master the
sentinels name. The single-server side is in test_insight_stores.py and tests/e2e/insight.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot
from taskiq.receiver import Receiver

from drivers.base.control import Entry, control_of
from queue_manager import QueueManager, task, use_manager
from queue_manager.insight.names import failed_list, metrics_map, monitored_map, recent_list, tag_list, workers_map
from queue_manager.insight.reading import job_detail
from queue_manager.insight.recorder import InsightRecorder
from queue_manager.insight.state import insight_state
from queue_manager.settings import load_settings
from queue_manager.settings.insight import InsightSettings
from tests.clusters import RedisClusterNodes, RedisSentinel, _redis, redis_cluster, redis_sentinel
from tests.helpers import connections_env, dispatch_jobs, queue_work, unique, wait_for

pytestmark = [pytest.mark.usefixtures("clean_env", "no_current_manager"), pytest.mark.fault]

DRIVERS = ("redis", "redis_stream")
TOPOLOGIES = ("cluster", "sentinel")
WAIT = 60.0  # seconds: the machine is small and busy


@task(name="tests.insight_clusters.ok")
async def ok(n: int, api_token: str = "") -> int:
    return n


@task(name="tests.insight_clusters.broken")
async def broken(n: int) -> int:
    raise ValueError(f"job {n} is broken")


def sentinel_url(sentinel: RedisSentinel) -> str:
    hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
    return f"redis+sentinel://{hosts}/{sentinel.master_name}"


@contextmanager
def topology(kind: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """A private Redis Cluster or Sentinel setup: (connection URL, connection options, the cluster object)."""
    if kind == "cluster":
        with redis_cluster(tmp_path) as cluster:
            yield cluster.url, {"cluster": True}, cluster
    else:
        with redis_sentinel(tmp_path) as sentinel:
            yield sentinel_url(sentinel), {}, sentinel


def manager_of(driver: str, url: str, queue: str, options: dict[str, Any]) -> QueueManager:
    """A manager of one connection on the private servers; failed jobs are not stored (nothing left behind)."""
    connection = {"url": url, "queue": queue, "options": options}
    settings = {"driver": driver, "connections": {driver: connection}, "failed": {"driver": "null"}}
    return QueueManager(load_settings(settings))


def owner_of(servers: Any, key: str) -> int:
    """The port of the server that holds ``key``: its slot's master in a cluster, else the Sentinel master."""
    if isinstance(servers, RedisClusterNodes):
        return servers.slot_owner(key_slot(key.encode()))
    assert isinstance(servers, RedisSentinel)
    return servers.master_port()


def held_by(port: int, key: str) -> bool:
    """Asked of that one server directly (no cluster routing, no sentinel): the key is really there."""
    with _redis(port) as client:
        return bool(client.exists(key))


def tag_apart(servers: Any, prefix: str, connection: str, avoid: set[int]) -> str:
    """A unique tag whose list lands on a cluster master none of ``avoid`` is (any tag elsewhere)."""
    for _ in range(200):
        tag = unique("customer:")
        if (
            not isinstance(servers, RedisClusterNodes)
            or owner_of(servers, prefix + tag_list(connection, tag)) not in avoid
        ):
            return tag
    raise AssertionError(f"no tag found off the nodes {avoid}")


async def run_jobs(broker: Any, count: int) -> None:
    """Fetch and run ``count`` jobs in this process, as a worker does (the middlewares' hooks included)."""
    broker.is_worker_process = True
    jobs = broker.listen()
    receiver = Receiver(broker, run_startup=False)
    try:
        for _ in range(count):
            message = await asyncio.wait_for(anext(jobs), WAIT)
            await receiver.callback(message)
    finally:
        await jobs.aclose()
    batcher = getattr(broker, "batcher", None)
    if batcher is not None:
        await batcher.drain()


@pytest.mark.parametrize("kind", TOPOLOGIES)
@pytest.mark.parametrize("driver", DRIVERS)
async def test_what_a_worker_records_is_read_back(
    driver: str, kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue = unique("q")
    with topology(kind, tmp_path) as (url, options, servers):
        manager = manager_of(driver, url, queue, options)
        use_manager(manager)
        # Another manager (its own clients), as the dashboard's process would have: what it reads is on the servers.
        reader = manager_of(driver, url, queue, options)
        try:
            conn, read = manager.connection(driver), reader.connection(driver)
            await conn.startup()
            control = control_of(conn.broker)
            assert control is not None
            prefix: str = control.prefix  # type: ignore[attr-defined]
            fixed = [recent_list(driver), failed_list(driver), workers_map(driver), monitored_map(driver)]
            owners = {name: owner_of(servers, prefix + name) for name in fixed}
            # The tag's own list on a node the recent list is not on: recent_jobs(tag=...) reads two nodes.
            tag = tag_apart(servers, prefix, driver, {owners[recent_list(driver)]})

            assert await read.monitor_tag(tag) == tag
            assert tag in await read.monitored_tags()
            recorder = InsightRecorder(
                InsightSettings(recent_jobs=2), driver, [queue], queue, lambda: insight_state(conn)
            )
            conn.broker.add_middlewares(recorder)
            await recorder.look_for_monitored_tags()  # as the worker does once a minute
            assert tag in recorder.tagged

            await conn.dispatch(ok, 1, "s3cret").with_tags(tag)
            for n in (2, 3, 4):
                await conn.dispatch(ok, n)
            await conn.dispatch(broken, 5).with_tags(tag)
            await run_jobs(conn.broker, 5)
            assert (recorder.done, recorder.failed) == (5, 1)
            await recorder.flush()
            assert "Could not record" not in caplog.text  # the write (one pipeline over every node) went through

            found = await read.metrics(queue=queue)
            by_task = {row["task"]: (row["jobs"], row["failed"]) for row in found["tasks"]}
            assert by_task == {ok.task_name: (4, 0), broken.task_name: (1, 1)}, found
            [row] = found["queues"]
            assert (row["queue"], row["jobs"], row["failed"]) == (queue, 5, 1)
            assert sum(row["per_minute"]) == 5 and row["runtime_ms"]["max"] is not None
            assert (await read.metrics(task="broken"))["tasks"][0]["failures_per_minute"] > 0

            recent = await read.recent_jobs(limit=100)
            assert [job["arguments"]["n"] for job in recent] == [4, 3]  # the newest, within the cap of 2
            [failed] = await read.recent_jobs(failed=True)
            assert (failed["task"], failed["error"], failed["tags"]) == (
                broken.task_name,
                "ValueError: job 5 is broken",
                [tag],
            )
            # Job 1 has left the capped recent list; the monitored tag's own list (on another node) keeps it.
            [tagged] = await read.recent_jobs(tag=tag)
            assert (tagged["arguments"]["n"], tagged["tags"]) == (1, [tag])
            assert tagged["arguments"]["api_token"] != "s3cret"
            assert [job["id"] for job in await read.recent_jobs(failed=True, tag=tag)] == [failed["id"]]
            assert await job_detail(read, recent[0]["id"]) == recent[0]
            assert await job_detail(read, failed["id"]) == failed

            [beat] = await read.workers()
            assert (beat["id"], beat["jobs_done"], beat["jobs_failed"], beat["queues"]) == (
                recorder.worker_id,
                5,
                1,
                [queue],
            )

            minutes = _metrics_keys(driver)
            written = [*fixed, tag_list(driver, tag), *minutes]
            placed = {name: owner_of(servers, prefix + name) for name in written}
            present = {name for name, port in placed.items() if held_by(port, prefix + name)}
            assert present >= {*fixed, tag_list(driver, tag)}, placed
            assert any(name in present for name in minutes), placed
            if kind == "cluster":
                assert len({placed[name] for name in present}) >= 2, f"every insight key on one node: {placed}"

            # A heartbeat older than two beats is a dead worker's: the reader drops it, on the server too.
            dead = json.dumps({"id": "gone", "seen": time.time() - 600, "every": 1.0})
            await insight_state(read).write([Entry(workers_map(driver), "gone", dead, 60)])
            assert [beat["id"] for beat in await read.workers()] == [recorder.worker_id]
            assert "gone" not in (await insight_state(read).entries([workers_map(driver)]))[0]

            await recorder.shutdown()  # its last write, and it leaves the workers list
            assert await read.workers() == []
            await read.stop_monitoring_tag(tag)
            assert tag not in await read.monitored_tags()
        finally:
            await reader.shutdown()
            await manager.shutdown()


def _metrics_keys(driver: str) -> list[str]:
    now = int(time.time() // 60)
    return [metrics_map(driver, minute) for minute in (now - 1, now)]


def read_in_new_loop(driver: str, url: str, queue: str, options: dict[str, Any], what: str, /, **arguments: Any) -> Any:
    """What a reader in another process sees (a manager of its own, on a loop of its own)."""

    async def main() -> Any:
        reader = manager_of(driver, url, queue, options)
        try:
            return await getattr(reader.connection(driver), what)(**arguments)
        finally:
            await reader.shutdown()

    return asyncio.run(main())


@pytest.mark.e2e
@pytest.mark.parametrize("kind", TOPOLOGIES)
def test_a_queue_work_process_records_and_beats_until_it_dies(kind: str, tmp_path: Path) -> None:
    driver, queue = "redis", unique("q")
    record_dir = tmp_path / "records"
    record_dir.mkdir()
    tag = unique("customer:")
    with topology(kind, tmp_path) as (url, options, _servers):
        extra = {"REDIS_URL": url, "QUEUE_INSIGHT__FLUSH_EVERY": "1"}
        if options.get("cluster"):
            extra["QUEUE_CONNECTIONS__REDIS__OPTIONS__CLUSTER"] = "true"
        env = connections_env({driver: queue}, record_dir, driver, **extra)

        def read(what: str, **arguments: Any) -> Any:
            return read_in_new_loop(driver, url, queue, options, what, **arguments)

        def mine() -> list[dict[str, Any]]:
            return [beat for beat in read("workers") if queue in beat["queues"]]

        with queue_work("--tasks=app.jobs", env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            assert wait_for(lambda: len(mine()) == 1, timeout=WAIT), worker.output()
            specs: list[dict[str, Any]] = [{"task": "remember", "args": [n]} for n in range(3)]
            specs += [{"task": "always_fails", "args": [99], "labels": {"tags": tag}}]
            dispatch_jobs(specs, env)

            def recorded() -> bool:
                rows = read("metrics", queue=queue)["tasks"]
                return {row["task"]: (row["jobs"], row["failed"]) for row in rows} == {
                    "app.jobs:remember": (3, 0),
                    "app.jobs:always_fails": (2, 2),  # two attempts (retries=1), both failed
                }

            assert wait_for(recorded, timeout=WAIT), (read("metrics", queue=queue), worker.output())
            completed = [job for job in read("recent_jobs", limit=1000) if job["queue"] == queue]
            assert sorted(job["arguments"]["job_id"] for job in completed) == [0, 1, 2]
            assert wait_for(lambda: read("recent_jobs", failed=True, tag=tag), timeout=WAIT), worker.output()
            [failed] = read("recent_jobs", failed=True, tag=tag)
            assert (failed["task"], failed["attempts"], failed["tags"]) == ("app.jobs:always_fails", 2, [tag])
            assert wait_for(lambda: [beat["jobs_done"] for beat in mine()] == [5], timeout=WAIT), mine()

            worker.kill()  # no shutdown: it drops out once its heartbeat is two beats old
            assert wait_for(lambda: not mine(), timeout=WAIT), read("workers")
