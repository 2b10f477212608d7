"""conn.size() and conn.clear() (Laravel's Queue::size / Queue::clear) on every driver and under the fake."""

from __future__ import annotations

import pytest

from queue_manager import QueueConfigurationError, QueueManager, task
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue, queued

pytestmark = pytest.mark.usefixtures("clean_env")


@task
async def noted(number: int) -> int:
    return number


def manager_on(driver: str, queue: str) -> QueueManager:
    return QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue}}}))


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_size_counts_waiting_jobs_and_clear_removes_them(driver: str, queue_name: str) -> None:
    manager = manager_on(driver, queue_name)
    connection = manager.connection()
    other = f"{queue_name}-other"
    try:
        assert await connection.size() == 0, "an empty (or never used) queue has size 0"
        for n in range(3):
            await connection.dispatch(noted, n)
        await connection.dispatch(noted, 99).delay(600)
        await connection.dispatch(noted, 7).on_queue(other)
        # RabbitMQ holds a delayed job in a delay queue of its own, which the target queue's count leaves out.
        expected = 3 if driver == "rabbitmq" else 4
        assert await connection.size() == expected
        assert await connection.size(other) == 1
        assert await queued(driver, other) == 1, "size agrees with the broker's own client"
        assert await connection.clear() == expected
        assert await connection.size() == 0
        assert await connection.size(other) == 1, "clear empties only the queue asked for"
        assert await connection.clear(other) == 1
        assert await queued(driver, other) == 0
    finally:
        await manager.shutdown()
        await cleanup_queue(driver, queue_name)
        await cleanup_queue(driver, other)


async def test_memory_size_is_the_delayed_jobs_not_yet_due(queue_name: str) -> None:
    manager = manager_on("memory", queue_name)
    connection = manager.connection()
    await connection.dispatch(noted, 1)  # runs at once
    await connection.dispatch(noted, 2).delay(600)
    assert await connection.size() == 1
    assert await connection.clear() == 1
    assert await connection.size() == 0
    await manager.shutdown()


async def test_faked_connection_counts_recorded_jobs(queue_name: str) -> None:
    manager = manager_on("redis", queue_name)
    with manager.fake() as fake:
        connection = manager.connection()
        await connection.dispatch(noted, 1)
        await connection.dispatch(noted, 2).on_queue("emails")
        assert await connection.size() == 1
        assert await connection.size("emails") == 1
        assert await connection.clear("emails") == 1
        fake.assert_count(1)


async def test_a_custom_driver_without_size_gets_a_clear_error(queue_name: str) -> None:
    from taskiq import InMemoryBroker

    settings = load_settings(
        {
            "driver": "memory",
            "drivers": {"plain": lambda spec: InMemoryBroker()},
            "connections": {"plain": {"driver": "plain"}},
        }
    )
    manager = QueueManager(settings)
    with pytest.raises(QueueConfigurationError, match=r"cannot size a queue.*async def size\(queue\)"):
        await manager.connection("plain").size()


async def test_an_invalid_queue_name_is_named(queue_name: str) -> None:
    manager = manager_on("memory", queue_name)
    with pytest.raises(QueueConfigurationError, match="Invalid queue name 'a b'"):
        await manager.connection().size("a b")
