"""NATS under faults: an idle worker survives every timeout nats-py raises, tls:// means TLS, and a dispatch
during an outage either waits for the server or fails without the job turning up later."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from taskiq import AckableMessage
from taskiq.exceptions import SendTaskError
from taskiq.utils import maybe_awaitable

from queue_manager import BrokerUnreachableError, Connection, QueueConfigurationError, QueueManager, task
from queue_manager.settings import load_settings
from tests.helpers import cleanup_queue
from tests.servers import private_nats, tcp_proxy

pytestmark = pytest.mark.usefixtures("clean_env")


@task(name="tests.hostile.nats.numbered")
async def numbered(number: int) -> int:
    return number


@pytest.fixture
async def nats_connection(queue_name: str) -> AsyncIterator[Callable[..., Connection]]:
    made: list[QueueManager] = []

    def make(url: str = "nats://127.0.0.1:4222", worker: bool = False, **options: Any) -> Connection:
        fields: dict[str, Any] = {"url": url, "queue": queue_name, "options": options}
        manager = QueueManager(load_settings({"driver": "nats", "connections": {"nats": fields}}))
        made.append(manager)
        connection = manager.connection()
        connection.broker.is_worker_process = worker
        return connection

    yield make
    for manager in made:
        await asyncio.wait_for(manager.shutdown(), 30)
    await cleanup_queue("nats", queue_name)


async def until(condition: Callable[[], bool], within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def unreachable_cause(error: BaseException) -> BrokerUnreachableError:
    cause = error.__cause__ if isinstance(error, SendTaskError) else error
    assert isinstance(cause, BrokerUnreachableError), repr(error)
    return cause


async def test_an_idle_worker_survives_fetch_raising_the_builtin_timeout_error(
    nats_connection: Callable[..., Connection],
) -> None:
    """nats-py's fetch raises the builtin TimeoutError (not its own) when its deadline passed while the
    server's "no messages" answer was on its way: here the event loop stalls right after the pull request,
    as on a busy machine, so the real server's answer comes back after the deadline."""
    connection = nats_connection(worker=True, fetch_timeout=0.5)
    await connection.startup()
    broker: Any = connection.broker
    broker.in_flight.capacity = 10  # pulls of several jobs: nats-py's batch fetch is the one raising it
    client = broker.client
    real_publish = client.publish
    stalls: list[float] = []
    raised: list[type[BaseException]] = []

    async def stall() -> None:
        time.sleep(1.0)  # noqa: ASYNC251 - blocks the loop on purpose, as a CPU-bound job or a busy host does

    async def publish(subject: str, *args: Any, **kwargs: Any) -> None:
        await real_publish(subject, *args, **kwargs)
        if subject.startswith("$JS.API.CONSUMER.MSG.NEXT") and len(stalls) < 3:
            stalls.append(time.monotonic())
            asyncio.get_running_loop().create_task(stall())

    client.publish = publish
    for subscription in broker.subscriptions:  # watch what fetch raises, unchanged
        real_fetch = subscription.fetch

        async def fetch(*args: Any, _real: Any = real_fetch, **kwargs: Any) -> Any:
            try:
                return await _real(*args, **kwargs)
            except BaseException as error:
                raised.append(type(error))
                raise

        subscription.fetch = fetch

    deliveries = broker.listen()
    taking = asyncio.ensure_future(anext(deliveries))
    deadline = time.monotonic() + 60
    while len(stalls) < 3 and not taking.done() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    assert TimeoutError in raised, f"the builtin TimeoutError was not reproduced: {raised}"
    client.publish = real_publish
    await connection.dispatch(numbered, 1)
    delivery = await asyncio.wait_for(taking, 60)
    assert isinstance(delivery, AckableMessage) and b'"args":[1]' in delivery.data.replace(b" ", b"")
    await maybe_awaitable(delivery.ack())
    await deliveries.aclose()


async def test_a_tls_url_to_a_server_without_tls_is_refused_before_any_credential_is_sent(
    nats_connection: Callable[..., Connection],
) -> None:
    with tcp_proxy(4222) as proxy:
        connection = nats_connection(url=f"tls://queue-user:s3cr3t-pw@127.0.0.1:{proxy.port}", connect_timeout=3)
        for attempt in (connection.ping, connection.startup):
            with pytest.raises((BrokerUnreachableError, QueueConfigurationError)) as caught:
                await asyncio.wait_for(attempt(), 60)
            message = str(caught.value)
            assert "TLS" in message and "tls://" in message, message
            assert "s3cr3t-pw" not in message
        assert not connection.started
        assert b"s3cr3t-pw" not in bytes(proxy.sent), "the password went over the wire in plaintext"
        assert b"CONNECT" not in bytes(proxy.sent)


async def queue_size(connection: Connection) -> int:
    return await asyncio.wait_for(connection.size(), 30)


async def send_when_back(connection: Connection, number: int, within: float = 90) -> None:
    """The first dispatch that goes through once the server is back (each waits up to send_timeout)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await connection.dispatch(numbered, number)
            return
        except (SendTaskError, BrokerUnreachableError):
            if time.monotonic() > deadline:
                raise


@pytest.mark.fault  # stops a private nats-server
async def test_a_dispatch_that_fails_during_an_outage_is_not_delivered_after_the_reconnect(
    tmp_path: Path, nats_connection: Callable[..., Connection]
) -> None:
    with private_nats(tmp_path) as server:
        connection = nats_connection(url=f"nats://127.0.0.1:{server.port}", send_timeout=2)
        await connection.dispatch(numbered, 1)
        server.stop()
        client: Any = connection.broker.client  # type: ignore[attr-defined]
        assert await until(lambda: not client.is_connected), "the client noticed the outage"
        with pytest.raises((SendTaskError, BrokerUnreachableError)) as caught:
            await asyncio.wait_for(connection.dispatch(numbered, 2), 60)
        error = unreachable_cause(caught.value)
        assert "not sent" in str(error), str(error)
        server.start()
        await send_when_back(connection, 3)
        assert await queue_size(connection) == 2
        deadline = time.monotonic() + 5  # give a buffered publish every chance to turn up
        while time.monotonic() < deadline:
            assert await queue_size(connection) == 2, "the job reported as not sent was delivered after all"
            await asyncio.sleep(0.5)


@pytest.mark.fault  # stops a private nats-server
async def test_a_dispatch_during_a_short_outage_waits_for_the_server_and_is_sent_once(
    tmp_path: Path, nats_connection: Callable[..., Connection]
) -> None:
    with private_nats(tmp_path) as server:
        connection = nats_connection(url=f"nats://127.0.0.1:{server.port}", send_timeout=30)
        await connection.dispatch(numbered, 1)
        server.stop()
        client: Any = connection.broker.client  # type: ignore[attr-defined]
        assert await until(lambda: not client.is_connected), "the client noticed the outage"
        sending = asyncio.ensure_future(connection.dispatch(numbered, 2))
        await asyncio.sleep(0.2)  # let it start: it is in flight while the server is down
        await asyncio.to_thread(server.start)
        handle = await asyncio.wait_for(sending, 60)
        assert handle.task_id
        assert await queue_size(connection) == 2, "sent exactly once"
