"""The real local clusters of tests/clusters.py work: a NATS JetStream cluster keeps a 3-replica stream through the
loss of its leader, Redis Sentinel promotes the replica, Redis Cluster spreads keys and runs hash-tagged Lua
through redis-py's cluster client, and a private RabbitMQ vhost holds a quorum queue. Each cluster is stopped
and its files deleted afterwards (checked too)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest

from tests import clusters
from tests.clusters import (
    ClusterProcess,
    ClusterStartupError,
    MissingBinaryError,
    find_binary,
    nats_cluster,
    port_open,
    rabbitmq_vhost,
    redis_cluster,
    redis_sentinel,
)
from tests.helpers import unique

T = TypeVar("T")

fault = pytest.mark.fault  # these kill cluster nodes
# Every test here starts private clusters (seconds each): part of the full run, not of `make test-fast`.
pytestmark = pytest.mark.fault

# Move the first pending job to the reserved list; the job and how many are reserved now.
MOVE = """
local job = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
return {job, redis.call('LLEN', KEYS[2])}
"""


def output(binary: str, *args: str) -> str:
    return subprocess.run(
        [find_binary(binary, "this test"), *args], capture_output=True, text=True, timeout=60, check=True
    ).stdout


async def eventually(what: str, attempt: Callable[[], Awaitable[T]], within: float = 60) -> T:
    """``await attempt()`` until it returns without raising (a cluster electing a leader answers with errors
    meanwhile); its last error after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await attempt()
        except Exception as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still failing after {within}s") from error
        await asyncio.sleep(0.2)


def assert_gone(processes: list[ClusterProcess], ports: list[int], root: Path) -> None:
    assert all(process.popen is not None and process.popen.returncode is not None for process in processes)
    assert not [port for port in ports if port_open(port)]
    assert not root.exists()


@fault
async def test_nats_cluster_keeps_a_replicated_stream_when_its_leader_is_killed(tmp_path: Path) -> None:
    import nats
    from nats.js.api import StorageType

    async def connect(url: str) -> Any:
        async def quiet(_: Exception) -> None:
            return None

        return await nats.connect(servers=[url], connect_timeout=5, error_cb=quiet, max_reconnect_attempts=5)

    with nats_cluster(tmp_path) as cluster:
        assert len(cluster.urls) == 3 and len(set(cluster.urls)) == 3
        assert cluster.url == ",".join(cluster.urls)
        stream, subject = unique("S"), unique("jobs.")
        first = await connect(cluster.urls[0])
        js = first.jetstream(timeout=10)
        await js.add_stream(name=stream, subjects=[subject], num_replicas=3, storage=StorageType.FILE)
        for number in range(20):
            ack = await js.publish(subject, str(number).encode())  # acked once a quorum of replicas has it
            assert ack.seq == number + 1
        info = await js.stream_info(stream)
        assert info.state.messages == 20
        assert info.cluster is not None and info.cluster.leader in ("n1", "n2", "n3")
        assert len(info.cluster.replicas or []) == 2
        leader = cluster.leader_index(stream)
        assert cluster.server_names[leader] == info.cluster.leader
        await first.close()

        cluster.kill(leader)
        assert not port_open(cluster.ports[leader])
        other = (leader + 1) % 3
        second = await connect(cluster.urls[other])
        js = second.jetstream(timeout=10)

        async def new_leader() -> str:
            info = await js.stream_info(stream)
            assert info.cluster is not None and info.cluster.leader not in (None, cluster.server_names[leader])
            return str(info.cluster.leader)

        assert await eventually("a new stream leader", new_leader) != cluster.server_names[leader]

        async def read_all() -> list[bytes]:
            consumer = await js.pull_subscribe(subject, durable=None, stream=stream)
            try:
                got: list[bytes] = []
                while len(got) < 20:
                    batch = await consumer.fetch(20 - len(got), timeout=5)
                    for message in batch:
                        await message.ack()
                    got += [message.data for message in batch]
                return got
            finally:
                await consumer.unsubscribe()

        assert await eventually("reading the stream via another node", read_all) == [str(n).encode() for n in range(20)]
        await js.publish(subject, b"20")  # two of three replicas left: still a quorum
        await second.close()

        cluster.start(leader)  # rejoins and catches up (healthz checks its replica is current)
        third = await connect(cluster.urls[leader])
        js = third.jetstream(timeout=10)

        async def caught_up() -> Any:
            info = await js.stream_info(stream)
            assert info.cluster is not None
            replicas = info.cluster.replicas or []
            assert {info.cluster.leader, *(peer.name for peer in replicas)} == set(cluster.server_names)
            assert all(peer.current and not peer.offline for peer in replicas), replicas
            return info

        info = await eventually("all three replicas current, via the restarted node", caught_up)
        assert info.state.messages == 21
        await third.close()
        processes, ports, root = list(cluster.processes), [*cluster.ports, *cluster.cluster_ports], cluster.root
    assert_gone(processes, ports, root)


