"""RabbitMQ across several nodes (issue #16): a comma list of AMQP URLs, in a vhost of the test's own."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from queue_manager import BrokerUnreachableError, QueueManager, task
from tests.clusters import free_ports, rabbitmq_vhost
from tests.helpers import one_connection_manager, unique

pytestmark = pytest.mark.usefixtures("clean_env", "no_current_manager")
SECRET = "S3cretPw"


@task(name="tests.scale_rabbitmq.job")
async def job(n: int) -> int:
    return n


def rabbit_manager(url: str, queue: str, **options: Any) -> QueueManager:
    return one_connection_manager("rabbitmq", url, queue, **options)


async def test_a_url_list_whose_first_node_is_down_connects_through_the_next(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="queue_manager")
    closed = free_ports(1)[0]
    with rabbitmq_vhost() as vhost:
        url = f"amqp://guest:{SECRET}@127.0.0.1:{closed}/{vhost.url.rsplit('/', 1)[1]},{vhost.url}"
        queue = unique("q")
        manager = rabbit_manager(url, queue)
        conn = manager.connection("rabbitmq")
        try:
            await conn.ping()
            await conn.dispatch(job, 1)
            assert await conn.size(queue) == 1
            assert vhost.queues()[queue]["type"] == "quorum"
        finally:
            await manager.shutdown()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"127.0.0.1:{closed}" in logged and "connected through amqp://guest:***@127.0.0.1:5672/" in logged, logged
    assert SECRET not in logged and SECRET not in repr(conn)


async def test_a_url_list_none_answering_names_each_node_without_the_password() -> None:
    ports = free_ports(2)
    url = ",".join(f"amqp://guest:{SECRET}@127.0.0.1:{port}/" for port in ports)
    manager = rabbit_manager(url, unique("q"), connect_timeout=2)
    for attempt in (manager.connection("rabbitmq").ping, manager.connection("rabbitmq").startup):
        with pytest.raises(BrokerUnreachableError) as caught:
            await attempt()
        message = str(caught.value)
        assert all(f"127.0.0.1:{port}" in message for port in ports), message
        assert SECRET not in message and "guest:***@" in message, message
    await manager.shutdown()
