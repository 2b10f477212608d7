"""task/dispatch on the memory connection: in-process, no server. Real brokers are in tests/e2e."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from drivers.base.delay import MIN_DELAY
from queue_manager import PendingDispatch, QueueConfigurationError, dispatch, task
from queue_manager.dispatch import due_timestamp
from queue_manager.errors import NeverAwaitedWarning

CALLS: list[tuple[str, float]] = []


@task
async def greet(name: str) -> str:
    CALLS.append((name, time.time()))
    return f"hello {name}"


ATTEMPTS: list[float] = []


@task(retries=2, backoff=[0.2, 0.3])
async def wobbly() -> str:
    ATTEMPTS.append(time.time())
    if len(ATTEMPTS) < 3:
        raise RuntimeError("not yet")
    return "done"


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    CALLS.clear()
    ATTEMPTS.clear()
    return make_app(QUEUE_DRIVER="memory")


async def test_kiq_and_dispatch_go_to_the_default_connection(app: Any) -> None:
    handle = await greet.kiq("ada")
    assert (await handle.wait_result(timeout=5)).return_value == "hello ada"
    handle = await dispatch(greet, "bob")
    assert (await handle.wait_result(timeout=5)).return_value == "hello bob"
    handle = await greet.dispatch("cy")
    assert (await handle.wait_result(timeout=5)).return_value == "hello cy"
    assert [name for name, _ in CALLS] == ["ada", "bob", "cy"]


async def test_pending_dispatches_run_under_gather_and_create_task_and_send_once(app: Any) -> None:
    handles = await asyncio.gather(dispatch(greet, "fay"), dispatch(greet, "gus").on_queue("other"))
    handles.append(await asyncio.create_task(dispatch(greet, "hal")))
    assert [(await h.wait_result(timeout=5)).return_value for h in handles] == ["hello fay", "hello gus", "hello hal"]
    pending = dispatch(greet, "ivy")
    await pending
    with pytest.raises(RuntimeError, match="already awaited"):
        await pending
    assert [name for name, _ in CALLS] == ["fay", "gus", "hal", "ivy"], "each job ran once"


async def test_connection_dispatch_and_the_facade(app: Any) -> None:
    from fastapi_startkit.facades import Queue

    connection = app.make("queue.manager").connection("memory")
    handle = await connection.dispatch(greet, "dee")
    assert (await handle.wait_result(timeout=5)).return_value == "hello dee"
    handle = await Queue.dispatch(greet, "eve")
    assert (await handle.wait_result(timeout=5)).return_value == "hello eve"


async def test_seed_style_broker_tasks_can_be_dispatched_too(app: Any) -> None:
    broker = app.make("broker")

    @broker.task
    async def add(a: int, b: int) -> int:
        return a + b

    assert (await (await add.kiq(1, 2)).wait_result(timeout=5)).return_value == 3
    assert (await (await dispatch(add, 2, 3)).wait_result(timeout=5)).return_value == 5


async def test_delay_takes_seconds_timedelta_and_datetime(app: Any) -> None:
    pending = {
        "s": dispatch(greet, "s").delay(0.3),
        "t": dispatch(greet, "t").delay(timedelta(seconds=0.3)),
        "d": dispatch(greet, "d").delay(datetime.now() + timedelta(seconds=0.3)),
    }
    due = {name: float(job.labels["eta"]) for name, job in pending.items()}
    handles = [await job for job in pending.values()]
    for handle in handles:
        await handle.wait_result(timeout=30)
    assert sorted(name for name, _ in CALLS) == ["d", "s", "t"]
    # Nothing runs before it is due (checked against each job's own due time, not against a moment the test
    # hopes comes first; a job within MIN_DELAY of its due time runs at once).
    assert all(at >= due[name] - MIN_DELAY for name, at in CALLS), (CALLS, due)


async def test_retries_wait_their_backoff_in_memory_too(app: Any) -> None:
    result = await (await wobbly.kiq()).wait_result(timeout=30)
    assert result.return_value == "done"
    assert len(ATTEMPTS) == 3
    assert ATTEMPTS[1] - ATTEMPTS[0] >= 0.15 and ATTEMPTS[2] - ATTEMPTS[1] >= 0.25


@task
async def refuses(name: str) -> str:
    raise ValueError(f"no {name}")


@task
async def counts_as_int() -> int:
    return "7"  # type: ignore[return-value]


@pytest.mark.parametrize("send", ["dispatch", "kiq", "broker_task"])
async def test_a_failed_jobs_result_is_not_parsed_into_the_return_annotation(
    app: Any, send: str, caplog: pytest.LogCaptureFixture
) -> None:
    """TaskIQ warned "Cannot parse return type into <class 'str'>" to a caller waiting on a job that failed; a
    successful result is still parsed into the annotation."""
    broker = app.make("broker")

    @broker.task(task_name=f"tests.unit.refuses_on_broker_{send}")
    async def refuses_on_broker(name: str) -> str:
        raise ValueError(f"no {name}")

    sending = {
        "dispatch": lambda: dispatch(refuses, "x"),
        "kiq": lambda: refuses.kiq("x"),
        "broker_task": lambda: refuses_on_broker.kiq("x"),
    }[send]
    result = await (await sending()).wait_result(timeout=5)
    assert result.is_err and "no x" in str(result.error)
    assert "Cannot parse return type" not in caplog.text
    parsed = await (await dispatch(counts_as_int)).wait_result(timeout=5)
    assert parsed.return_value == 7


async def test_unknown_connection_in_dispatch_is_a_clear_error(app: Any) -> None:
    with pytest.raises(QueueConfigurationError, match="Did you mean 'memory'"):
        await dispatch(greet, "x").on_connection("memroy")


def test_bad_dispatch_arguments_are_clear_errors(app: Any) -> None:
    with pytest.raises(QueueConfigurationError, match="Invalid queue name"):
        dispatch(greet, "x").on_queue("has space")
    with pytest.raises(TypeError, match="seconds, a timedelta or a datetime"):
        dispatch(greet, "x").delay("soon")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a task"):
        dispatch(print, "x")  # type: ignore[arg-type]


def test_pending_dispatch_is_fluent_and_sends_nothing_until_awaited(app: Any) -> None:
    before = time.time()
    pending = dispatch(greet, "x").on_connection("redis").on_queue("emails").delay(30)
    after = time.time()
    assert isinstance(pending, PendingDispatch)
    assert pending.connection_name == "redis" and pending.labels["queue_name"] == "emails"
    assert before + 30 <= pending.labels["eta"] <= after + 30
    assert not app.make("queue.manager").connected("redis")
    pending.close()  # discarded on purpose: no never-awaited warning


def test_a_dispatch_never_awaited_warns_naming_the_task_and_the_line(app: Any) -> None:
    """Laravel sends a pending dispatch when it is destroyed; here nothing would be sent, so say so loudly."""
    import inspect

    with pytest.warns(NeverAwaitedWarning) as caught:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        dispatch(greet, "x").on_queue("emails")
    [warning] = caught
    assert warning.filename == __file__ and warning.lineno == line
    assert "tests.unit.test_dispatch:greet was never awaited, so nothing was sent" in str(warning.message)
    assert "await greet.dispatch(...)" in str(warning.message)
    with pytest.warns(NeverAwaitedWarning):
        greet.dispatch("y").delay(1)  # the Laravel habit: SendEmail::dispatch(...)->delay(...)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"backoff": "soon"}, "backoff"),
        ({"backoff": []}, "backoff"),
        ({"backoff": [1, -2]}, "backoff"),
        ({"backoff": [1, 1e9]}, "at most 366 days"),
        ({"backoff": float("inf")}, "finite"),
        ({"timeout": 0}, "timeout"),
        ({"queue": "a b"}, "queue name"),
    ],
)
def test_task_options_are_checked_when_declared(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(QueueConfigurationError, match=message):

        @task(**kwargs)
        async def job() -> None:
            return None


def test_due_timestamp() -> None:
    before = time.time()
    seconds, minute = due_timestamp(10), due_timestamp(timedelta(minutes=1))
    after = time.time()
    assert before + 10 <= seconds <= after + 10
    assert before + 60 <= minute <= after + 60
    moment = datetime(2030, 1, 1, 12, 0, 0)
    assert due_timestamp(moment) == moment.timestamp()
    with pytest.raises(TypeError):
        due_timestamp(True)


def test_a_sync_task_with_a_timeout_is_refused_when_declared() -> None:
    with pytest.raises(QueueConfigurationError, match="only an `async def` task") as caught:

        @task(timeout=1)
        def blocking() -> None:
            return None

    assert "blocking" in str(caught.value)


SYNC_RUNS: list[tuple[str, float]] = []


@task(retries=1, name="tests.unit.sync_sleeper")
def sync_sleeper(seconds: float) -> str:
    SYNC_RUNS.append(("start", time.time()))
    time.sleep(seconds)
    SYNC_RUNS.append(("end", time.time()))
    return "slept"


async def test_a_timeout_label_on_a_sync_task_is_dropped_so_no_retry_runs_beside_it(app: Any) -> None:
    """TaskIQ would report TimeoutError after 0.1 s while the thread slept on, and start the retry beside it."""
    SYNC_RUNS.clear()
    handle = await dispatch(sync_sleeper, 0.5).with_labels(timeout=0.1)
    result = await handle.wait_result(timeout=10)
    assert not result.is_err and result.return_value == "slept", result.error
    assert [kind for kind, _ in SYNC_RUNS] == ["start", "end"], "one attempt, not a retry beside it"