@fault
async def test_redis_sentinel_promotes_the_replica_when_the_master_is_killed(tmp_path: Path) -> None:
    from redis.asyncio import Redis
    from redis.asyncio.sentinel import Sentinel

    with redis_sentinel(tmp_path) as cluster:
        assert len(cluster.sentinels) == 3
        master = cluster.master_port()
        (replica,) = cluster.replica_ports()
        assert replica != master
        key = unique("sentinel:")
        async with Redis(port=master, socket_timeout=5) as client:
            await client.set(key, "before")
            assert await client.wait(1, 10_000) == 1  # the replica has it

        killed = cluster.kill_master()
        assert killed == master and not port_open(master)
        new = cluster.wait_failover(killed)
        assert new == replica == cluster.master_port()

        sentinel = Sentinel(cluster.sentinels, socket_timeout=5)
        assert await sentinel.discover_master(cluster.master_name) == ("127.0.0.1", new)
        promoted = sentinel.master_for(cluster.master_name, socket_timeout=5)
        try:
            assert await promoted.get(key) == b"before"
            await promoted.set(f"{key}:after", "after")
            assert await promoted.get(f"{key}:after") == b"after"
            role = await promoted.execute_command("ROLE")
            assert role[0] in (b"master", "master")
        finally:
            await promoted.aclose()

        cluster.start(killed)  # back as a replica of the new master, with its data
        assert sorted(cluster.replica_ports()) == [killed]
        async with Redis(port=killed, socket_timeout=5) as client:
            assert await client.get(f"{key}:after") == b"after"
            assert (await client.execute_command("ROLE"))[0] in (b"slave", "slave")
        processes, ports, root = cluster.processes, [*cluster.redis_ports, *cluster.sentinel_ports], cluster.root
    assert_gone(processes, ports, root)


@fault
async def test_redis_cluster_spreads_keys_and_runs_hash_tagged_lua(tmp_path: Path) -> None:
    import redis
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import RedisClusterException

    with redis_cluster(tmp_path, node_timeout=2000) as cluster:
        ports = [port for _, port in cluster.nodes]
        assert len(set(ports)) == 3 and cluster.url == f"redis://127.0.0.1:{ports[0]}"
        nodes = output("redis-cli", "-p", str(ports[0]), "cluster", "nodes")
        lines = nodes.strip().splitlines()
        assert len(lines) == 3 and all("master" in line and "connected" in line for line in lines)
        assert {cluster.slot_owner(slot) for slot in (0, 8191, 16383)} == set(ports)

        client = RedisCluster.from_url(cluster.url, socket_timeout=5)
        try:
            prefix = unique("k")
            keys = [f"{prefix}:{n}" for n in range(60)]
            for name in keys:
                await client.set(name, name)
            per_node: dict[int, set[str]] = {port: set() for port in ports}
            for port in ports:
                with redis.Redis(port=port, decode_responses=True) as node:  # a plain client: this node's keys only
                    per_node[port] = set(node.scan_iter(match=f"{prefix}:*"))
                    for name in per_node[port]:
                        assert cluster.slot_owner(int(node.cluster("KEYSLOT", name))) == port
            assert all(per_node.values()), per_node  # every master holds some of the keys
            assert sorted(set().union(*per_node.values())) == sorted(keys)

            # One hash tag, one slot: a multi-key script moving a job between two lists of the same queue.
            tag = f"{{{unique('queue')}}}"
            pending, reserved = f"{tag}:pending", f"{tag}:reserved"
            assert client.keyslot(pending) == client.keyslot(reserved)
            move = MOVE
            await client.rpush(pending, "job-1", "job-2")
            assert await client.eval(move, 2, pending, reserved) == [b"job-1", 1]
            script = client.register_script(move)  # EVALSHA, loading the script on NOSCRIPT
            assert await script(keys=[pending, reserved]) == [b"job-2", 2]
            with pytest.raises(RedisClusterException, match="same key slot"):
                await client.eval(move, 2, f"{prefix}:a", f"{prefix}:b")

            # A node killed: its slots go unserved; started again, it rejoins (its keys are gone: nothing persists).
            victim = ports.index(cluster.slot_owner(client.keyslot(pending)))
            cluster.kill(victim)
            survivor = ports[(victim + 1) % 3]
            with redis.Redis(port=survivor, decode_responses=True) as node:
                deadline = time.monotonic() + 60
                while node.cluster("INFO")["cluster_state"] != "fail":
                    assert time.monotonic() < deadline, "the cluster did not notice the killed node"
                    await asyncio.sleep(0.2)
            cluster.start(victim)
            await eventually("the tagged queue after the restart", lambda: client.rpush(pending, "job-3"))
            assert await client.eval(move, 2, pending, reserved) == [b"job-3", 1]
        finally:
            await client.aclose()
        processes, bus, root = list(cluster.processes), cluster.bus_ports, cluster.root
    assert_gone(processes, [*ports, *bus], root)


