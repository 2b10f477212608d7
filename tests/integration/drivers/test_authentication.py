"""Wrong credentials are an authentication error, not a server that is down (issue 23 item 4).

RabbitMQ's ACCESS_REFUSED and a wrong Redis user or password said "Cannot reach the server ... check that the
server is running", NATS's "Authorization Violation" was a traceback, and a worker retried forever. Now every
server driver raises ``BrokerAuthenticationError`` (a ``BrokerUnreachableError``, so existing ``except`` clauses
still catch it) naming the user and host:port, never the password: at dispatch, at ``conn.ping()`` and in the
consume loop, which does not retry it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from taskiq.exceptions import SendTaskError

from queue_manager import BrokerAuthenticationError, BrokerUnreachableError, task
from tests.helpers import SERVER_DRIVERS, one_connection_manager, unique
from tests.integration.drivers.secured import ACL_PASSWORD, WRONG, redis_with_password, rotate_acl_password, secured

pytestmark = pytest.mark.usefixtures("clean_env", "no_current_manager")


@task(name="tests.authentication.job")
async def job(n: int) -> int:
    return n


def check_message(error: BaseException, user: str, where: str) -> None:
    message = str(error)
    assert f"refused the credentials of user '{user}'" in message, message
    assert where in message, message
    assert "server is running" not in message, message
    assert WRONG not in message and WRONG not in repr(error), message


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_ping_and_dispatch_say_the_credentials_were_refused(driver: str, tmp_path: Path) -> None:
    with secured(driver, tmp_path) as server:
        manager = one_connection_manager(driver, server.wrong, unique("q"))
        conn = manager.connection()
        try:
            with pytest.raises(BrokerAuthenticationError) as pinged:
                await conn.ping()
            check_message(pinged.value, server.user, server.where)
            with pytest.raises(BrokerAuthenticationError) as dispatched:
                await conn.dispatch(job, 1)
            check_message(dispatched.value, server.user, server.where)
            assert isinstance(dispatched.value, BrokerUnreachableError), "existing except clauses still catch it"
            assert isinstance(dispatched.value, SendTaskError), "as every failed send, it is TaskIQ's SendTaskError"
        finally:
            await manager.shutdown()


@pytest.mark.parametrize(
    ("url", "who"),
    [
        (":{wrong}@{where}", "refused the password"),
        ("{where}", "requires credentials"),
    ],
)
async def test_redis_without_a_user_name(url: str, who: str, tmp_path: Path) -> None:
    with redis_with_password(tmp_path) as redis:
        where = f"127.0.0.1:{redis.port}"
        manager = one_connection_manager("redis", "redis://" + url.format(wrong=WRONG, where=where), unique("q"))
        try:
            with pytest.raises(BrokerAuthenticationError) as pinged:
                await manager.connection().ping()
            assert who in str(pinged.value) and where in str(pinged.value), str(pinged.value)
            assert WRONG not in str(pinged.value)
        finally:
            await manager.shutdown()


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
async def test_the_consume_loop_stops_when_the_server_refuses_the_credentials(driver: str, tmp_path: Path) -> None:
    """The password changes under a running worker: its reconnect is refused, and the loop raises instead of
    retrying forever."""
    with secured(driver, tmp_path) as server:
        manager = one_connection_manager(driver, server.right, unique("q"))
        broker = manager.connection().broker
        broker.is_worker_process = True
        try:
            await manager.connection().startup()
            await rotate_acl_password(server.where, f"{WRONG}-new")
            listening = broker.listen()
            with pytest.raises(BrokerAuthenticationError) as refused:
                await asyncio.wait_for(anext(listening), timeout=60)
            check_message(refused.value, server.user, server.where)
            assert ACL_PASSWORD not in str(refused.value)
        finally:
            await manager.shutdown()
