"""queue:schedule's checks and ticks without a server: what TaskIQ would accept and never run (or fail at every
tick) is refused with the fix, and every scheduler agrees on the tick a due schedule is sent for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from taskiq import AsyncBroker, InMemoryBroker, TaskiqScheduler
from taskiq.scheduler.scheduled_task import ScheduledTask

from queue_manager import QueueConfigurationError, QueueManager, task
from queue_manager.scheduler import AppSchedules, ClockLoop, cron_problem
from queue_manager.scheduler.entries import entry_problem
from queue_manager.scheduler.ticks import held_for, tick_of
from queue_manager.settings import load_settings


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("*/5 * * * *", None),
        ("0 9 * * mon-fri", None),
        ("30 2 1,15 * 0", None),
        ("*/59 * * * *", None),
        ("0 0 29 2 *", None),
        ("* * 31 2 mon", None),  # both day fields set: either matches (pycron, as cron)
        ("0-10/5 * * * *", None),
        ("5-1 * * * *", "its minute field '5-1' is a range that runs backwards: write 1-5, or 5-59,0-1 to wrap"),
        ("* * * * fri-mon", "write mon-fri, or fri-6,0-mon to wrap round"),
        ("* * 31 2 *", "no date has day of month '31' in month '2', so it would never run: fix the day fields"),
        ("0 0 31 4,6,9,11 *", "no date has day of month '31' in month '4,6,9,11'"),
        ("*/100 * * * *", "its minute field '*/100' has a step of 100, longer than the field: it runs only at 0"),
        ("* * */40 * *", "has a step of 40, longer than the field: it runs only at 1"),
        ("0-5/6 * * * *", "has a step of 6, longer than the range: it runs only at 0"),
        ("5/15 * * * *", "steps from a single value, which never matches: write 5-59/15"),
        ("* * * * mon-fri/2", "its day of week field 'mon-fri/2' never matches (write it with numbers)"),
        ("*-5 * * * *", "is not a number, range, list or */step"),
        ("61 * * * *", "minute field '61' is outside 0-59"),
        ("* * *", "it has 3 fields"),
        ("*/0 * * * *", "a step of 0"),
        ("0 0 1 dec *", "month field 'dec' is not a number"),
    ],
)
def test_cron_expressions_that_cannot_run_or_never_do_are_refused(expression: str, problem: str | None) -> None:
    found = cron_problem(expression)
    assert (found is None) if problem is None else (problem in (found or "")), found


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"cron": "0 3 * * *", "cron_offset": "Europe/Berlin", "args": [1], "kwargs": {"a": 1}}, None),
        ({"cron": "0 3 * * *", "cron_offset": "PT2H"}, None),
        ({"interval": 5, "args": ("a",), "labels": {"priority": 1}}, None),
        ({"cron": "0 3 * * *", "interval": 5}, "needs one of 'cron', 'interval' or 'time' (it has cron and interval"),
        ({"args": [1]}, "needs one of 'cron', 'interval' or 'time'"),
        ({"interval": 5, "cron_offset": "PT1H"}, "has a cron_offset, which only a 'cron' schedule uses: remove it"),
        ({"cron": "0 3 * * *", "cron_offset": "Mars/Olympus"}, "is not a time zone name or a duration: write"),
        ({"cron": "0 3 * * *", "cron_offset": 3600}, "cron_offset 3600 must be a time zone name ('Europe/Berlin')"),
        ({"interval": 5, "args": "abc"}, "args must be a list of the task's positional arguments, got 'abc': write"),
        ({"interval": 5, "kwargs": "a=1"}, "kwargs must be a dict of the task's keyword arguments"),
        ({"interval": 5, "labels": ["x"]}, "labels must be a dict"),
        ({"intervall": 5}, "has an unknown key 'intervall'. Did you mean 'interval'?"),
    ],
)
def test_schedule_entries_are_checked(entry: dict[str, Any], problem: str | None) -> None:
    found = entry_problem(entry)
    assert (found is None) if problem is None else (problem in (found or "")), found


def test_a_bad_entry_stops_the_scheduler_naming_the_task_the_entry_and_its_id(
    clean_env: pytest.MonkeyPatch, no_current_manager: None
) -> None:
    @task(name="tests.scheduler.nightly", schedule=[{"cron": "0 3 * * *"}, {"schedule_id": "n2", "interval": 0}])
    async def nightly() -> None: ...

    source = AppSchedules(QueueManager(load_settings({"driver": "memory"})))
    try:
        with pytest.raises(QueueConfigurationError) as caught:
            source.collect()
    finally:  # a shared task stays declared for the whole process: no other test may collect this schedule
        AsyncBroker.global_task_registry.pop(nightly.task_name)
    assert "tests.scheduler.nightly: schedule entry 2 (n2) is not valid: Interval must be at least 1 second" in str(
        caught.value
    )


def scheduled(**when: Any) -> ScheduledTask:
    return ScheduledTask(task_name="t", labels={}, args=[], kwargs={}, schedule_id="s", **when)


def at(seconds: float) -> datetime:
    return datetime(2026, 12, 5, 10, 0, tzinfo=UTC) + timedelta(seconds=seconds)


def test_every_scheduler_agrees_on_a_tick_and_keeps_its_claim_for_the_tick() -> None:
    assert tick_of(scheduled(cron="* * * * *"), at(42.5)) == at(0)
    assert tick_of(scheduled(interval=10), at(37.2)) == at(30)  # the clock's slots, not the process's start
    assert tick_of(scheduled(interval=timedelta(hours=1)), at(7200 + 59)) == at(0) + timedelta(hours=2)
    assert tick_of(scheduled(time=at(5)), at(90)) == at(5)
    assert held_for(scheduled(cron="* * * * *")) == 120
    assert held_for(scheduled(interval=1)) == 61
    assert held_for(scheduled(interval=86400)) == 3660


async def test_an_interval_schedule_is_due_once_in_each_slot_of_the_clock() -> None:
    loop = ClockLoop(TaskiqScheduler(InMemoryBroker(), []))
    every_10s = scheduled(interval=10)
    moments = [3.0, 4.0, 9.9, 10.0, 10.001, 19.0, 20.5, 45.0]
    due = [moment for moment in moments if loop._is_schedule_ready_to_send(every_10s, at(moment))]
    assert due == [3.0, 10.0, 20.5, 45.0], "at start, then at the start of each slot (late: at once)"
