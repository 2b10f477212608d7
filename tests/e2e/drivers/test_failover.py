"""The failover connection with real ``queue:work`` workers on both of its connections, the primary a private
server behind a TCP proxy that the test partitions from the dispatching process (the workers reach it directly).

A job whose send to the primary got no answer may be stored there (the proxy holds its bytes and delivers them
when the network heals, as TCP does after a real partition): it must not be sent to the next connection too, or
it runs twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker

from queue_manager import BrokerUnreachableError, QueueManager
from queue_manager.settings import load_settings
from tests.helpers import connections_env, lines, queue_work, unique, wait_for
from tests.servers import PrivateServer, private_nats, private_redis, tcp_proxy

pytestmark = [pytest.mark.e2e, pytest.mark.fault]  # private servers, a black-holed network
TASKS = "--tasks=app.jobs"
SERVERS = {"redis": (private_redis, "redis://127.0.0.1:{port}/0"), "nats": (private_nats, "nats://127.0.0.1:{port}")}


@contextmanager
def primary_server(driver: str, tmp_path: Path) -> Iterator[PrivateServer]:
    start, _ = SERVERS[driver]
    with start(tmp_path) as server:
        yield server


def url(driver: str, port: int) -> str:
    return SERVERS[driver][1].format(port=port)


def runs(record_dir: Path) -> Counter[tuple[int, str]]:
    """(job, connection that ran it) -> how many times, from app.jobs.remember's record."""
    return Counter((int(row.split()[0]), row.split()[2]) for row in lines(record_dir / "ran"))


async def send(manager: QueueManager, number: int) -> Any:
    kicker: AsyncKicker[Any, Any] = AsyncKicker("app.jobs:remember", manager.connection("failover").broker, {})
    return await kicker.kiq(number)


@pytest.mark.parametrize("driver", ["redis", "nats"])
async def test_a_job_in_flight_when_the_primary_is_partitioned_runs_once(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    primary_queue = unique()
    with primary_server(driver, tmp_path) as server, tcp_proxy(server.port) as proxy:
        primary = {"driver": driver, "queue": primary_queue}
        env = connections_env(
            queues,
            record_dir,
            "redis",
            QUEUE_CONNECTIONS__PRIMARY__DRIVER=driver,
            QUEUE_CONNECTIONS__PRIMARY__URL=url(driver, server.port),  # the workers reach it directly
            QUEUE_CONNECTIONS__PRIMARY__QUEUE=primary_queue,
        )
        options = {"connections": "primary,redis", "cooldown": 120}
        connections = {
            "primary": {**primary, "url": url(driver, proxy.port), "options": {"send_timeout": 2}},
            "redis": {"queue": queues["redis"]},
            "failover": {"driver": "failover", "options": options},
        }
        manager = QueueManager(load_settings({"driver": "redis", "connections": connections}))
        with (
            queue_work("primary", TASKS, env=env, log=tmp_path / "primary.log") as on_primary,
            queue_work("redis", TASKS, env=env, log=tmp_path / "redis.log") as on_redis,
        ):
            on_primary.wait_ready()
            on_redis.wait_ready()
            try:
                await send(manager, 1)
                assert wait_for(lambda: runs(record_dir)[(1, "primary")] == 1, timeout=60), on_primary.output()

                proxy.black_hole()
                started = time.monotonic()
                refused: BaseException | None = None
                try:
                    await asyncio.wait_for(send(manager, 2), 120)
                except (SendTaskError, BrokerUnreachableError) as error:
                    refused = error.__cause__ or error
                took = time.monotonic() - started

                started = time.monotonic()
                later = [await send(manager, number) for number in (3, 4, 5)]  # the primary cools down: to redis
                results = [await handle.wait_result(timeout=60) for handle in later]
                assert [result.return_value for result in results] == [3, 4, 5]
                read = time.monotonic() - started
                assert read < 30, f"3 sends and their results took {read:.1f} s while the primary was partitioned"

                proxy.heal()  # the held send reaches the primary now
                assert wait_for(lambda: runs(record_dir)[(2, "primary")] == 1, timeout=60), on_primary.output()
                assert wait_for(lambda: len(lines(record_dir / "ran")) >= 5, timeout=60)
                done = runs(record_dir)
                expected = {(1, "primary"): 1, (2, "primary"): 1, (3, "redis"): 1, (4, "redis"): 1, (5, "redis"): 1}
                assert dict(done) == expected, f"{done} (primary: {on_primary.output()[-2000:]})"
                assert isinstance(refused, BrokerUnreachableError), "the caller hears that job 2 may not be sent"
                assert "may or may not have reached 'primary'" in str(refused), refused
                assert "not sent to 'redis'" in str(refused), refused
                assert took < 30, f"the send that got no answer took {took:.1f} s"
            finally:
                proxy.heal()
                await manager.shutdown()
