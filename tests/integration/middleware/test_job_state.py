"""Job middleware's state on each real server: locks (one holder among many clients, only the owner frees, a dead
holder's lock expires) and sliding-window limits (exactly the limit among concurrent hits, room again after the
window), then RateLimited, WithoutOverlapping and ThrottlesExceptions over them. A RabbitMQ connection keeps its
job state on the connection its STATE setting names; without one the job fails naming the setting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any

import pytest
from taskiq import TaskiqMessage

from drivers.base.control import ControlState
from queue_manager import QueueConfigurationError, QueueManager
from queue_manager.middleware import Limit, NoJobState, RateLimited, RateLimits, ThrottlesExceptions, WithoutOverlapping
from queue_manager.running.interactions import Interactions
from queue_manager.settings import load_settings
from tests.helpers import unique

pytestmark = pytest.mark.usefixtures("clean_env")
TAG = unique("mwtest")  # in every name this module writes, so its NATS keys are purged at the end

# (the connection jobs run on, where its STATE setting points or None): every server that keeps job state, and
# RabbitMQ keeping it on Redis and on NATS
WHERE = {
    "redis": ("redis", None),
    "redis_stream": ("redis_stream", None),
    "nats": ("nats", None),
    "memory": ("memory", None),
    "rabbitmq-on-redis": ("rabbitmq", "redis"),
    "rabbitmq-on-nats": ("rabbitmq", "nats"),
}


def manager_for(driver: str, state: str | None) -> QueueManager:
    connections: dict[str, Any] = {driver: {"state": state}} if state else {}
    return QueueManager(load_settings({"driver": driver, "connections": connections}))


@pytest.fixture
async def states() -> AsyncIterator[Callable[[str, int], Any]]:
    """``await states(where, n)``: n job states of one connection, each from its own manager (its own client, as
    separate worker processes have)."""
    made: list[QueueManager] = []

    async def make(where: str, count: int) -> list[tuple[QueueManager, ControlState]]:
        driver, state = WHERE[where]
        found = []
        for _ in range(1 if driver == "memory" else count):
            manager = manager_for(driver, state)
            made.append(manager)
            found.append((manager, manager.job_state_of(driver)))
        return found

    yield make
    for manager in made:
        with suppress(Exception):
            await manager.shutdown()
    await purge_nats_keys()


async def purge_nats_keys() -> None:
    await purge_keys(TAG)


async def purge_keys(tag: str) -> None:
    """Redis drops a lock or window when it expires; NATS keeps the key (free) until its bucket's age limit: purge
    the keys whose name holds ``tag``."""
    import nats

    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        js = client.jetstream()
        for bucket in ("QUEUES_control_locks", "QUEUES_control_hits"):
            with suppress(Exception):  # no such bucket, or no keys
                kv = await js.key_value(bucket)
                for key in await kv.keys():
                    if tag in key:
                        await kv.purge(key)
    finally:
        await client.close()


class Delivery:
    """A job as a worker's retry middleware hands it to job middleware: its delivery, its connection's state."""

    def __init__(self, manager: QueueManager, connection: str, task: str = "tests.mw:Job", job_id: str = "") -> None:
        message = TaskiqMessage(task_id=job_id or unique("job-"), task_name=task, labels={}, args=[], kwargs={})
        self._interactions = Interactions(message)
        self._interactions.job_state = lambda: manager.job_state_of(connection)

    @property
    def outcome(self) -> str:
        i = self._interactions
        return "released" if i.released is not None else "deleted" if i.deleted else "failed" if i.failure else "ran"


@pytest.mark.parametrize("where", WHERE)
async def test_one_holder_among_many_clients_only_the_owner_frees_and_it_expires(where: str, states: Any) -> None:
    pairs = await states(where, 3)
    name = unique(f"{TAG}lock-")
    tries = [state.lock(name, f"owner-{i}", 1.5) for i, (_, state) in enumerate(pairs * 4)]
    taken = await asyncio.gather(*tries)
    assert taken.count(True) == 1, taken
    holder = f"owner-{taken.index(True)}"
    other = pairs[-1][1]
    assert await other.lock(name, holder, 1.5), "its owner takes it again (its expiry renewed)"
    assert not await other.unlock(name, "someone-else"), "only the owner frees it"
    assert not await other.lock(name, "someone-else", 1.5)
    assert await pairs[0][1].unlock(name, holder)
    assert await other.lock(name, "someone-else", 1.0), "freed: the next takes it"
    began = time.monotonic()
    while not await pairs[0][1].lock(name, "after-the-holder-died", 5):
        assert time.monotonic() - began < 30, "a lock whose holder never frees it never expired"
        await asyncio.sleep(0.05)
    assert time.monotonic() - began >= 0.5, "it expired, not earlier"
    assert not await other.unlock(name, "someone-else"), "the expired holder cannot free the new one's lock"
    assert await pairs[0][1].unlock(name, "after-the-holder-died")


@pytest.mark.parametrize("where", WHERE)
async def test_concurrent_hits_count_exactly_the_limit_and_the_window_slides(where: str, states: Any) -> None:
    pairs = await states(where, 3)
    name = unique(f"{TAG}limit-")
    callers = [state for _, state in pairs]
    waits = await asyncio.gather(*(callers[i % len(callers)].hit(name, 5, 2.0) for i in range(18)))
    counted = [wait for wait in waits if wait == 0]
    assert len(counted) == 5, waits
    assert all(0 < wait <= 2.0 for wait in waits if wait), waits
    await asyncio.sleep(2.05)  # every hit of the first round was counted before it returned
    waits = await asyncio.gather(*(callers[i % len(callers)].hit(name, 5, 2.0) for i in range(9)))
    assert sum(1 for wait in waits if wait == 0) == 5, f"a window later there is room for 5 again: {waits}"


@pytest.mark.parametrize("where", WHERE)
async def test_without_overlapping_one_of_many_deliveries_runs(where: str, states: Any) -> None:
    pairs = await states(where, 3)
    driver = WHERE[where][0]
    key = unique(f"{TAG}account-")
    running: list[int] = []
    most = 0

    async def work(_job: Any) -> str:
        nonlocal most
        running.append(1)
        most = max(most, len(running))
        await asyncio.sleep(0.3)
        running.pop()
        return "done"

    jobs = [Delivery(manager, driver) for manager, _ in pairs * 3]
    results = await asyncio.gather(*(WithoutOverlapping(key, release_after=2).handle(job, work) for job in jobs))
    assert most == 1 and results.count("done") == 1, [job.outcome for job in jobs]
    assert sorted(job.outcome for job in jobs) == ["ran"] + ["released"] * (len(jobs) - 1)
    assert {job._interactions.released for job in jobs} == {None, 2.0}
    again = Delivery(pairs[0][0], driver)
    assert await WithoutOverlapping(key).handle(again, work) == "done", "freed when the job ended"


@pytest.mark.parametrize("where", WHERE)
async def test_rate_limited_lets_the_limit_through_and_releases_the_rest_until_their_slot(
    where: str, states: Any
) -> None:
    pairs = await states(where, 3)
    driver = WHERE[where][0]
    limits = RateLimits()
    tenant = unique(f"{TAG}tenant-")
    limits.define("api", lambda job: Limit.per_second(3, 2).by(tenant))
    ran: list[str] = []

    async def work(job: Any) -> None:
        ran.append(job._interactions.job_id)

    jobs = [Delivery(manager, driver) for manager, _ in pairs * 4]
    await asyncio.gather(*(RateLimited("api", limits=limits).handle(job, work) for job in jobs))
    assert len(ran) == 3, [job.outcome for job in jobs]
    waits = [job._interactions.released for job in jobs if job.outcome == "released"]
    assert len(waits) == len(jobs) - 3 and all(0.1 <= wait <= 3.0 for wait in waits if wait), waits


@pytest.mark.parametrize("where", WHERE)
async def test_throttles_exceptions_opens_after_max_attempts_and_closes_after_decay(where: str, states: Any) -> None:
    [(manager, _)] = (await states(where, 1))[:1]
    driver = WHERE[where][0]
    task = unique(f"tests.mw:{TAG}Flaky-")
    throttle = ThrottlesExceptions(2, 1.5)

    async def fails(_job: Any) -> None:
        raise ConnectionError("the mail API is down")

    async def works(_job: Any) -> str:
        return "sent"

    for _ in range(2):
        with pytest.raises(ConnectionError):
            await throttle.handle(Delivery(manager, driver, task), fails)
    held = Delivery(manager, driver, task)
    assert await throttle.handle(held, works) is None and held.outcome == "released", "open: released unrun"
    assert held._interactions.released == 1.5
    began = time.monotonic()
    while True:
        job = Delivery(manager, driver, task)
        if await throttle.handle(job, works) == "sent":
            break
        assert time.monotonic() - began < 30, "the circuit never closed"
        await asyncio.sleep(0.1)
    other = Delivery(manager, driver, unique(f"tests.mw:{TAG}Other-"))
    assert await throttle.handle(other, works) == "sent", "another task's circuit is its own"


async def test_a_rabbitmq_connection_without_state_fails_the_job_naming_the_setting() -> None:
    manager = manager_for("rabbitmq", None)
    with pytest.raises(QueueConfigurationError, match="QUEUE_CONNECTIONS__RABBITMQ__STATE"):
        manager.job_state_of("rabbitmq")
    ran: list[int] = []

    async def work(_job: Any) -> None:
        ran.append(1)

    for middleware in (WithoutOverlapping("k"), RateLimited("x", limits=_defined("x")), ThrottlesExceptions()):
        job = Delivery(manager, "rabbitmq")
        assert await middleware.handle(job, work) is None
        assert isinstance(job._interactions.failure, NoJobState), middleware
        assert "QUEUE_CONNECTIONS__RABBITMQ__STATE" in str(job._interactions.failure)
    assert ran == [], "never ran without its lock or limit"
    await manager.shutdown()


def _defined(name: str) -> RateLimits:
    limits = RateLimits()
    limits.define(name, Limit.per_minute(1))
    return limits
