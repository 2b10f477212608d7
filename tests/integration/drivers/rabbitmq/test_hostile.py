"""RabbitMQ against hostile dispatches: a bad one is refused before anything is published and never fails the
good ones sent with it; delay queues are a bounded set reused by every job, and no job runs early."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from taskiq import AckableMessage
from taskiq.exceptions import SendTaskError
from taskiq.utils import maybe_awaitable

from queue_manager import Connection, QueueConfigurationError, QueueManager, task
from queue_manager.settings import load_settings
from tests.helpers import cleanup_queue, unique

pytestmark = pytest.mark.usefixtures("clean_env")
AMQP = "amqp://guest:guest@127.0.0.1:5672/"


@task(name="tests.hostile.rabbitmq.numbered")
async def numbered(number: int) -> int:
    return number


def list_queues() -> list[str]:
    done = subprocess.run(["rabbitmqctl", "list_queues", "-q", "name"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture
async def rabbitmq(queue_name: str) -> AsyncIterator[Callable[..., Connection]]:
    """A connection on an exchange of this test's own, so its delay queues are its own too."""
    exchange = unique("x")
    made: list[QueueManager] = []

    def make(worker: bool = False, **options: Any) -> Connection:
        fields = {"queue": queue_name, "options": {"exchange": exchange, **options}}
        manager = QueueManager(load_settings({"driver": "rabbitmq", "connections": {"rabbitmq": fields}}))
        made.append(manager)
        connection = manager.connection()
        connection.broker.is_worker_process = worker
        return connection

    yield make
    for manager in made:
        await manager.shutdown()
    await cleanup_queue("rabbitmq", queue_name)
    import aio_pika

    leftovers = [name for name in await asyncio.to_thread(list_queues) if name.startswith(f"{exchange}.")]
    async with await aio_pika.connect(AMQP) as amqp:
        channel = await amqp.channel()
        for name in leftovers:
            await channel.queue_delete(name)
        for name in (exchange, f"{exchange}.delay"):
            await channel.exchange_delete(name)


async def bad_dispatches(connection: Connection, clashing: str) -> list[BaseException | None]:
    """Dispatches RabbitMQ would refuse (closing the channel they share with everything else), sent together."""
    attempts: list[Callable[[], Awaitable[Any]]] = [
        lambda: connection.dispatch(numbered, -1).on_queue("amq.jobs"),
        lambda: connection.dispatch(numbered, -2).delay(float("inf")),
        lambda: numbered.kicker().with_broker(connection.broker).with_labels(delay=1e12).kiq(-3),
        lambda: connection.dispatch(numbered, -4).with_labels(priority=1000),
        lambda: connection.dispatch(numbered, -5).on_queue(clashing),  # exists as a classic queue
    ]

    async def attempt(send: Callable[[], Awaitable[Any]]) -> BaseException | None:
        try:
            await send()
        except Exception as error:
            return error
        return None

    return list(await asyncio.gather(*(attempt(send) for send in attempts)))


async def test_bad_dispatches_never_fail_the_good_ones_sent_at_the_same_time(
    rabbitmq: Callable[..., Connection],
) -> None:
    import aio_pika

    connection = rabbitmq()
    clashing = unique("clash")
    async with await aio_pika.connect(AMQP) as amqp:
        channel = await amqp.channel()
        await channel.declare_queue(clashing, durable=True, arguments={"x-queue-type": "classic"})
    try:
        await connection.startup()
        for _ in range(3):  # three rounds: the channel must stay usable after each
            good = [connection.dispatch(numbered, n) for n in range(100)]
            *outcomes, bad = await asyncio.gather(*good, bad_dispatches(connection, clashing), return_exceptions=True)
            failed_good = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
            assert failed_good == [], f"{len(failed_good)} good dispatches failed: {failed_good[:3]}"
            assert isinstance(bad, list)
            assert all(isinstance(outcome, QueueConfigurationError | SendTaskError) for outcome in bad), bad
        assert await connection.size() == 300
        texts = [str(outcome.__cause__ or outcome) for outcome in bad]  # type: ignore[union-attr]
        assert "amq." in texts[0] and "reserves" in texts[0], texts[0]
        assert "366 days" in texts[1] and "366 days" in texts[2]
        assert "priority" in texts[3]
        assert clashing in texts[4] and "already exists" in texts[4]
    finally:
        await cleanup_queue("rabbitmq", clashing)


async def test_a_queue_named_amq_is_refused_before_publishing(rabbitmq: Callable[..., Connection]) -> None:
    connection = rabbitmq()
    with pytest.raises((QueueConfigurationError, SendTaskError)) as caught:
        await connection.dispatch(numbered, 1).on_queue("amq.gen-jobs")
    error = caught.value.__cause__ or caught.value
    assert isinstance(error, QueueConfigurationError) and "amq." in str(error)
    assert await connection.dispatch(numbered, 2), "the connection still works"