async def test_rabbitmq_vhost_holds_a_quorum_queue() -> None:
    import aio_pika

    with rabbitmq_vhost() as vhost:
        assert vhost.url == f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost.name, safe='')}"
        queue_name = unique("quorum-")
        connection = await aio_pika.connect(vhost.url, timeout=30)
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
            await channel.default_exchange.publish(
                aio_pika.Message(b"quorum job", delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue_name
            )

            async def get() -> Any:
                message = await queue.get(timeout=5, fail=False)
                assert message is not None
                return message

            message = await eventually("the message from the quorum queue", get, within=30)
            assert message.body == b"quorum job"
            await message.ack()
            assert vhost.queues()[queue_name]["type"] == "quorum"
        finally:
            await connection.close()
        name = vhost.name
    assert name not in output("rabbitmqctl", "-q", "list_vhosts", "name").split()


def test_a_missing_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(clusters, "_EXTRA_BIN_DIRS", ())
    for make, binary in (
        (lambda: nats_cluster(tmp_path), "nats-server"),
        (lambda: redis_sentinel(tmp_path), "redis-server"),
        (lambda: redis_cluster(tmp_path), "redis-server"),
        (rabbitmq_vhost, "rabbitmqctl"),
    ):
        with pytest.raises(MissingBinaryError, match=f"'{binary}'"), make():
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_startup_failing_half_way_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[ClusterProcess] = []
    real_start = ClusterProcess.start

    def start(self: ClusterProcess) -> None:
        real_start(self)
        started.append(self)

    monkeypatch.setattr(ClusterProcess, "start", start)
    # Master and replica up, three sentinels started, and then they never agree.
    monkeypatch.setattr(clusters.RedisSentinel, "_sentinel_ready", lambda self, port, master, replica: False)
    real_wait_until = clusters.wait_until

    def wait_until(what: str, probe: Any, timeout: float = clusters.STARTUP_TIMEOUT, *args: Any, **kwargs: Any) -> Any:
        # The steps before must succeed (the usual generous deadline); the one that never does gives up sooner.
        return real_wait_until(what, probe, 5 if "knowing master" in what else timeout, *args, **kwargs)

    monkeypatch.setattr(clusters, "wait_until", wait_until)
    with pytest.raises(ClusterStartupError, match="knowing master"), redis_sentinel(tmp_path):
        pass
    assert len(started) == 5
    assert all(process.popen is not None and process.popen.returncode is not None for process in started)
    assert list(tmp_path.iterdir()) == []


def test_a_port_taken_meanwhile_is_retried_on_other_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    real_free_ports = clusters.free_ports
    calls: list[list[int]] = []

    def free_ports(count: int) -> list[int]:
        ports = real_free_ports(count)
        if not calls:
            ports[0] = port  # as if another process had bound it since it was picked
        calls.append(ports)
        return ports

    monkeypatch.setattr(clusters, "free_ports", free_ports)
    try:
        with redis_cluster(tmp_path) as cluster:
            assert len(calls) == 2 and port not in cluster.ports
    finally:
        taken.close()
    assert list(tmp_path.iterdir()) == []
