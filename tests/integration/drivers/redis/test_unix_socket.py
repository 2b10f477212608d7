"""``REDIS_URL=unix:///path.sock``: both Redis drivers send, count and serve jobs over a unix socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from taskiq import AckableMessage
from taskiq.utils import maybe_awaitable

from queue_manager import QueueManager, task
from queue_manager.settings import load_settings
from tests.servers import private_unix_redis

pytestmark = pytest.mark.usefixtures("clean_env")


@task(name="tests.hostile.unix.numbered")
async def numbered(number: int) -> int:
    return number


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
async def test_a_unix_socket_url_works_for_sending_counting_and_serving(
    driver: str, queue_name: str, clean_env: pytest.MonkeyPatch
) -> None:
    with private_unix_redis() as server:
        clean_env.setenv("REDIS_URL", server.url)
        manager = QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue_name}}}))
        sender = manager.connection()
        worker_manager = QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue_name}}}))
        worker = worker_manager.connection()
        worker.broker.is_worker_process = True
        try:
            await sender.ping()
            handle = await sender.dispatch(numbered, 41)
            await sender.dispatch(numbered, 42).delay(1)
            assert await sender.size() == 2
            await worker.startup()
            broker: Any = worker.broker
            deliveries = broker.listen()
            seen = []
            for _ in range(2):
                delivery = await asyncio.wait_for(anext(deliveries), 30)
                assert isinstance(delivery, AckableMessage)
                seen.append(json.loads(delivery.data)["args"][0])
                await maybe_awaitable(delivery.ack())
            await deliveries.aclose()
            # Either order: a delayed job already due when the worker first fetches goes to the head of the queue.
            assert sorted(seen) == [41, 42]
            assert handle.task_id
        finally:
            await worker_manager.shutdown()
            await manager.shutdown()
