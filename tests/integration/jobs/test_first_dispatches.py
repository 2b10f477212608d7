"""Many dispatches at once as a process's very first sends (the 20 concurrent dispatches of a unique job found
it): each waits for the connection to be connected, none is sent on a broker still starting. TaskIQ fires its
startup event before the broker connects; RabbitMQ then said "not started"."""

from __future__ import annotations

import asyncio

import pytest

from queue_manager import QueueManager, dispatch, task, use_manager
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue, queued, unique


@task(name="tests.integration.jobs.first_dispatches:noted")
async def noted(n: int) -> int:
    return n


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_twenty_first_dispatches_at_once_are_all_sent(driver: str, clean_env: pytest.MonkeyPatch) -> None:
    queue = unique()
    manager = QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue}}}))
    use_manager(manager)
    try:
        handles = await asyncio.gather(*(dispatch(noted, n) for n in range(20)))
        assert len({handle.task_id for handle in handles}) == 20
        assert await queued(driver, queue) == 20
    finally:
        await manager.shutdown()
        use_manager(None)
        await cleanup_queue(driver, queue)
