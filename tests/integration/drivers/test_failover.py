"""The failover connection (Laravel 12.34's): the first connection that takes the job gets it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from taskiq.exceptions import TaskiqResultTimeoutError

from queue_manager import BrokerUnreachableError, QueueConfigurationError, QueueManager, task, use_manager
from queue_manager.settings import load_settings
from tests.helpers import cleanup_queue, unique
from tests.servers import private_redis, tcp_proxy

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


def failover_manager(primary_url: str, queue: str, cooldown: float = 2.0, **primary: Any) -> QueueManager:
    return managing(
        load_settings(
            {
                "driver": "failover",
                "connections": {
                    "primary": {"driver": "redis", "url": primary_url, "queue": queue, "options": primary},
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


@pytest.mark.fault  # a black-holed network
async def test_a_send_that_got_no_answer_is_not_repeated_and_a_partitioned_connection_gets_jobs_once_it_answers(
    tmp_path: Path,
) -> None:
    queue = unique()
    with private_redis(tmp_path) as server, tcp_proxy(server.port) as proxy:
        # cool-down 0: the primary is asked first every time, so each dispatch pings it (it failed before)
        manager = failover_manager(
            f"redis://127.0.0.1:{proxy.port}/0", queue, cooldown=0, send_timeout=1, socket_connect_timeout=1
        )
        primary, fallback = manager.connection("primary"), manager.connection("redis")
        try:
            await job.kiq(1)
            proxy.black_hole()
            with pytest.raises(Exception) as caught:
                await job.kiq(2)  # its bytes wait in the partition: the primary may store it
            error = caught.value.__cause__ or caught.value
            assert isinstance(error, BrokerUnreachableError) and error.maybe_sent, repr(error)
            assert "may or may not have reached 'primary'" in str(error) and "not sent to 'redis'" in str(error)
            assert await fallback.size() == 0, "not sent to the next connection as well"
            await job.kiq(3)  # the primary does not answer the ping: nothing sent there, so on to redis
            await job.kiq(4)
            assert await fallback.size() == 2
            proxy.heal()
            for _ in range(600):  # up to a minute: job 1, and job 2 once its held bytes arrive
                if await primary.size() == 2:
                    break
                await asyncio.sleep(0.1)
            assert await primary.size() == 2, "the held job reached the primary"
            await job.kiq(5)  # the primary answers the ping again: it takes the job
            assert (await primary.size(), await fallback.size()) == (3, 2), "each job on one connection"
        finally:
            proxy.heal()
            await manager.shutdown()
            await cleanup_queue("redis", queue)


@pytest.mark.fault  # a black-holed network
async def test_wait_result_keeps_to_its_timeout_while_the_primary_is_partitioned(tmp_path: Path) -> None:
    """Each result read from a connection is bounded: a partitioned primary no longer holds a poll for the minutes
    redis-py's socket timeouts and retries add up to (81.5 s for timeout=5 before)."""
    queue = unique()
    with private_redis(tmp_path) as server, tcp_proxy(server.port) as proxy:
        manager = failover_manager(f"redis://127.0.0.1:{proxy.port}/0", queue)
        try:
            handle = await job.kiq(1)  # on the primary, where no worker runs it
            assert await manager.connection("primary").size() == 1
            proxy.black_hole()
            started = time.monotonic()
            with pytest.raises(TaskiqResultTimeoutError):
                await asyncio.wait_for(handle.wait_result(timeout=5), 240)
            took = time.monotonic() - started
            assert 5 <= took < 20, f"wait_result(timeout=5) took {took:.1f} s"
        finally:
            proxy.heal()
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
