"""A network partition (TCP stays open, nothing answers): a dispatch fails within ``send_timeout`` with
``BrokerUnreachableError``, and once the network heals the next dispatch works, on every server driver."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from taskiq.exceptions import SendTaskError

from queue_manager import BrokerUnreachableError, QueueManager, task
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue
from tests.servers import tcp_proxy

pytestmark = [pytest.mark.usefixtures("clean_env"), pytest.mark.fault]  # a black-holed network

PORTS = {"redis": 6379, "redis_stream": 6379, "rabbitmq": 5672, "nats": 4222}
URLS = {
    "redis": "redis://127.0.0.1:{port}/0",
    "redis_stream": "redis://127.0.0.1:{port}/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:{port}/",
    "nats": "nats://127.0.0.1:{port}",
}
# Before the fix a dispatch blocked 45 s (Redis) or 210 s (RabbitMQ) with the defaults; here send_timeout is 2 s.
BOUND = 30


@task(name="tests.hostile.partition.numbered")
async def numbered(number: int) -> int:
    return number


def unreachable_cause(error: BaseException) -> BrokerUnreachableError:
    cause = error.__cause__ if isinstance(error, SendTaskError) else error
    assert isinstance(cause, BrokerUnreachableError), repr(error)
    return cause


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_a_dispatch_during_a_partition_fails_in_bounded_time_and_the_next_one_after_it_heals_works(
    driver: str, queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    with tcp_proxy(PORTS[driver]) as proxy:
        url = URLS[driver].format(port=proxy.port)
        fields = {"url": url, "queue": queue_name, "options": {"send_timeout": 2}}
        settings: dict[str, Any] = {"driver": driver, "connections": {driver: fields}}
        manager = QueueManager(load_settings(settings))
        connection = manager.connection()
        try:
            await connection.dispatch(numbered, 1)
            proxy.black_hole()
            started = time.monotonic()
            with pytest.raises((SendTaskError, BrokerUnreachableError)) as caught:
                await asyncio.wait_for(connection.dispatch(numbered, 2), 240)
            took = time.monotonic() - started
            error = unreachable_cause(caught.value)
            assert took < BOUND, f"the dispatch blocked {took:.0f}s"
            assert f"127.0.0.1:{proxy.port}" in str(error) and "send_timeout" in str(error), str(error)

            proxy.heal()
            handle = await asyncio.wait_for(connection.dispatch(numbered, 3), 60)
            assert handle.task_id, "the first dispatch after the network healed went through"
        finally:
            proxy.heal()
            await asyncio.wait_for(manager.shutdown(), 60)
            await cleanup_queue(driver, queue_name)
