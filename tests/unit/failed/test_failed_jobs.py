"""Failed jobs on the memory driver (recorded in the dispatching process): what is kept, the hook, retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from queue_manager import QueueConfigurationError, QueueManager, task, use_manager
from queue_manager.settings import load_settings

hook_calls: list[tuple[str, str, int]] = []
BROKEN = {"on": True}


async def on_failure(job: Any, exception: BaseException) -> None:
    hook_calls.append((job.task_name, type(exception).__name__, job.attempts))


@task(name="tests.failed.charge", retries=1, backoff=0, on_failure=on_failure)
async def charge(order_id: int, *, currency: str = "EUR") -> str:
    if BROKEN["on"]:
        raise ValueError(f"card of order {order_id} declined")
    return f"charged {order_id} {currency}"


@task(name="tests.failed.once")
def once(n: int) -> int:
    raise KeyError(n)


@pytest.fixture
async def manager(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[QueueManager]:
    hook_calls.clear()
    BROKEN["on"] = True
    settings = load_settings({"driver": "memory", "failed": {"url": f"sqlite+aiosqlite:///{tmp_path}/failed.sqlite"}})
    queue = QueueManager(settings, base_path=tmp_path)
    use_manager(queue)
    yield queue
    await queue.shutdown()
    use_manager(None)


async def test_a_job_that_exhausts_its_retries_is_recorded_with_what_a_user_needs(manager: QueueManager) -> None:
    handle = await charge.kiq(7, currency="USD")
    [job] = await manager.failed.all()
    assert (job.connection, job.queue, job.task_name, job.task_id) == (
        "memory",
        "default",
        charge.task_name,
        handle.task_id,
    )
    assert (job.args, job.kwargs) == ([7], {"currency": "USD"})
    assert (job.exception, job.message, job.attempts) == ("ValueError", "card of order 7 declined", 2)
    assert "Traceback" in job.traceback and "card of order 7 declined" in job.traceback
    assert job.failed_at.tzinfo is not None
    assert await manager.failed.find(job.id[:8]) == job, "a short id finds it"


async def test_a_job_without_retries_is_recorded_after_its_one_attempt(manager: QueueManager) -> None:
    await once.kiq(3)
    [job] = await manager.failed.all()
    assert (job.task_name, job.exception, job.attempts) == (once.task_name, "KeyError", 1)


async def test_the_failure_hook_runs_once_when_the_job_fails_for_good(manager: QueueManager) -> None:
    await charge.kiq(1)
    assert hook_calls == [(charge.task_name, "ValueError", 2)], "not after the first attempt, once after the last"


async def test_retry_sends_it_back_with_its_args_and_task_id_and_forgets_it(manager: QueueManager) -> None:
    handle = await charge.kiq(5, currency="GBP")
    [job] = await manager.failed.all()
    BROKEN["on"] = False  # the cause is fixed
    [retried] = await manager.failed.retry(job.id[:6])
    assert (retried.connection, retried.queue, retried.handle.task_id) == ("memory", "default", handle.task_id)
    result = await handle.wait_result(timeout=5)
    assert result.return_value == "charged 5 GBP", "the original handle sees the retry's outcome"
    assert await manager.failed.all() == []


async def test_retry_all_of_one_queue_only(manager: QueueManager) -> None:
    await charge.dispatch(1).on_queue("payments")
    await charge.dispatch(2)
    BROKEN["on"] = False
    retried = await manager.failed.retry("all", queue="payments")
    assert [job.queue for job in retried] == ["payments"]
    [left] = await manager.failed.all()
    assert left.queue == "default"


async def test_an_unknown_id_is_a_clear_error_and_nothing_is_sent(manager: QueueManager) -> None:
    await charge.kiq(1)
    with pytest.raises(QueueConfigurationError, match="No failed job with id abcdef42"):
        await manager.failed.retry(["abcdef42"])
    with pytest.raises(QueueConfigurationError, match="'nope42' is not a failed job id: ids are uuids"):
        await manager.failed.retry(["nope42"])
    assert len(await manager.failed.all()) == 1


async def test_forget_and_flush(manager: QueueManager) -> None:
    await charge.kiq(1)
    await charge.kiq(2)
    first, _ = await manager.failed.all()
    assert await manager.failed.forget(first.id)
    assert not await manager.failed.forget(first.id)
    assert await manager.failed.flush(hours=1) == 0, "nothing failed more than an hour ago"
    assert await manager.failed.flush() == 1
    assert await manager.failed.all() == []


def test_failed_settings_are_checked_at_boot(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError, match=r"postgresql\+asyncpg://"):
        QueueManager(load_settings({"driver": "memory", "failed": {"url": "postgresql://u:s3cret@db/app"}}))
    clean_env.setenv("QUEUE_FAILED__DRIVER", "redis")
    clean_env.setenv("QUEUE_FAILED__CONNECTION", "nats")
    with pytest.raises(QueueConfigurationError, match="connection 'nats' uses the nats driver"):
        QueueManager(load_settings({"driver": "memory"}))
    clean_env.setenv("QUEUE_FAILED__DRIVER", "sqlite")
    with pytest.raises(QueueConfigurationError) as caught:
        QueueManager(load_settings({"driver": "memory"}))
    assert "failed.driver" in str(caught.value) and "s3cret" not in str(caught.value)
