"""A retry claims each failed job before sending it, on every store: two ``retry("all")`` at once, or ten
retries of one job at once (the dashboard's Retry button pressed in ten tabs), send each job once; a send that
fails gives the record back, so the next retry sends it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from queue_manager import QueueManager
from queue_manager.errors import RetryError
from queue_manager.settings import load_settings
from tests.helpers import cleanup_queue, queued
from tests.unit.failed.test_failed_store import make_job

pytestmark = pytest.mark.usefixtures("clean_env")

TASK = "tests.failed.claims.job"
JOBS = 300


def manager_on(failed: dict[str, Any], queue: str, base: Path, url: str = "redis://127.0.0.1:6379/0") -> QueueManager:
    """A process's manager: its own store client (own connection pool) and its own Redis connection."""
    connections = {
        "redis": {"url": url, "queue": queue, "options": {"send_timeout": 2}},
        "store": {"driver": "redis", "url": "redis://127.0.0.1:6379/0"},  # the Redis store's, always reachable
    }
    if failed.get("driver") == "redis":
        failed = {**failed, "connection": "store"}
    settings = load_settings({"driver": "redis", "connections": connections, "failed": failed})
    return QueueManager(settings, base_path=base)


@pytest.fixture
async def managers(failed_config: dict[str, Any], queue_name: str, tmp_path: Path) -> AsyncIterator[list[QueueManager]]:
    made = [manager_on(failed_config, queue_name, tmp_path) for _ in range(10)]
    try:
        yield made
    finally:
        for manager in made:
            await manager.shutdown()
        await cleanup_queue("redis", queue_name)


async def record(manager: QueueManager, queue: str, count: int) -> list[str]:
    jobs = [make_job(n, connection="redis", queue=queue, task_name=TASK) for n in range(count)]
    for start in range(0, count, 50):
        await asyncio.gather(*(manager.failed.store.log(job) for job in jobs[start : start + 50]))
    return [job.id for job in jobs]


async def test_two_retry_all_at_once_send_each_job_once(managers: list[QueueManager], queue_name: str) -> None:
    await record(managers[0], queue_name, JOBS)
    first, second = await asyncio.gather(managers[0].failed.retry("all"), managers[1].failed.retry("all"))
    sent = await queued("redis", queue_name)
    assert sent == JOBS, f"{sent} jobs sent for {JOBS} failed jobs ({len(first)} + {len(second)} retried)"
    assert len(first) + len(second) == JOBS
    assert {job.id for job in first}.isdisjoint(job.id for job in second)
    assert await managers[0].failed.count() == 0


async def test_ten_retries_of_one_job_at_once_send_it_once(managers: list[QueueManager], queue_name: str) -> None:
    [id] = await record(managers[0], queue_name, 1)
    outcomes = await asyncio.gather(*(manager.failed.retry([id]) for manager in managers), return_exceptions=True)
    sent = await queued("redis", queue_name)
    assert sent == 1, f"{sent} copies sent: {outcomes}"
    retried = [outcome for outcome in outcomes if isinstance(outcome, list) and outcome]
    assert len(retried) == 1, outcomes
    assert await managers[0].failed.count() == 0


async def test_a_send_that_fails_after_the_claim_keeps_the_record_for_the_next_retry(
    failed_config: dict[str, Any], managers: list[QueueManager], queue_name: str, tmp_path: Path
) -> None:
    [id] = await record(managers[0], queue_name, 1)
    broken = manager_on(failed_config, queue_name, tmp_path, url="redis://127.0.0.1:1/0")  # nothing listens there
    try:
        with pytest.raises(RetryError, match=id):
            await broken.failed.retry([id])
    finally:
        await broken.shutdown()
    assert await managers[0].failed.count() == 1, "the record is still there"
    [retried] = await managers[1].failed.retry([id])  # at once: the claim was given back, not left to expire
    assert retried.id == id
    assert await queued("redis", queue_name) == 1
    assert await managers[0].failed.count() == 0
