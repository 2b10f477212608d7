"""manager.fake(): records every dispatch on every connection, asserts with readable failures."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from taskiq.exceptions import ResultIsReadyError

from queue_manager import QueueConfigurationError, dispatch, task
from queue_manager.testing import FakedJobError, QueueFake

RAN: list[str] = []


@task
async def send_email(user_id: int) -> str:
    RAN.append(f"email {user_id}")
    return "sent"


@task(queue="reports")
async def build_report(name: str, *, pages: int = 1) -> str:
    RAN.append(f"report {name}")
    return "built"


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    RAN.clear()
    return make_app(QUEUE_DRIVER="memory")


async def test_fake_records_every_way_of_dispatching_and_runs_nothing(app: Any) -> None:
    manager = app.make("queue.manager")
    broker = app.make("broker")

    @broker.task
    async def seed_task(x: int) -> int:
        RAN.append("seed")
        return x

    with manager.fake() as fake:
        await send_email.kiq(1)
        before = time.time()
        await dispatch(send_email, 2).on_connection("redis").on_queue("emails").delay(30)
        took = time.time() - before
        await manager.connection("nats").dispatch(build_report, "q3", pages=4)
        await seed_task.kiq(5)
        await build_report.dispatch("q4").on_connection("rabbitmq")
    assert RAN == []
    assert [job.connection for job in fake.jobs] == ["memory", "redis", "nats", "memory", "rabbitmq"]
    redis_job = fake.pushed(send_email, connection="redis")[0]
    assert (redis_job.args, redis_job.queue) == ((2,), "emails")
    assert 30 - took - 0.001 <= redis_job.delay <= 30.001, "due in 30 s when it was pushed"
    assert fake.pushed(build_report, connection="nats")[0].kwargs == {"pages": 4}
    assert fake.pushed(build_report, connection="nats")[0].queue == "reports"
    assert fake.pushed(seed_task)[0].args == (5,)
    assert not manager.connected("redis") or not manager.connection("redis").started, "nothing was started"


async def test_assertions_pass_for_what_was_pushed(app: Any) -> None:
    manager = app.make("queue.manager")
    with manager.fake() as fake:
        await send_email.kiq(1)
        await dispatch(send_email, 2).on_connection("redis")
        await build_report.kiq("x")
        fake.assert_pushed(send_email)
        fake.assert_pushed(send_email, times=2)
        fake.assert_pushed(send_email, times=1, connection="redis")
        fake.assert_pushed(send_email, where=lambda job: job.args == (2,))
        fake.assert_pushed("tests.unit.testing.test_fake:send_email", times=2)
        fake.assert_pushed_on("reports", build_report)
        fake.assert_pushed(build_report, queue="reports", connection="memory")
        fake.assert_count(3)
        fake.assert_not_pushed(send_email, where=lambda job: job.args == (99,))


async def test_failure_messages_list_what_was_pushed(app: Any) -> None:
    manager = app.make("queue.manager")
    with manager.fake() as fake:
        fake.assert_nothing_pushed()
        with pytest.raises(AssertionError, match=r"it was pushed 0 times\.\nNothing was pushed\."):
            fake.assert_pushed(send_email)
        await dispatch(send_email, 7).on_connection("redis").on_queue("emails")
        with pytest.raises(AssertionError) as caught:
            fake.assert_pushed(send_email, connection="rabbitmq")
        assert str(caught.value) == (
            "Expected tests.unit.testing.test_fake:send_email to be pushed at least once on connection 'rabbitmq', "
            "but it was pushed 0 times that way.\nPushed jobs:\n"
            "  - tests.unit.testing.test_fake:send_email(7) on connection 'redis', queue 'emails'"
        )
        with pytest.raises(AssertionError, match="to be pushed 2 times, but it was pushed once"):
            fake.assert_pushed(send_email, times=2)
        with pytest.raises(AssertionError, match="not to be pushed, but it was pushed once"):
            fake.assert_not_pushed(send_email)
        with pytest.raises(AssertionError, match="Expected no job to be pushed, but 1 were"):
            fake.assert_nothing_pushed()
        with pytest.raises(AssertionError, match="Expected 3 pushed jobs, but 1 were"):
            fake.assert_count(3)
        with pytest.raises(AssertionError, match="on queue 'default'"):
            fake.assert_pushed_on("default", send_email)


async def test_restoring_sends_for_real_again(app: Any) -> None:
    manager = app.make("queue.manager")
    fake = manager.fake()
    await send_email.kiq(1)
    assert app.make("queue") is fake, "the Queue facade's binding is the fake while faking"
    fake.restore()
    assert fake not in QueueFake.active and app.make("queue") is manager
    result = await (await send_email.kiq(2)).wait_result(timeout=5)
    assert result.return_value == "sent" and RAN == ["email 2"]
    assert len(fake.jobs) == 1


async def test_faking_some_tasks_lets_the_others_run(app: Any) -> None:
    manager = app.make("queue.manager")
    with manager.fake(tasks=[send_email]) as fake:
        await send_email.kiq(1)
        await (await build_report.kiq("real")).wait_result(timeout=5)
    assert RAN == ["report real"]
    fake.assert_pushed(send_email)
    fake.assert_not_pushed(build_report)


async def test_faking_some_connections_lets_the_others_through(app: Any) -> None:
    manager = app.make("queue.manager")
    with manager.fake(connections=["redis"]) as fake:
        await dispatch(send_email, 1).on_connection("redis")
        await (await send_email.kiq(2)).wait_result(timeout=5)
    assert RAN == ["email 2"]
    fake.assert_pushed(send_email, times=1, connection="redis")
    with pytest.raises(QueueConfigurationError, match="Did you mean 'redis'"):
        manager.fake(connections=["rediss"])


async def test_a_faked_jobs_result_is_a_clear_error(app: Any) -> None:
    manager = app.make("queue.manager")
    with manager.fake():
        handle = await send_email.kiq(1)
        with pytest.raises(ResultIsReadyError) as caught:  # TaskIQ wraps the backend's error
            await handle.wait_result(timeout=1)
    assert isinstance(caught.value.__cause__, FakedJobError)
    assert "was faked" in str(caught.value.__cause__)


async def test_the_queue_facade_reaches_the_fake(app: Any) -> None:
    from fastapi_startkit.facades import Queue

    manager = app.make("queue.manager")
    with pytest.raises(AttributeError, match=r"Call manager\.fake"):
        Queue.assert_pushed(send_email)
    with manager.fake() as fake:
        await send_email.kiq(3)
        Queue.assert_pushed(send_email, times=1)
        assert Queue.pushed(send_email) == fake.pushed(send_email)
        assert app.make("queue") is fake
        assert Queue.connection("memory") is manager.connection("memory"), "the rest still reaches the manager"


async def test_the_memory_driver_refuses_an_unknown_task_at_dispatch(app: Any) -> None:
    from taskiq.exceptions import SendTaskError
    from taskiq.kicker import AsyncKicker

    broker = app.make("broker")
    with pytest.raises(SendTaskError) as caught:  # TaskIQ's kicker wraps the broker's error
        await AsyncKicker("app.never_imported:job", broker, {}).kiq()
    cause = str(caught.value.__cause__)
    assert "app.never_imported:job" in cause and "import" in cause and "worker" in cause


async def test_memory_jobs_have_run_when_dispatch_returns(app: Any) -> None:
    await send_email.kiq(5)
    assert RAN == ["email 5"]


def test_queue_app_fixture_refuses_an_app_on_a_real_broker(make_app: Callable[..., Any]) -> None:
    from queue_manager.testing.plugin import check_memory_app

    assert check_memory_app(make_app(QUEUE_DRIVER="memory"))
    with pytest.raises(pytest.fail.Exception, match=r"QUEUE_DRIVER=memory in \.env\.testing"):
        check_memory_app(make_app(QUEUE_DRIVER="redis"))
