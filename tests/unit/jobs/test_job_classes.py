"""Job classes on the memory driver (in-process, no server): payload, dispatch, release, fail, delete, tries,
failed(), unique jobs, bulk and Queue.push. The same on real workers is in tests/e2e/jobs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from queue_manager import Job, JobPayloadError, QueueManager, current_job, dispatch, task, use_manager
from queue_manager.settings import load_settings

RAN: list[tuple[str, Any]] = []


class User(BaseModel):
    id: int
    email: str


@dataclasses.dataclass
class Address:
    city: str


class SendWelcomeEmail(Job):
    queue = "mail"
    tries = 3

    def __init__(self, user: User, address: Address, when: datetime) -> None:
        self.user = user
        self.address = address
        self.when = when

    async def handle(self) -> str:
        RAN.append(("welcome", (type(self.user), type(self.address), type(self.when), self.attempts())))
        return f"welcomed {self.user.email} in {self.address.city}"


class ReleasesTwice(Job):
    tries = 5

    def __init__(self, n: int) -> None:
        self.n = n

    async def handle(self) -> str:
        RAN.append(("release", self.attempts()))
        if self.attempts() < 3:
            self.release(0)
        return f"done after {self.attempts()}"


class AlwaysReleases(Job):
    tries = 2

    async def handle(self) -> None:
        RAN.append(("always", self.attempts()))
        self.release(0)


class FailsItself(Job):
    tries = 5

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def handle(self) -> None:  # a sync handle runs in a thread
        RAN.append(("fails", self.attempts()))
        self.fail(self.reason)

    async def failed(self, error: BaseException) -> None:
        RAN.append(("failed()", (self.reason, str(error))))


class DeletesItself(Job):
    async def handle(self) -> str:
        self.delete()
        return "ignored"


class Raises(Job):
    tries = 4
    max_exceptions = 2

    async def handle(self) -> None:
        RAN.append(("raises", self.attempts()))
        raise ValueError("broken")


class Unique(Job):
    unique_for = 60

    def __init__(self, key: str) -> None:
        self.key = key

    def unique_id(self) -> str:
        return self.key

    async def handle(self) -> str:
        RAN.append(("unique", self.key))
        return self.key


@task(name="tests.jobs.counted", retries=2)
async def counted(n: int) -> int:
    job = current_job()
    if job.attempts() < 2:
        job.release(0)
    RAN.append(("counted", job.attempts()))
    return n


@pytest.fixture
async def manager(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[QueueManager]:
    RAN.clear()
    queue = QueueManager(load_settings({"driver": "memory"}), base_path=tmp_path)
    use_manager(queue)
    with queue.failed.isolated():
        yield queue
    await queue.shutdown()
    use_manager(None)


async def test_a_job_class_is_dispatched_with_its_state_and_runs_with_it_restored(manager: QueueManager) -> None:
    when = datetime(2026, 12, 5, 9, 30)
    pending = SendWelcomeEmail.dispatch(User(id=1, email="ada@example.com"), Address("London"), when)
    assert pending.kwargs == {
        "user": {"id": 1, "email": "ada@example.com"},
        "address": {"city": "London"},
        "when": "2026-12-05T09:30:00",
    }
    handle = await pending
    result = await handle.wait_result(timeout=5)
    assert result.return_value == "welcomed ada@example.com in London"
    assert [("welcome", (User, Address, datetime, 1))] == RAN, "models, dataclasses and datetimes come back typed"
    assert SendWelcomeEmail.task.task_name == f"{__name__}:SendWelcomeEmail"
    assert SendWelcomeEmail.task.labels["queue_name"] == "mail" and SendWelcomeEmail.task.labels["retries"] == 2


async def test_dispatch_of_an_instance_and_queue_push_send_it_too(manager: QueueManager) -> None:
    user, address, when = User(id=2, email="b@example.com"), Address("Paris"), datetime(2026, 1, 1)
    first = await dispatch(SendWelcomeEmail(user, address, when))
    [second] = await manager.push(SendWelcomeEmail(user, address, when))
    for handle in (first, second):
        assert (await handle.wait_result(timeout=5)).return_value == "welcomed b@example.com in Paris"


async def test_an_attribute_that_cannot_travel_is_refused_at_dispatch_naming_it(manager: QueueManager) -> None:
    class Holds(Job):
        def __init__(self) -> None:
            self.lock = asyncio.Lock()

        async def handle(self) -> None: ...

    with pytest.raises(JobPayloadError, match=r"Holds.lock is a Lock, which a job cannot carry"):
        Holds.dispatch()


async def test_release_puts_it_back_and_counts_an_attempt(manager: QueueManager) -> None:
    handle = await ReleasesTwice.dispatch(1)
    result = await handle.wait_result(timeout=10)
    assert result.return_value == "done after 3"
    assert RAN == [("release", 1), ("release", 2), ("release", 3)]


async def test_a_job_released_after_its_last_try_fails_for_good(manager: QueueManager) -> None:
    handle = await AlwaysReleases.dispatch()
    result = await handle.wait_result(timeout=10)
    assert result.is_err and str(result.error).endswith("released after its last attempt (2 of 2)")
    [failed] = await manager.failed.all()
    assert failed.exception == "MaxAttemptsExceededError"


async def test_fail_stops_the_retries_and_runs_failed_once(manager: QueueManager) -> None:
    handle = await FailsItself.dispatch("the card was declined")
    result = await handle.wait_result(timeout=10)
    assert result.is_err and str(result.error) == "the card was declined"
    assert RAN == [("fails", 1), ("failed()", ("the card was declined", "the card was declined"))]
    [failed] = await manager.failed.all()
    assert failed.task_name.endswith(":FailsItself") and failed.kwargs == {"reason": "the card was declined"}


async def test_delete_ends_it_with_no_result(manager: QueueManager) -> None:
    result = await (await DeletesItself.dispatch()).wait_result(timeout=5)
    assert not result.is_err and result.return_value is None


async def test_max_exceptions_ends_it_before_its_tries(manager: QueueManager) -> None:
    result = await (await Raises.dispatch()).wait_result(timeout=10)
    assert result.is_err and RAN == [("raises", 1), ("raises", 2)]


async def test_a_unique_job_already_queued_queues_nothing_and_frees_its_lock_when_done(manager: QueueManager) -> None:
    broker: Any = manager.connection().broker
    state = manager.job_state_of("memory")
    taken = await state.lock(f"unique:{Unique.task.task_name}:a", "someone-else", 60)
    assert taken
    assert await Unique.dispatch("a") is None, "a second one while the first holds the lock: nothing queued"
    await state.unlock(f"unique:{Unique.task.task_name}:a", "someone-else")
    handle = await Unique.dispatch("a")
    assert (await handle.wait_result(timeout=5)).return_value == "a"
    assert await state.lock(f"unique:{Unique.task.task_name}:a", "next", 60), "freed when the job succeeded"
    assert broker is not None


async def test_a_task_function_releases_itself_through_current_job(manager: QueueManager) -> None:
    result = await (await counted.kiq(5)).wait_result(timeout=10)
    assert result.return_value == 5 and RAN == [("counted", 1), ("counted", 2)]


async def test_bulk_takes_job_instances(manager: QueueManager) -> None:
    when = datetime(2026, 1, 1)
    jobs = [SendWelcomeEmail(User(id=n, email=f"{n}@example.com"), Address("Rome"), when) for n in range(3)]
    handles = await manager.connection().bulk(jobs)
    results = [await handle.wait_result(timeout=5) for handle in handles]
    assert [r.return_value for r in results] == [f"welcomed {n}@example.com in Rome" for n in range(3)]