async def test_delay_queues_are_a_bounded_set_reused_whatever_the_delays(
    rabbitmq: Callable[..., Connection],
) -> None:
    connection = rabbitmq()
    await connection.startup()
    exchange = connection.broker.exchange_name  # type: ignore[attr-defined]
    # 400 different delays, one a second (and fractions) up to ~2 hours, plus some of days and weeks
    delays = [1.5 + n * 17.3 for n in range(400)] + [86_400 * d for d in (1, 2, 3, 10, 40, 45, 60, 200, 365)]
    await asyncio.gather(*(connection.dispatch(numbered, n).delay(d) for n, d in enumerate(delays)))
    delay_queues = [name for name in await asyncio.to_thread(list_queues) if name.startswith(f"{exchange}.delay.")]
    assert 0 < len(delay_queues) <= 48, f"{len(delay_queues)} delay queues: {sorted(delay_queues)[:10]}..."


async def serve(connection: Connection, wanted: int, within: float = 90) -> list[tuple[float, int]]:
    """Run the worker side until ``wanted`` jobs came: (when it arrived, its number)."""
    broker: Any = connection.broker
    await connection.startup()
    arrived: list[tuple[float, int]] = []
    deliveries = broker.listen()

    async def take() -> None:
        async for delivery in deliveries:
            data = delivery.data if isinstance(delivery, AckableMessage) else delivery
            arrived.append((time.time(), json.loads(data)["args"][0]))
            if isinstance(delivery, AckableMessage):
                await maybe_awaitable(delivery.ack())
            if len(arrived) >= wanted:
                return

    try:
        await asyncio.wait_for(take(), within)
    finally:
        await deliveries.aclose()
    return arrived


async def test_no_delayed_job_runs_early_and_due_order_is_kept(rabbitmq: Callable[..., Connection]) -> None:
    sender = rabbitmq()
    delays = {1: 8.0, 2: 2.5, 3: 4.2, 4: 1.2, 5: 6.5}  # 6.5 s: 6 s in one delay queue, then 1 s in another
    due: dict[int, float] = {}
    for number, delay in delays.items():
        pending = sender.dispatch(numbered, number).delay(delay)
        due[number] = float(pending.labels["eta"])  # when it is due, however long the dispatches take
        await pending
    arrived = await serve(rabbitmq(worker=True), len(delays))
    for at, number in arrived:
        assert at >= due[number] - 0.05, f"job {number} ran {due[number] - at:.2f}s early"
    # Due order, for jobs due well apart: a job may run up to a second late (the last delay queue it waits in
    # rounds up), and a busy machine may add to that; jobs due closer together may swap.
    at = {number: when for when, number in arrived}
    for a in delays:
        for b in delays:
            if due[a] + 3.0 < due[b]:
                assert at[a] <= at[b], f"job {b} (due {due[b] - due[a]:.1f}s after job {a}) ran before it"


async def test_a_job_that_arrives_before_its_eta_is_held_back_until_due(rabbitmq: Callable[..., Connection]) -> None:
    """How a delay longer than RabbitMQ's TTL limit (about 49.7 days) works: the job goes to the longest delay
    queue, arrives early, and the worker sends it back to wait for the rest. Played here in seconds: a job
    published straight to its queue with an eta 3 s ahead."""
    import aio_pika

    worker = rabbitmq(worker=True)
    await worker.startup()
    due = time.time() + 3
    body = json.dumps(
        {
            "task_id": unique("id"),
            "task_name": numbered.task_name,
            "labels": {"eta": str(due)},
            "labels_types": {},
            "args": [9],
            "kwargs": {},
        }
    ).encode()
    async with await aio_pika.connect(AMQP) as amqp:
        channel = await amqp.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(body, headers={"eta": str(due)}), routing_key=worker.queue
        )
    [(at, number)] = await serve(worker, 1)
    assert number == 9 and at >= due - 0.05, f"ran {due - at:.2f}s early"


async def test_a_delay_longer_than_rabbitmqs_ttl_limit_is_accepted(rabbitmq: Callable[..., Connection]) -> None:
    connection = rabbitmq()
    handle = await connection.dispatch(numbered, 1).delay(86_400 * 120)
    assert handle.task_id


async def test_a_queue_deleted_under_a_running_app_is_declared_again_and_the_job_kept(
    rabbitmq: Callable[..., Connection],
) -> None:
    """taskiq-aio-pika's channel ignored returned messages: a job for a deleted queue vanished."""
    import aio_pika

    connection = rabbitmq()
    await connection.dispatch(numbered, 1)
    async with await aio_pika.connect(AMQP) as amqp:
        channel = await amqp.channel()
        await channel.queue_delete(connection.queue)
    await connection.dispatch(numbered, 2)  # returned unroutable, the queue declared again, sent once more
    await connection.dispatch(numbered, 3)
    assert await connection.size() == 2, "neither job after the deletion was lost"
