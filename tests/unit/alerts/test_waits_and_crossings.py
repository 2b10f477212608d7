"""Long-wait alerts: the wait estimate, which threshold applies (QUEUE_WAITS), and LongWaitDetected once per
crossing (fires when the wait goes over, stays quiet while it stays over, re-arms when it goes back under)."""

from __future__ import annotations

import asyncio

import pytest

from drivers import QueueConfigurationError
from queue_manager.alerts.crossings import Crossings, InProcess, decide
from queue_manager.alerts.waits import estimate, finish_rate, named_queues, threshold
from queue_manager.settings import load_settings


def test_the_rule_fires_once_per_crossing() -> None:
    assert decide(False, 10, 60) == "under"
    assert decide(False, 60, 60) == "crossed"
    assert decide(True, 500, 60) == "still-over"
    assert decide(True, 59, 60) == "back-under"
    assert decide(False, None, 60) == "under"  # unknown: nothing to say
    assert decide(True, None, 60) == "still-over"  # unknown: an alert is not cleared by a missing reading


def test_a_sequence_of_readings_fires_on_each_new_crossing_only() -> None:
    crossings = Crossings(InProcess())
    waits = [5, 70, 80, 90, 30, 10, 65, 100, None, 20]
    changes = [asyncio.run(crossings.observe("emails", wait, 60)) for wait in waits]
    assert [wait for wait, change in zip(waits, changes, strict=True) if change == "crossed"] == [70, 65]
    assert changes[4] == "back-under" and changes[9] == "back-under"


def test_each_queue_crosses_on_its_own() -> None:
    crossings = Crossings(InProcess())
    assert asyncio.run(crossings.observe("a", 100, 60)) == "crossed"
    assert asyncio.run(crossings.observe("b", 100, 60)) == "crossed"
    assert asyncio.run(crossings.observe("a", 100, 60)) == "still-over"


def test_a_stalled_queue_waits_since_it_was_first_seen_stalled() -> None:
    crossings = Crossings(InProcess())
    assert asyncio.run(crossings.stalled_for("q", True, now=1000.0)) == 0.0
    assert asyncio.run(crossings.stalled_for("q", True, now=1090.0)) == 90.0
    assert asyncio.run(crossings.stalled_for("q", False, now=1100.0)) is None  # moving again: forgotten
    assert asyncio.run(crossings.stalled_for("q", True, now=2000.0)) == 0.0


def test_the_wait_is_the_backlog_over_the_finish_rate() -> None:
    # 5 minutes: four whole ones and 30 s of the current one; 270 jobs in 270 s: 1 job/s
    assert finish_rate([60, 60, 60, 60, 30], seconds_into_minute=30) == pytest.approx(1.0)
    assert estimate(120, 1.0) == 120.0
    assert estimate(0, 0.0) == 0.0  # an empty queue waits for nothing
    assert estimate(5, 0.0) is None  # nothing finished: no estimate (a stalled queue is timed apart)
    assert finish_rate([], 10) == 0.0


def test_the_threshold_of_a_queue() -> None:
    waits = {"redis:emails": 30.0, "redis:*": 300.0, "nats": 60.0}
    assert threshold(waits, "redis", "emails", "default") == 30.0
    assert threshold(waits, "redis", "reports", "default") == 300.0
    assert threshold(waits, "nats", "default", "default") == 60.0  # a bare connection: its own queue
    assert threshold(waits, "nats", "other", "default") is None
    assert named_queues(waits, {"redis": "default", "nats": "jobs"}) == [("redis", "emails"), ("nats", "jobs")]


def test_queue_waits_settings_are_checked_with_a_did_you_mean() -> None:
    assert load_settings({"waits": {"redis:default": 60}}).waits == {"redis:default": 60.0}
    with pytest.raises(QueueConfigurationError, match=r"unknown connection 'reddis'.*Did you mean 'redis'"):
        load_settings({"waits": {"reddis:default": 60}})
    with pytest.raises(QueueConfigurationError, match="must be a number of seconds > 0"):
        load_settings({"waits": {"redis": -1}})
    with pytest.raises(QueueConfigurationError, match="no queue after the colon"):
        load_settings({"waits": {"redis:": 10}})


def test_queue_waits_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_WAITS", '{"redis:default": 60, "nats:*": 120}')
    assert load_settings().waits == {"redis:default": 60.0, "nats:*": 120.0}
