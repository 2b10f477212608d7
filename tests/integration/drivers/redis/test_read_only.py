"""A Redis that turns read-only under a worker (a Sentinel failover demoted its master, or the URL names a replica):
the worker's fetch gets READONLY. It must keep the worker alive, drop its connections (so a Sentinel pool asks for
the new master) and serve again once writes are accepted, on both Redis drivers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from queue_manager import QueueManager, task
from queue_manager.settings import load_settings
from tests.servers import PrivateServer, private_redis

pytestmark = [pytest.mark.usefixtures("clean_env"), pytest.mark.fault]


@task(name="tests.read_only.job")
async def job(n: int) -> int:
    return n


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateServer]:
    with private_redis(tmp_path) as running:
        yield running


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
async def test_a_fetch_refused_as_read_only_is_retried_not_fatal(
    driver: str, server: PrivateServer, queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{server.port}/0"
    settings = load_settings({"driver": driver, "connections": {driver: {"url": url, "queue": queue_name}}})
    connection = QueueManager(settings).connection()
    broker: Any = connection.broker
    broker.is_worker_process = True
    admin = Redis.from_url(url)
    await connection.startup()
    try:
        await connection.dispatch(job, 1)
        # Point the server at a master that does not exist: it stays a read-only replica of nothing.
        await admin.execute_command("REPLICAOF", "127.0.0.1", "1")
        deliveries = broker.listen()
        fetching = asyncio.ensure_future(anext(deliveries))
        deadline = asyncio.get_running_loop().time() + 30
        while "READONLY" not in caplog.text.upper() and asyncio.get_running_loop().time() < deadline:
            assert not fetching.done() or fetching.exception() is None, "the read-only error ended the worker"
            await asyncio.sleep(0.05)
        assert "read only" in caplog.text.lower() or "readonly" in caplog.text.lower(), caplog.text
        assert not fetching.done(), "no job can be fetched from a read-only server"
        await admin.execute_command("REPLICAOF", "NO", "ONE")
        message = await asyncio.wait_for(fetching, 60)
        await message.ack()
        await deliveries.aclose()
    finally:
        await connection.shutdown()
        await admin.aclose()
