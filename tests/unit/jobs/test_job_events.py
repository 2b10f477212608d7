"""Job events on the memory driver: they reach a fastapi-startkit dispatcher with what they carry; without one
(no ``events`` binding) no event object is ever made. The same in real workers is in tests/e2e/jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi_startkit.events import Dispatcher

from queue_manager import Job, QueueManager, events, use_manager
from queue_manager.settings import load_settings


class Flaky(Job):
    tries = 2

    def __init__(self, fail: bool) -> None:
        self.fail_it = fail

    async def handle(self) -> str:
        if self.fail_it:
            raise ValueError("broken")
        return "ok"


@pytest.fixture
async def manager(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[QueueManager]:
    queue = QueueManager(load_settings({"driver": "memory"}), base_path=tmp_path)
    use_manager(queue)
    with queue.failed.isolated():
        yield queue
    await queue.shutdown()
    use_manager(None)


async def test_the_apps_dispatcher_hears_each_event_with_what_it_carries(manager: QueueManager) -> None:
    heard: list[Any] = []
    dispatcher = Dispatcher()
    kinds = [events.JobQueued, events.JobProcessing, events.JobProcessed, events.JobExceptionOccurred, events.JobFailed]
    dispatcher.listen(kinds, heard.append)
    manager.events.dispatcher = dispatcher
    ok = await Flaky.dispatch(False)
    await ok.wait_result(timeout=5)
    bad = await Flaky.dispatch(True)
    await bad.wait_result(timeout=5)
    seen = [(type(event).__name__, event.job_id) for event in heard if not isinstance(event, events.JobQueued)]
    assert seen == [
        ("JobProcessing", ok.task_id),
        ("JobProcessed", ok.task_id),
        ("JobProcessing", bad.task_id),
        ("JobExceptionOccurred", bad.task_id),
        ("JobProcessing", bad.task_id),
        ("JobExceptionOccurred", bad.task_id),
        ("JobFailed", bad.task_id),
    ]
    [failed] = [event for event in heard if isinstance(event, events.JobFailed)]
    assert (failed.connection, failed.queue, failed.attempt) == ("memory", "default", 2)
    assert failed.task_name.endswith(":Flaky") and str(failed.exception) == "broken"
    assert [event.will_retry for event in heard if isinstance(event, events.JobExceptionOccurred)] == [True, False]
    assert sum(isinstance(event, events.JobQueued) for event in heard) >= 2


async def test_without_a_dispatcher_no_event_is_made(manager: QueueManager, monkeypatch: pytest.MonkeyPatch) -> None:
    def made(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an event was made with nobody listening")

    for kind in (events.JobQueued, events.JobProcessing, events.JobProcessed, events.JobExceptionOccurred):
        monkeypatch.setattr(kind, "__init__", made)
    monkeypatch.setattr(events.JobFailed, "__init__", made)
    assert manager.events.dispatcher is None
    handle = await Flaky.dispatch(True)
    result = await handle.wait_result(timeout=5)
    assert result.is_err and "broken" in str(result.error)
