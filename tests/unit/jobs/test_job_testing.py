"""Testing job classes as Laravel users do: the fake records them (and asserts on their attributes), unique jobs
under the fake touch no server, and a job's own code is tested with with_fake_queue_interactions()."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from queue_manager import Job, QueueManager, dispatch, use_manager
from queue_manager.settings import load_settings


class SendWelcomeEmail(Job):
    queue = "mail"

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id

    async def handle(self) -> str:
        return f"welcomed {self.user_id}"


class Unique(Job):
    unique_for = 60

    def __init__(self, key: str) -> None:
        self.key = key

    def unique_id(self) -> str:
        return self.key

    async def handle(self) -> None: ...


class Podcast(Job):
    def __init__(self, ready: bool, broken: bool = False) -> None:
        self.ready, self.broken = ready, broken

    async def handle(self) -> None:
        if self.broken:
            self.fail("the file is corrupt")
        elif not self.ready:
            self.release(30)
        else:
            self.delete()


@pytest.fixture
def manager(clean_env: pytest.MonkeyPatch) -> Iterator[QueueManager]:
    # redis is never contacted: every connection is faked
    queue = QueueManager(load_settings({"driver": "redis"}))
    use_manager(queue)
    yield queue
    use_manager(None)


async def test_the_fake_records_job_classes_and_hands_where_their_attributes(manager: QueueManager) -> None:
    with manager.fake() as fake:
        await SendWelcomeEmail.dispatch(42)
        await dispatch(SendWelcomeEmail(7)).on_connection("nats").delay(60)
        fake.assert_pushed(SendWelcomeEmail, times=2)
        fake.assert_pushed(SendWelcomeEmail, where=lambda job: job.user_id == 42, queue="mail")
        fake.assert_pushed(SendWelcomeEmail, connection="nats", where=lambda job: job.user_id == 7)
        fake.assert_not_pushed(SendWelcomeEmail, where=lambda job: job.user_id == 1)
        [pushed] = fake.pushed(SendWelcomeEmail, connection="redis")
        assert isinstance(pushed.job, SendWelcomeEmail) and pushed.job.user_id == 42
        with pytest.raises(AssertionError, match="SendWelcomeEmail to be pushed at least once"):
            fake.assert_pushed(SendWelcomeEmail, where=lambda job: job.user_id == 99)


async def test_a_unique_job_under_the_fake_is_pushed_once_with_no_server(manager: QueueManager) -> None:
    with manager.fake() as fake:
        first = await Unique.dispatch("a")
        second = await Unique.dispatch("a")
        other = await Unique.dispatch("b")
        assert first is not None and second is None and other is not None
        fake.assert_pushed(Unique, times=2)


def test_a_jobs_own_code_is_tested_with_fake_queue_interactions() -> None:
    import asyncio

    released: Any = Podcast(ready=False).with_fake_queue_interactions()
    asyncio.run(released.handle())
    released.assert_released(30)
    released.assert_not_deleted()
    released.assert_not_failed()

    failed: Any = Podcast(ready=True, broken=True).with_fake_queue_interactions()
    asyncio.run(failed.handle())
    failed.assert_failed()
    failed.assert_failed_with("the file is corrupt")
    failed.assert_not_released()

    done: Any = Podcast(ready=True).with_fake_queue_interactions()
    asyncio.run(done.handle())
    done.assert_deleted()
    with pytest.raises(AssertionError, match="was not released"):
        done.assert_released()
