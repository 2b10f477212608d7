"""The coarse send deadline: slow sends time out (and only they), a caller's own cancel stays a cancel."""

from __future__ import annotations

import asyncio
import time

import pytest

from drivers.common.deadlines import RESOLUTION, SendDeadlines


async def test_a_slow_send_times_out_within_the_resolution_and_fast_ones_finish() -> None:
    deadlines = SendDeadlines(0.3)

    async def send(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(deadlines.run(send(0.01)) for _ in range(50)), deadlines.run(send(30)), return_exceptions=True
    )
    elapsed = time.monotonic() - started
    assert outcomes[:50] == [0.01] * 50
    assert isinstance(outcomes[50], TimeoutError)
    assert 0.3 <= elapsed < 0.3 + RESOLUTION + 5  # generous: a busy machine
    assert not deadlines._due, "nothing left under a deadline"


async def test_after_a_timeout_the_task_is_not_left_cancelling() -> None:
    deadlines = SendDeadlines(0.1)
    with pytest.raises(TimeoutError):
        await deadlines.run(asyncio.sleep(30))
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)  # would raise CancelledError if a cancel were still pending


async def test_a_callers_own_cancel_is_a_cancel_not_a_timeout() -> None:
    deadlines = SendDeadlines(30)
    sending = asyncio.ensure_future(deadlines.run(asyncio.sleep(30)))
    await asyncio.sleep(0.05)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending


async def test_a_send_that_swallows_the_cancel_leaves_no_cancel_behind() -> None:
    deadlines = SendDeadlines(0.1)

    async def stubborn() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "swallowed"
        return "slept"

    assert await deadlines.run(stubborn()) == "swallowed"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0.01)
