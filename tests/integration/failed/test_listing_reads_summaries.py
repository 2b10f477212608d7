"""List views read summaries, never whole records: with 20 failed jobs of 5 MB each, the dashboard's poll of the
failed jobs (every 2 s) and ``manager.failed.summaries`` (``queue:failed``) allocate less than one record, on
every store. Before, each poll read all 20 whole (100 MB)."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from queue_manager import QueueManager
from queue_manager.settings import load_settings
from queue_manager.web.dashboard.stats import failed_stats
from tests.unit.failed.test_failed_store import make_job

pytestmark = pytest.mark.usefixtures("clean_env")

MB = 2**20
JOBS = 20


@pytest.fixture
async def manager(failed_config: dict[str, Any], tmp_path: Path) -> AsyncIterator[QueueManager]:
    failed = {**failed_config, "connection": "redis"} if failed_config.get("driver") == "redis" else failed_config
    made = QueueManager(load_settings({"driver": "memory", "failed": failed}), base_path=tmp_path)
    big = "x" * (5 * MB)
    for n in range(JOBS):
        await made.failed.store.log(make_job(n, big))
    try:
        yield made
    finally:
        await made.shutdown()


async def test_a_dashboard_poll_reads_no_whole_record(manager: QueueManager) -> None:
    await failed_stats(manager)  # connected, table checked: what every later poll does
    tracemalloc.start()
    try:
        stats = await failed_stats(manager)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stats["error"] is None and len(stats["jobs"]) == JOBS and stats["total"] == JOBS
    assert peak < 5 * MB, f"a poll allocated {peak / MB:.1f} MB for {JOBS} failed jobs of 5 MB"


async def test_a_listing_gives_each_size_without_reading_the_records(manager: QueueManager) -> None:
    tracemalloc.start()
    try:
        listed = await manager.failed.summaries()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(listed) == JOBS and all(job.size is not None and job.size > 5 * MB for job in listed)
    assert peak < 5 * MB, f"the listing allocated {peak / MB:.1f} MB"
