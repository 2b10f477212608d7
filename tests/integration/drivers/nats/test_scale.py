"""NATS across several servers (issue #16): a comma list of URLs, and ``replicas`` for the stream and the buckets.

The cluster tests start a real 3-node JetStream cluster on loopback (tests/clusters.py); the others use the
shared server and a closed port.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from queue_manager import BrokerUnreachableError, QueueConfigurationError, QueueManager, task
from tests.clusters import free_ports, nats_cluster
from tests.helpers import one_connection_manager, unique

pytestmark = pytest.mark.usefixtures("clean_env", "no_current_manager")
SHARED = "nats://127.0.0.1:4222"


@task(name="tests.scale_nats.job")
async def job(n: int) -> int:
    return n


def nats_manager(url: str, stream: str, queue: str, **options: Any) -> QueueManager:
    options = {"stream": stream, "subject_prefix": stream.lower(), "result_bucket": f"{stream}_results", **options}
    return one_connection_manager("nats", url, queue, **options)


@asynccontextmanager
async def jetstream(servers: list[str]) -> AsyncIterator[Any]:
    import nats

    async def quiet(_: Exception) -> None:
        return None

    client = await nats.connect(servers=servers, connect_timeout=5, error_cb=quiet)
    try:
        yield client.jetstream(timeout=10)
    finally:
        await client.close()


async def drop(servers: list[str], stream: str) -> None:
    async with jetstream(servers) as js:
        for name in (stream, f"KV_{stream}_results", f"KV_{stream}_control", f"KV_{stream}_control_metrics"):
            with suppress(Exception):
                await js.delete_stream(name)


async def test_a_url_list_connects_through_the_server_that_answers() -> None:
    closed = free_ports(1)[0]
    stream, queue = unique("SCALE"), unique("q")
    manager = nats_manager(f"nats://u:s3cr3t@127.0.0.1:{closed},{SHARED}", stream, queue)
    conn = manager.connection("nats")
    try:
        await conn.ping()
        handle = await conn.dispatch(job, 7)
        assert handle.task_id and await conn.size(queue) == 1
        await conn.pause(queue)
        assert await conn.paused(queue)
    finally:
        await manager.shutdown()
        await drop([SHARED], stream)


async def test_a_list_of_servers_none_answering_names_each_without_the_password() -> None:
    ports = free_ports(2)
    url = ",".join(f"nats://u:s3cr3t@127.0.0.1:{port}" for port in ports)
    manager = nats_manager(url, unique("SCALE"), unique("q"), connect_timeout=2)
    with pytest.raises(BrokerUnreachableError) as caught:
        await manager.connection("nats").ping()
    message = str(caught.value)
    assert all(f"127.0.0.1:{port}" in message for port in ports), message
    assert "s3cr3t" not in message and "u:***@" in message, message


async def test_replicas_above_one_on_a_single_server_is_a_clear_error() -> None:
    stream, queue = unique("SCALE"), unique("q")
    manager = nats_manager(SHARED, stream, queue, replicas=3)
    try:
        with pytest.raises(QueueConfigurationError, match="replica") as caught:
            await manager.connection("nats").startup()
        assert "QUEUE_CONNECTIONS__NATS__OPTIONS__REPLICAS" in str(caught.value)
    finally:
        await manager.shutdown()
    async with jetstream([SHARED]) as js:
        names = await js.streams_info()
        assert not [info for info in names if stream in info.config.name], "nothing was left half-made"


async def replicas_of(js: Any, stream: str) -> int:
    return int((await js.stream_info(stream)).config.num_replicas or 1)


@pytest.mark.fault
async def test_replicas_keep_the_stream_and_every_bucket_on_three_servers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="queue_manager")
    with nats_cluster(tmp_path) as cluster:
        stream, queue = unique("SCALE"), unique("q")
        # First with one replica (the default), as an app that later scales out.
        manager = nats_manager(cluster.url, stream, queue)
        conn = manager.connection("nats")
        await conn.dispatch(job, 1)
        await conn.pause(queue)
        assert await conn.throughput(queue, minutes=1) == [0]
        await manager.shutdown()
        async with jetstream(cluster.urls) as js:
            for name in (stream, f"KV_{stream}_results", f"KV_{stream}_control", f"KV_{stream}_control_metrics"):
                assert await replicas_of(js, name) == 1, name

        manager = nats_manager(cluster.url, stream, queue, replicas=3)
        conn = manager.connection("nats")
        try:
            await conn.startup()  # the stream and the results bucket
            assert await conn.paused(queue), "the control bucket, kept across the change"
            assert await conn.throughput(queue, minutes=1) == [0]  # the metrics bucket
            handle = await conn.dispatch(job, 2)
            assert handle.task_id and await conn.size(queue) == 2, "jobs kept across the change"
            async with jetstream(cluster.urls) as js:
                for name in (stream, f"KV_{stream}_results", f"KV_{stream}_control", f"KV_{stream}_control_metrics"):
                    assert await replicas_of(js, name) == 3, name
                    info = await js.stream_info(name)
                    assert info.cluster is not None and len(info.cluster.replicas or []) == 2, name
        finally:
            await manager.shutdown()
        changed = [r.getMessage() for r in caplog.records if "changed to 3" in r.getMessage()]
        assert len(changed) == 4, changed  # each change is logged once

        manager = nats_manager(cluster.url, stream, queue)  # replicas unset: what an operator set is kept
        try:
            await manager.connection("nats").startup()
            assert await manager.connection("nats").paused(queue)
        finally:
            await manager.shutdown()
        async with jetstream(cluster.urls) as js:
            for name in (stream, f"KV_{stream}_results", f"KV_{stream}_control"):
                assert await replicas_of(js, name) == 3, name

        fresh = unique("SCALE")  # made with three replicas from the start
        manager = nats_manager(cluster.url, fresh, queue, replicas=3)
        try:
            await manager.connection("nats").startup()
            async with jetstream(cluster.urls) as js:
                assert await replicas_of(js, fresh) == 3
                assert await replicas_of(js, f"KV_{fresh}_results") == 3
        finally:
            await manager.shutdown()
