"""Our brokers behave like the TaskIQ classes they extend: middleware hooks, labels, delay, priority, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from taskiq import TaskiqMessage, TaskiqMiddleware
from taskiq.exceptions import SendTaskError, UnknownTaskError
from taskiq.kicker import AsyncKicker

from queue_manager import BulkDispatchError, QueueManager, task
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, cleanup_queue, queued, unique

pytestmark = pytest.mark.usefixtures("clean_env")


@task
async def numbered(number: int) -> int:
    return number


class CountingMiddleware(TaskiqMiddleware):
    """Counts every send hook, the way a tracing middleware opens and closes a span per job."""

    def __init__(self, refuse_odd: bool = False) -> None:
        super().__init__()
        self.pre: list[str] = []
        self.post: list[str] = []
        self.refuse_odd = refuse_odd

    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        if self.refuse_odd and message.args[0] % 2:
            raise ValueError(f"refusing job {message.args[0]}")
        self.pre.append(message.task_id)
        return message

    async def post_send(self, message: TaskiqMessage) -> None:
        self.post.append(message.task_id)


@pytest.fixture
async def manager_on(queue_name: str) -> AsyncIterator[Callable[..., QueueManager]]:
    made: list[tuple[QueueManager, str]] = []

    def make(driver: str, **options: Any) -> QueueManager:
        connection: dict[str, Any] = {"queue": queue_name}
        if options:
            connection["options"] = options
        manager = QueueManager(load_settings({"driver": driver, "connections": {driver: connection}}))
        made.append((manager, driver))
        return manager

    yield make
    for manager, driver in made:
        await manager.shutdown()
        if driver != "memory":
            await cleanup_queue(driver, queue_name)


@pytest.mark.parametrize("driver", [*SERVER_DRIVERS, "memory"])
async def test_bulk_runs_each_middleware_hook_once_per_job(
    driver: str, queue_name: str, manager_on: Callable[..., QueueManager]
) -> None:
    connection = manager_on(driver).connection()
    middleware = CountingMiddleware()
    connection.broker.add_middlewares(middleware)
    handles = await connection.bulk(numbered, [(n,) for n in range(1500)])  # two driver batches
    ids = [h.task_id for h in handles]
    assert len(set(ids)) == 1500
    assert sorted(middleware.pre) == sorted(ids) and sorted(middleware.post) == sorted(ids)
    if driver != "memory":
        assert await queued(driver, queue_name) == 1500


@pytest.mark.parametrize("driver", [*SERVER_DRIVERS, "memory"])
async def test_a_bulk_that_fails_part_way_says_which_jobs_were_sent(
    driver: str, queue_name: str, manager_on: Callable[..., QueueManager]
) -> None:
    connection = manager_on(driver).connection()
    connection.broker.add_middlewares(CountingMiddleware(refuse_odd=True))
    with pytest.raises(BulkDispatchError) as caught:
        await connection.bulk(numbered, [(n,) for n in range(10)])
    error = caught.value
    assert isinstance(error, SendTaskError), "catchable like a single dispatch's failure"
    assert [index for index, _ in error.failed] == [1, 3, 5, 7, 9]
    assert all("refusing job" in str(exc) for _, exc in error.failed)
    assert len(error.sent) == 5 and "5 of 10 jobs were not sent" in str(error)
    if driver != "memory":
        assert await queued(driver, queue_name) == 5, "the jobs reported as sent are in the queue"


async def test_the_memory_drivers_unknown_task_error_carries_the_task_name(
    manager_on: Callable[..., QueueManager],
) -> None:
    broker = manager_on("memory").connection().broker
    with pytest.raises(SendTaskError) as caught:
        await AsyncKicker("app.never_imported:job", broker, {}).kiq()
    cause = caught.value.__cause__
    assert isinstance(cause, UnknownTaskError)
    assert cause.task_name == "app.never_imported:job"
    assert "import" in str(cause)


async def test_rabbitmq_sends_labels_as_headers_and_holds_back_a_taskiq_delay(
    queue_name: str, manager_on: Callable[..., QueueManager]
) -> None:
    import aio_pika

    exchange = unique("x")  # its delay queues are this test's own
    connection = manager_on("rabbitmq", exchange=exchange).connection()
    await connection.dispatch(numbered, 1).with_labels(tenant="acme")
    await connection.dispatch(numbered, 2).with_labels(delay=30)
    async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
        channel = await amqp.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        message = await queue.get(no_ack=True, fail=True)
        assert message is not None
        headers = message.headers
        assert headers["tenant"] == "acme" and headers["task_name"] == numbered.task_name
        assert json.loads(message.body)["args"] == [1]
        assert await queue.get(no_ack=True, fail=False) is None, "the job with delay=30 is not ready yet"
        # it waits in the exchange's 30 s delay queue (shared by every queue of the exchange), due at an absolute time
        delayed = await channel.declare_queue(f"{exchange}.delay.30s", passive=True)
        assert delayed.declaration_result.message_count == 1
        waiting = await delayed.get(no_ack=True, fail=True)
        assert waiting is not None and waiting.routing_key == queue_name and "eta" in (waiting.headers or {})
        for name in (delayed.name, f"{exchange}.dead_letter"):
            await channel.queue_delete(name)
        for name in (f"{exchange}.delay", exchange):
            await channel.exchange_delete(name)


async def test_rabbitmq_priority_label_orders_a_priority_queue(
    queue_name: str, manager_on: Callable[..., QueueManager]
) -> None:
    import aio_pika

    connection = manager_on("rabbitmq", queue_type="classic", max_priority=10).connection()
    for number, priority in [(1, 1), (2, 1), (3, 9)]:
        await connection.dispatch(numbered, number).with_labels(priority=priority)
    async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
        channel = await amqp.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        first = await queue.get(no_ack=True, fail=True)
        assert first is not None and json.loads(first.body)["args"] == [3], "the priority 9 job comes first"


def test_rabbitmq_max_priority_needs_classic_queues(clean_env: pytest.MonkeyPatch) -> None:
    from queue_manager import QueueConfigurationError

    with pytest.raises(QueueConfigurationError, match="max_priority needs queue_type 'classic'"):
        QueueManager(load_settings({"connections": {"rabbitmq": {"options": {"max_priority": 5}}}}))


async def test_nats_sends_labels_as_headers_and_an_absolute_eta_for_a_taskiq_delay(
    queue_name: str, manager_on: Callable[..., QueueManager]
) -> None:
    import time

    import nats

    connection = manager_on("nats").connection()
    sent_at = time.time()
    await connection.dispatch(numbered, 1).with_labels(tenant="acme", delay=30)
    sent_by = time.time()
    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        js = client.jetstream()
        # The connection made the queue's durable consumer when it started; read through it, as a worker does.
        subscription = await js.pull_subscribe(f"queues.{queue_name}", durable=f"workers_{queue_name}", stream="QUEUES")
        [message] = await subscription.fetch(1, timeout=5)
        headers = message.headers or {}
        assert headers["tenant"] == "acme" and headers["delay"] == "30"
        assert sent_at + 30 - 0.001 <= float(headers["eta"]) <= sent_by + 30 + 0.001, "30 s after it was sent"
        await message.ack()
    finally:
        await client.close()


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_a_delivered_message_is_acknowledged_by_awaiting_its_ack(
    driver: str, queue_name: str, manager_on: Callable[..., QueueManager]
) -> None:
    """Code written against TaskIQ does ``await message.ack()`` (taskiq-redis's acknowledgements are coroutines):
    every broker of ours hands out an ack that is awaitable, and awaiting it finishes the job for good."""
    import inspect

    connection = manager_on(driver).connection()
    broker = connection.broker
    broker.is_worker_process = True
    await connection.startup()
    await connection.dispatch(numbered, 7)
    message = await anext(broker.listen())
    acknowledged = message.ack()  # type: ignore[union-attr]
    assert inspect.isawaitable(acknowledged), f"{driver}: ack() returned {acknowledged!r}"
    await acknowledged
    await connection.shutdown()  # writes what a batch still holds; a job not acknowledged would be given back
    fresh = manager_on(driver).connection()
    counts = await fresh.counts()
    assert (counts.waiting, counts.reserved or 0) == (0, 0), f"{driver}: {counts}"
