"""A worker's last counts reach the server when it stops: its middlewares' shutdown runs while the broker is still
connected (taskiq-nats closed its client first, so a NATS worker lost up to the last five seconds of throughput)."""

from __future__ import annotations

import pytest
from taskiq import TaskiqMessage

from drivers.base import labels
from queue_manager.worker.middlewares import Throughput
from tests.helpers import unique
from tests.integration.drivers.isolated import drop_namespace, isolated_manager

pytestmark = pytest.mark.usefixtures("clean_env")
COUNTING = ("redis", "redis_stream", "nats")  # RabbitMQ keeps no counters


@pytest.mark.parametrize("driver", COUNTING)
async def test_the_counts_of_a_stopping_worker_are_flushed_before_it_disconnects(driver: str) -> None:
    namespace, queue = unique("ns"), unique("q")
    manager = isolated_manager(driver, queue, namespace)
    try:
        conn = manager.connection()
        counting = Throughput(queue)
        conn.broker.add_middlewares(counting)
        await conn.startup()
        message = TaskiqMessage(task_id=unique(), task_name="t", labels={labels.QUEUE: queue}, args=[], kwargs={})
        for _ in range(3):
            counting.post_execute(message, None)
        await manager.shutdown()  # the worker stops well before its periodic flush

        again = isolated_manager(driver, queue, namespace)
        try:
            assert sum(await again.connection().throughput(queue, minutes=2) or []) == 3
        finally:
            await again.shutdown()
    finally:
        await manager.shutdown()
        await drop_namespace(driver, namespace)
