"""Job middleware on the memory driver (in-process, no server): RateLimited, WithoutOverlapping,
ThrottlesExceptions and Skip around job classes and @task functions, and a connection that keeps no job state.
The same on each real server is in tests/integration/middleware, across real workers in tests/e2e/middleware."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from taskiq import TaskiqMessage

from queue_manager import Job, QueueConfigurationError, QueueManager, current_job, task, use_manager
from queue_manager.middleware import (
    Limit,
    NoJobState,
    RateLimited,
    Skip,
    ThrottlesExceptions,
    WithoutOverlapping,
    rate_limits,
)
from queue_manager.running.interactions import Interactions
from queue_manager.settings import load_settings

RAN: list[tuple[str, Any, float]] = []  # (what, which, when)


def ran(what: str) -> list[Any]:
    return [which for name, which, _ in RAN if name == what]


class Limited(Job):
    tries = 1  # a release by the limit is no attempt: one try is enough however often it waits
    max_exceptions = 1

    def __init__(self, n: int, user_id: int = 0) -> None:
        self.n = n
        self.user_id = user_id

    def middleware(self) -> list[Any]:
        return [RateLimited("unit-limited")]

    async def handle(self) -> int:
        RAN.append(("limited", (self.n, self.attempts()), time.monotonic()))
        return self.n


class LimitedOrDropped(Limited):
    def middleware(self) -> list[Any]:
        return [RateLimited("unit-limited").dont_release()]

    async def handle(self) -> int:
        RAN.append(("dropped", self.n, time.monotonic()))
        return self.n


class Typo(Limited):
    tries = 5  # a limit that is not defined fails the job for good: no retry would find it

    def middleware(self) -> list[Any]:
        return [RateLimited("unit-limitd")]


class Exclusive(Job):
    def __init__(self, n: int, account: str) -> None:
        self.n = n
        self.account = account

    def middleware(self) -> list[Any]:
        return [WithoutOverlapping(self.account, release_after=0.1)]

    async def handle(self) -> int:
        RAN.append(("start", (self.n, self.account), time.monotonic()))
        await asyncio.sleep(0.05)
        RAN.append(("end", (self.n, self.account), time.monotonic()))
        return self.n


class Flaky(Job):
    tries = 10

    def __init__(self, n: int) -> None:
        self.n = n

    def middleware(self) -> list[Any]:
        return [ThrottlesExceptions(2, 1.0)]

    async def handle(self) -> int:
        RAN.append(("flaky", self.n, time.monotonic()))
        if self.n < 0:
            raise RuntimeError("the service is down")
        return self.n


class Skipped(Job):
    def __init__(self, n: int) -> None:
        self.n = n

    def middleware(self) -> list[Any]:
        return [Skip.when(lambda job: job.n % 2 == 0), Skip.unless(True)]

    async def handle(self) -> int:
        RAN.append(("skipped", self.n, time.monotonic()))
        return self.n


@task(name="tests.middleware.per_user", middleware=[RateLimited("unit-per-user")])
async def per_user(user_id: int, n: int) -> int:
    RAN.append(("per_user", (user_id, n, current_job().attempts()), time.monotonic()))
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
    for name in ("unit-limited", "unit-per-user"):
        rate_limits.forget(name)


def most_in_a_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t - start < window) for i, start in enumerate(times)), default=0)


async def test_rate_limited_jobs_all_run_and_no_window_sees_more_than_the_limit(manager: QueueManager) -> None:
    rate_limits.define("unit-limited", Limit.per_second(3, 0.5))
    handles = [await Limited.dispatch(n) for n in range(9)]
    results = [await handle.wait_result(timeout=30) for handle in handles]
    assert [r.return_value for r in results] == list(range(9)), [r.error for r in results]
    starts = [at for name, _, at in RAN if name == "limited"]
    assert most_in_a_window(starts, 0.5) <= 3, starts
    assert max(starts) - min(starts) >= 0.9, "9 jobs at 3 per 0.5 s take at least two more windows"
    assert {attempt for _, attempt in ran("limited")} == {1}, "a job waiting for its slot spent no attempt"


async def test_a_limit_by_key_keeps_a_window_per_key_and_reads_a_task_functions_arguments(
    manager: QueueManager,
) -> None:
    rate_limits.define("unit-per-user", lambda job: Limit.per_minute(1).by(job.user_id))
    first = [await per_user.kiq(user, 0) for user in (1, 2, 3)]
    assert [(await h.wait_result(timeout=10)).return_value for h in first] == [0, 0, 0]
    assert sorted(ran("per_user")) == [(1, 0, 1), (2, 0, 1), (3, 0, 1)], "one window each: none waited"
    await per_user.kiq(1, 1)  # user 1's minute is used: released for about a minute
    await asyncio.sleep(0.3)
    assert len(ran("per_user")) == 3


async def test_limit_none_and_dont_release(manager: QueueManager) -> None:
    rate_limits.define("unit-limited", lambda job: Limit.none() if job.user_id == 7 else Limit.per_hour(1))
    vip = [await Limited.dispatch(n, user_id=7) for n in range(5)]
    assert [(await h.wait_result(timeout=10)).return_value for h in vip] == list(range(5)), "Limit.none(): unlimited"
    kept = await LimitedOrDropped.dispatch(1)
    dropped = await LimitedOrDropped.dispatch(2)
    assert (await kept.wait_result(timeout=10)).return_value == 1
    result = await dropped.wait_result(timeout=10)
    assert not result.is_err and result.return_value is None, "over the limit with dont_release(): deleted"
    assert ran("dropped") == [1]


async def test_an_undefined_limit_fails_the_job_naming_the_close_one(manager: QueueManager) -> None:
    rate_limits.define("unit-limited", Limit.per_minute(10))
    result = await (await Typo.dispatch(1)).wait_result(timeout=10)
    assert result.is_err and "Did you mean 'unit-limited'?" in str(result.error), result.error
    assert ran("limited") == [], "never ran without its limit"
    [failed] = await manager.failed.all()
    assert failed.task_name.endswith(":Typo"), "failed once, for good"


async def test_without_overlapping_runs_one_at_a_time_per_key(manager: QueueManager) -> None:
    handles = [await Exclusive.dispatch(n, "acme" if n < 4 else "globex") for n in range(6)]
    assert [(await h.wait_result(timeout=30)).return_value for h in handles] == list(range(6))
    spans: dict[tuple[int, str], list[float]] = {}
    for _name, which, at in RAN:
        spans.setdefault(which, []).append(at)
    acme = sorted(span for (n, account), span in spans.items() if account == "acme")
    assert len(acme) == 4
    for (_, end), (start, _) in itertools.pairwise(acme):
        assert start >= end, f"two acme jobs overlapped: {acme}"
    assert len([n for n, account in spans if account == "globex"]) == 2


async def test_a_lock_left_by_a_dead_holder_expires(manager: QueueManager) -> None:
    state = manager.job_state_of("memory")
    name = f"overlap:{Exclusive.task.task_name}:dead"
    assert await state.lock(name, "a-killed-worker's-job", 0.5)
    began = time.monotonic()
    assert (await (await Exclusive.dispatch(1, "dead")).wait_result(timeout=30)).return_value == 1
    assert RAN[0][2] - began >= 0.45, "it waited for the dead holder's lock to expire"
    assert await state.lock(name, "next", 1), "and freed it when done"


async def test_throttles_exceptions_opens_the_circuit_after_max_attempts(manager: QueueManager) -> None:
    failing = [await Flaky.dispatch(-n - 1) for n in range(2)]
    await asyncio.sleep(0.2)  # both raised (their retries wait on the backoff: none)
    opened = time.monotonic()
    ok = await Flaky.dispatch(1)
    assert (await ok.wait_result(timeout=30)).return_value == 1
    [at] = [at for name, n, at in RAN if name == "flaky" and n == 1]
    assert at - opened >= 0.9, "the circuit held the next job for its decay"
    del failing


async def test_skip_when_and_unless_delete_the_job_unrun(manager: QueueManager) -> None:
    results = [await (await Skipped.dispatch(n)).wait_result(timeout=10) for n in range(4)]
    assert [r.return_value for r in results] == [None, 1, None, 3]
    assert ran("skipped") == [1, 3]


async def test_a_connection_without_job_state_fails_the_job_naming_the_fix() -> None:
    message = TaskiqMessage(task_id="j1", task_name="app:Job", labels={}, args=[], kwargs={})
    interactions = Interactions(message)

    def no_state() -> Any:
        raise QueueConfigurationError("set QUEUE_CONNECTIONS__RABBITMQ__STATE=<a connection on redis, nats>")

    interactions.job_state = no_state

    class Stand:
        _interactions = interactions

    async def run(_job: Any) -> None:
        raise AssertionError("it ran unlocked")

    for middleware in (RateLimited("x", limits=_one_limit()), WithoutOverlapping("k"), ThrottlesExceptions()):
        interactions.failure = None
        assert await middleware.handle(Stand(), run) is None
        assert isinstance(interactions.failure, NoJobState)
        assert "QUEUE_CONNECTIONS__RABBITMQ__STATE" in str(interactions.failure)


def _one_limit() -> Any:
    from queue_manager.middleware import RateLimits

    limits = RateLimits()
    limits.define("x", Limit.per_second(1))
    return limits


def test_bad_limits_are_refused_where_they_are_written() -> None:
    with pytest.raises(QueueConfigurationError, match="max_attempts"):
        Limit.per_minute(0)
    with pytest.raises(QueueConfigurationError, match="window"):
        Limit(5, 200_000)
    with pytest.raises(QueueConfigurationError, match="takes a Limit"):
        rate_limits.define("x", 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="release_after"):
        WithoutOverlapping("k", release_after=-1)
    with pytest.raises(ValueError, match="max_attempts"):
        ThrottlesExceptions(0)


class Guarded(Job):
    def middleware(self) -> list[Any]:
        return [WithoutOverlapping("k")]

    async def handle(self) -> None: ...


@task(name="tests.middleware.guarded", middleware=[RateLimited("unit-limited")])
async def guarded(n: int) -> int:
    return n


@pytest.mark.parametrize("send", [lambda: Guarded.dispatch(), lambda: guarded.kiq(1)], ids=["job class", "@task"])
async def test_a_dispatch_to_a_connection_without_job_state_is_refused_naming_the_setting(
    send: Any, clean_env: pytest.MonkeyPatch, no_current_manager: None
) -> None:
    """Refused before anything is sent (no server is reached): the job could never run guarded there."""
    queue = QueueManager(load_settings({"driver": "rabbitmq"}))
    use_manager(queue)
    with pytest.raises(QueueConfigurationError, match="QUEUE_CONNECTIONS__RABBITMQ__STATE"):
        await send()
    assert not queue.connection().started


async def test_a_dispatch_with_job_state_elsewhere_or_no_stateful_middleware_is_not_refused(
    clean_env: pytest.MonkeyPatch, no_current_manager: None
) -> None:
    from queue_manager.running.pipeline import needing_state

    on_memory = QueueManager(load_settings({"driver": "memory"}))
    use_manager(on_memory)
    pendings = [Guarded.dispatch(), guarded.dispatch(1), per_user_plain.dispatch(1)]
    try:
        assert [bool(needing_state(pending, [])) for pending in pendings] == [True, True, False], "Skip keeps none"
        assert needing_state(None, [RateLimited("x")]), "the connection's own (QUEUE_MIDDLEWARES) count too"
    finally:
        for pending in pendings:
            pending.close()
    assert (await (await per_user_plain.kiq(1)).wait_result(timeout=5)).return_value == 1
    await on_memory.shutdown()


@task(name="tests.middleware.plain", middleware=[Skip.when(False)])
async def per_user_plain(n: int) -> int:
    return n


async def test_the_readme_example_runs_as_written(manager: QueueManager) -> None:
    import re
    import sys
    import types

    from tests.helpers import ROOT

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    [block] = [b for b in blocks if b.startswith("# app/jobs/mail.py")]
    module = types.ModuleType("readme_mail_jobs")
    sys.modules[module.__name__] = module
    try:
        exec(compile(block, "README.md", "exec"), module.__dict__)
        jobs = module.__dict__
        welcome = await jobs["SendWelcomeEmail"].dispatch(42)
        skipped = await jobs["SendWelcomeEmail"].dispatch(13)
        digest = await jobs["send_digest"].kiq(42)
        assert (await welcome.wait_result(timeout=10)).return_value == "welcomed 42"
        assert (await skipped.wait_result(timeout=10)).return_value is None, "an unsubscribed user: skipped"
        assert (await digest.wait_result(timeout=10)).return_value == "digest for 42"
    finally:
        sys.modules.pop(module.__name__, None)
        for name in ("emails", "reports"):
            rate_limits.forget(name)


async def test_under_the_fake_a_job_with_middleware_is_recorded_not_run(manager: QueueManager) -> None:
    rate_limits.define("unit-limited", Limit.per_minute(1))
    with manager.fake() as fake:
        await Limited.dispatch(1)
        await Limited.dispatch(2)
        await guarded.kiq(3)
        fake.assert_pushed(Limited, times=2)
        fake.assert_pushed(guarded)
    assert ran("limited") == [], "recorded, not run (nor limited)"


async def test_a_bulk_to_a_connection_without_job_state_is_refused_too(
    clean_env: pytest.MonkeyPatch, no_current_manager: None
) -> None:
    queue = QueueManager(load_settings({"driver": "rabbitmq", "connections": {"rabbitmq": {"url": "amqp://x"}}}))
    use_manager(queue)
    connection = queue.connection()
    connection._started = True  # refused before anything is sent: no server needed
    with pytest.raises(QueueConfigurationError, match="QUEUE_CONNECTIONS__RABBITMQ__STATE"):
        await connection.bulk(guarded, [(1,), (2,)])
    with pytest.raises(QueueConfigurationError, match="QUEUE_CONNECTIONS__RABBITMQ__STATE"):
        await connection.bulk([Guarded(), Guarded()])
