"""The failover connection (Laravel 12.34's): the first connection that takes the job gets it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_manager import BrokerUnreachableError, QueueConfigurationError, QueueManager, task, use_manager
from queue_manager.settings import load_settings
from tests.helpers import cleanup_queue, unique
from tests.servers import private_redis

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture(autouse=True)
def no_manager_afterwards() -> Iterator[None]:
    yield
    use_manager(None)


def managing(settings: Any) -> QueueManager:
    manager = QueueManager(settings)
    use_manager(manager)
    return manager


@task(name="tests.failover.job")
async def job(n: int) -> int:
    return n


def failover_manager(primary_url: str, queue: str, cooldown: float = 2.0) -> QueueManager:
    return managing(
        load_settings(
            {
                "driver": "failover",
                "connections": {
                    "primary": {"driver": "redis", "url": primary_url, "queue": queue},
                    "redis": {"queue": queue},
                    "failover": {
                        "driver": "failover",
                        "options": {"connections": "primary,redis", "cooldown": cooldown},
                    },
                },
            }
        )
    )


async def test_dispatch_falls_over_to_the_next_connection_and_back_after_the_cool_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="queue_manager")
    queue = unique()
    with private_redis(tmp_path) as server:
        manager = failover_manager(f"redis://127.0.0.1:{server.port}/0", queue, cooldown=5.0)
        primary, fallback = manager.connection("primary"), manager.connection("redis")
        try:
            await job.kiq(1)  # QUEUE_DRIVER=failover: the default connection
            assert (await primary.size(), await fallback.size()) == (1, 0)
            server.stop()
            await job.kiq(2)  # the primary fails: skipped for the 5 s cool-down from now
            tried: list[str] = []
            real_kick = primary.broker.kick

            async def kick(message: Any) -> None:
                tried.append(message.task_id)
                await real_kick(message)

            primary.broker.kick = kick  # type: ignore[method-assign]
            await job.kiq(3)
            assert tried == [], "during the cool-down the failed connection is skipped"
            primary.broker.kick = real_kick  # type: ignore[method-assign]
            assert await fallback.size() == 2
            falls = [r.getMessage() for r in caplog.records if "connection 'primary' failed" in r.getMessage()]
            assert len(falls) == 1 and "trying the next one" in falls[0], "each fall-over logged once"
            server.start()
            deadline = time.monotonic() + 60
            while await primary.size() == 0 and time.monotonic() < deadline:  # until the cool-down is over
                await job.kiq(4)
                await asyncio.sleep(0.5)
            assert await primary.size() == 1, "back to the first connection once it answers again"
            assert any("'primary' takes jobs again" in r.getMessage() for r in caplog.records)
        finally:
            await manager.shutdown()
            await cleanup_queue("redis", queue)


async def test_when_no_connection_takes_the_job_the_error_names_each(tmp_path: Path) -> None:
    manager = managing(
        load_settings(
            {
                "driver": "failover",
                "connections": {
                    "a": {"driver": "redis", "url": "redis://127.0.0.1:1/0"},
                    "b": {"driver": "redis", "url": "redis://:s3cret@127.0.0.1:2/0"},
                    "failover": {"driver": "failover", "options": {"connections": '["a", "b"]'}},
                },
            }
        )
    )
    with pytest.raises(Exception) as caught:
        await job.kiq(1)
    error = caught.value.__cause__ or caught.value
    assert isinstance(error, BrokerUnreachableError)
    assert "'a':" in str(error) and "'b':" in str(error) and "s3cret" not in str(error)
    await manager.shutdown()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs the connections to try"),
        ({"connections": "redis,rabit"}, "Unknown queue connection 'rabit'. Did you mean 'rabbitmq'?"),
        ({"connections": "failover"}, "cannot fail over to 'failover', itself"),
        ({"connections": "other"}, "another failover connection"),
    ],
)
def test_failover_settings_are_checked_at_boot(options: dict[str, str], message: str) -> None:
    connections = {
        "failover": {"driver": "failover", "options": options},
        "other": {"driver": "failover", "options": {"connections": "redis"}},
    }
    with pytest.raises(QueueConfigurationError) as caught:
        QueueManager(load_settings({"driver": "memory", "connections": connections}))
    assert message in str(caught.value)
