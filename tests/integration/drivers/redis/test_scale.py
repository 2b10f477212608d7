"""Both Redis drivers on Redis Sentinel and on Redis Cluster, in-process (issue #16): the URL forms, hash-tagged
keys, the two-step batch on a cluster (results before acknowledgements), counters across slots, and errors that
name every server without the password. The clusters are real ones on loopback (tests/clusters.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from drivers.base.control import control_of
from queue_manager import BrokerUnreachableError, QueueManager, task
from queue_manager.connection import throughput_key
from tests.clusters import free_ports, redis_cluster, redis_sentinel
from tests.helpers import one_connection_manager, unique

pytestmark = pytest.mark.usefixtures("clean_env", "no_current_manager")
SECRET = "S3cretPw"
KEYS = {"redis": "queues:{%s}", "redis_stream": "queues:stream:{%s}"}


@task(name="tests.scale_redis.job")
async def job(n: int) -> int:
    return n


def redis_manager(driver: str, url: str, queue: str, **options: Any) -> QueueManager:
    return one_connection_manager(driver, url, queue, **options)


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
async def test_unreachable_sentinels_are_named_without_the_password(driver: str) -> None:
    ports = free_ports(2)
    url = f"redis+sentinel://:{SECRET}@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster"
    manager = redis_manager(driver, url, unique("q"), socket_connect_timeout=2, send_timeout=2)
    with pytest.raises(BrokerUnreachableError) as caught:
        await manager.connection(driver).ping()
    message = str(caught.value)
    assert f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}" in message, message
    assert SECRET not in message and ":***@" in message, message


@pytest.mark.fault
@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
async def test_sentinel_finds_the_master_and_follows_a_failover(driver: str, tmp_path: Path) -> None:
    with redis_sentinel(tmp_path) as sentinel:
        hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
        queue = unique("q")
        manager = redis_manager(driver, f"redis+sentinel://{hosts}/{sentinel.master_name}", queue)
        conn = manager.connection(driver)
        try:
            await conn.ping()
            await conn.dispatch(job, 1)
            await conn.dispatch(job, 2).delay(600)
            counts = await conn.counts()
            assert (counts.waiting, counts.delayed) == (1, 1)
            await conn.pause()
            sentinel.wait_replicated()  # what the master acknowledged is on the replica too, before the kill
            old = sentinel.kill_master()
            sentinel.wait_failover(old)

            async def after_failover() -> int:
                return await conn.size()

            deadline = asyncio.get_running_loop().time() + 60
            while True:  # the first commands may still find the old master's dead connections
                try:
                    size = await after_failover()
                    break
                except BrokerUnreachableError:
                    assert asyncio.get_running_loop().time() < deadline, "no command reached the new master"
                    await asyncio.sleep(0.2)
            # Replication is asynchronous: what the old master had acknowledged may not have reached the replica.
            # Here the kill waited until it had.
            assert size == 2 and await conn.paused()
            await conn.dispatch(job, 3)
            assert await conn.size() == 3
            assert await conn.clear() == 3
        finally:
            await manager.shutdown()


@pytest.mark.fault
@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
async def test_cluster_keys_share_the_queue_slot_and_counters_span_slots(driver: str, tmp_path: Path) -> None:
    from redis.asyncio.cluster import RedisCluster

    with redis_cluster(tmp_path) as cluster:
        queue = unique("q")
        manager = redis_manager(driver, cluster.url, queue, cluster=True)
        conn = manager.connection(driver)
        raw = RedisCluster.from_url(cluster.url)
        try:
            await conn.dispatch(job, 1)
            await conn.dispatch(job, 2).delay(600)
            key = KEYS[driver] % queue
            assert raw.keyslot(key) == raw.keyslot(f"{key}:delayed") == raw.keyslot(f"{key}:reserved")
            assert await raw.exists(key) == 1 and await raw.zcard(f"{key}:delayed") == 1
            counts = await conn.counts()
            assert (counts.waiting, counts.delayed) == (1, 1) and await conn.size() == 2

            # Throughput counters of many minutes live in many slots: read with one call.
            control = control_of(conn.broker)
            assert control is not None
            minute = int(time.time() // 60)
            names = [throughput_key(queue, m) for m in range(minute - 29, minute + 1)]
            prefix = control.prefix  # type: ignore[attr-defined]
            assert len({raw.keyslot(f"{prefix}{name}") for name in names}) > 1, "spread over slots"
            await control.add(names[-1], 4, 3600)
            await control.add(names[0], 3, 3600)
            series = await conn.throughput(minutes=30)
            assert series is not None and (series[0], series[-1], sum(series)) == (3, 4, 7)

            await conn.pause()
            assert await conn.paused()
            await conn.resume()
            assert not await conn.paused()
            assert await conn.clear() == 2 and await conn.size() == 0
        finally:
            await raw.aclose()
            await manager.shutdown()


@pytest.mark.fault
async def test_on_a_cluster_no_acknowledgement_is_sent_when_a_result_of_its_batch_failed(tmp_path: Path) -> None:
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import ResponseError

    from drivers.redis.batch import RedisBatcher

    with redis_cluster(tmp_path) as cluster:
        client = RedisCluster.from_url(cluster.url)
        try:
            tag = unique("q")
            reserved, broken = f"queues:{{{tag}}}:reserved", unique("queues:results:")
            await client.zadd(reserved, {b"job-1": 1.0, b"job-2": 2.0})
            await client.set(broken, "not a number")
            batcher = RedisBatcher(client)
            assert batcher.cluster
            # A "result" that fails (INCR of a string), and the acknowledgement of the same batch.
            failed = batcher.add(lambda pipe: pipe.incr(broken), result=True)
            batcher.add_member(reserved, b"job-1", lambda pipe, jobs: pipe.zrem(reserved, *jobs), "acknowledgements")
            with pytest.raises(ResponseError):
                await failed
            await batcher.drain()
            assert await client.zcard(reserved) == 2, "the job stays reserved: it runs again"

            # A batch whose results are written acknowledges, and its fetch script runs on the queue's slot.
            stored = batcher.add(lambda pipe: pipe.set(unique("queues:results:"), "ok"), result=True)
            batcher.add_member(reserved, b"job-2", lambda pipe, jobs: pipe.zrem(reserved, *jobs), "acknowledgements")
            script = batcher.add(lambda pipe: pipe.eval("return redis.call('ZCARD', KEYS[1])", 1, reserved))
            assert await stored is True and await script in (1, 2)
            await batcher.drain()
            assert await client.zrange(reserved, 0, -1) == [b"job-1"], "job-2 acknowledged, job-1 still reserved"

            # A job that finishes while a batch's results are being written belongs to the next batch: its
            # acknowledgement must not go out with this one (its own result, failing here, is in the next).
            await client.zadd(reserved, {b"job-3": 3.0, b"job-4": 4.0})
            slow = batcher.add(lambda pipe: pipe.execute_command("WAIT", 1, 2000), result=True)  # no replica: 2 s
            batcher.add_member(reserved, b"job-3", lambda pipe, jobs: pipe.zrem(reserved, *jobs), "acknowledgements")
            while batcher._pending:  # noqa: ASYNC110  (until the first batch is out, waiting on WAIT)
                await asyncio.sleep(0.005)
            later = batcher.add(lambda pipe: pipe.incr(broken), result=True)
            batcher.add_member(reserved, b"job-4", lambda pipe, jobs: pipe.zrem(reserved, *jobs), "acknowledgements")
            assert await slow == 0
            with pytest.raises(ResponseError):
                await later
            await batcher.drain()
            assert await client.zrange(reserved, 0, -1) == [b"job-1", b"job-4"], "job-3 acknowledged, job-4 not"
        finally:
            await client.aclose()


@pytest.mark.fault
async def test_pings_through_sentinels_leave_no_connection_to_them(tmp_path: Path) -> None:
    """A health probe pings through a fresh sentinel pool each time: closing it must close its sentinel clients."""
    import gc

    from redis.asyncio import Redis

    with redis_sentinel(tmp_path) as sentinel:
        hosts = ",".join(f"{host}:{port}" for host, port in sentinel.sentinels)
        manager = redis_manager("redis", f"redis+sentinel://{hosts}/{sentinel.master_name}", unique("q"))
        watched = Redis(host=sentinel.sentinels[0][0], port=sentinel.sentinels[0][1])
        try:

            async def clients() -> int:
                return int((await watched.info("clients"))["connected_clients"])

            await manager.connection("redis").ping()
            before = await clients()
            gc.disable()  # what is left open must not be closed by the garbage collector meanwhile
            try:
                for _ in range(5):
                    await manager.connection("redis").ping()
                after = await clients()
            finally:
                gc.enable()
            assert after <= before, f"{after - before} sentinel connections left open by 5 pings"
        finally:
            await watched.aclose()
            await manager.shutdown()
