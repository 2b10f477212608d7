"""Recording failed jobs while the store is away (a private Redis, stopped and started again): the first record
waits at most ``WRITE_TIMEOUT``, the next ones not at all; each waits in the spool and reaches the store once it
answers again, with nothing lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from queue_manager import QueueManager
from queue_manager.failed.recording import WRITE_TIMEOUT
from queue_manager.settings import load_settings
from tests.servers import private_redis
from tests.unit.failed.test_failed_store import make_job

pytestmark = [pytest.mark.usefixtures("clean_env"), pytest.mark.fault]


async def eventually(check: object, within: float = 60) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if await check():  # type: ignore[operator]
                return True
        except Exception:  # the store is still starting
            pass
        await asyncio.sleep(0.2)
    return False


async def test_records_wait_in_the_spool_while_the_store_is_stopped_then_reach_it(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        connections = {"store": {"driver": "redis", "url": f"redis://127.0.0.1:{server.port}/0"}}
        settings = {
            "driver": "memory",
            "connections": connections,
            "failed": {"driver": "redis", "connection": "store"},
        }
        manager = QueueManager(load_settings(settings), base_path=tmp_path)
        recorder = manager.failed.recorder
        try:
            assert await recorder.write(make_job(0)) is None, "the store answers: written at once"
            server.stop()
            started = time.monotonic()
            first = await recorder.write(make_job(1))
            first_took = time.monotonic() - started
            started = time.monotonic()
            others = [await recorder.write(make_job(n)) for n in range(2, 12)]
            others_took = time.monotonic() - started
            assert first is not None and "until the store answers" in first
            assert all(kept is not None for kept in others)
            assert first_took < WRITE_TIMEOUT + 5 and others_took < 5, (first_took, others_took)
            assert len(recorder.spool.pending()) == 11
            server.start()  # empty: this private Redis keeps nothing on disk, so job 0 is gone with it

            async def all_in_the_store() -> bool:
                return await manager.failed.store.count() == 11

            assert await eventually(all_in_the_store), await manager.failed.store.count()
            assert recorder.spool.pending() == [] and recorder.away is None
            assert await recorder.write(make_job(12)) is None, "written at once again"
        finally:
            await manager.shutdown()


async def test_a_worker_that_starts_writes_what_an_earlier_one_left_in_the_spool(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        connections = {"store": {"driver": "redis", "url": f"redis://127.0.0.1:{server.port}/0"}}
        settings = load_settings(
            {"driver": "memory", "connections": connections, "failed": {"driver": "redis", "connection": "store"}}
        )
        earlier = QueueManager(settings, base_path=tmp_path)
        server.stop()
        try:
            for n in range(5):
                assert await earlier.failed.recorder.write(make_job(n)) is not None
        finally:
            await earlier.shutdown()  # stops before the store is back: the records stay on disk
        server.start()
        later = QueueManager(settings, base_path=tmp_path)
        try:
            await later.failed.worker_started()

            async def all_in_the_store() -> bool:
                return await later.failed.store.count() == 5

            assert await eventually(all_in_the_store), await later.failed.store.count()
            assert later.failed.recorder.spool.pending() == []
        finally:
            await later.shutdown()
