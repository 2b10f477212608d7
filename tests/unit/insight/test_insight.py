"""Insight on the memory connection: what a worker records (metrics, recent and failed jobs, tags, heartbeats) and
what conn.metrics/recent_jobs/workers read back. The servers' side is in tests/e2e/insight."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from drivers.base.control import Entry
from drivers.base.labels import QUEUED_AT, TAGS
from queue_manager import dispatch, task
from queue_manager.insight import histogram
from queue_manager.insight.names import workers_map
from queue_manager.insight.recorder import InsightRecorder
from queue_manager.insight.records import REDACTED, kept_arguments, named_arguments
from queue_manager.insight.state import InsightUnavailable, insight_state
from queue_manager.insight.tags import auto_tags, merge_tags
from queue_manager.settings.insight import InsightSettings


class Customer(BaseModel):
    id: int
    name: str


@task(tags=["billing"])
async def charge(customer: Customer, amount: int, api_token: str = "") -> int:
    if amount < 0:
        raise ValueError(f"cannot charge {amount}")
    return amount


@pytest.fixture
def conn(make_app: Callable[..., Any]) -> Any:
    app = make_app(QUEUE_DRIVER="memory")
    return app.make("queue.manager").connection("memory")


def recorder_on(conn: Any, **settings: Any) -> InsightRecorder:
    recorder = InsightRecorder(
        InsightSettings(flush_every=60, **settings), conn.name, ["default"], conn.queue, lambda: insight_state(conn)
    )
    conn.broker.add_middlewares(recorder)
    return recorder


def test_percentiles_come_from_fixed_buckets_and_never_exceed_the_largest_value() -> None:
    counts = histogram.empty()
    for ms in [3.0] * 90 + [400.0] * 10:
        counts[histogram.bucket(ms)] += 1
    p50 = histogram.percentile(counts, 0.5, 400.0)
    p95 = histogram.percentile(counts, 0.95, 400.0)
    assert p50 is not None and 2 < p50 <= 5
    assert p95 is not None and 250 < p95 <= 400
    assert histogram.percentile(counts, 1.0, 400.0) == 400.0
    assert histogram.percentile(histogram.empty(), 0.5, 0.0) is None


def test_secret_looking_arguments_are_redacted_and_long_ones_cut() -> None:
    def login(user: str, password: str, options: dict[str, Any]) -> None: ...

    named = named_arguments(login, ["ada", "hunter2"], {"options": {"api_key": "k", "depth": 1}})
    text, cut = kept_arguments(named, 2000)
    assert json.loads(text) == {"user": "ada", "password": REDACTED, "options": {"api_key": REDACTED, "depth": 1}}
    assert not cut
    text, cut = kept_arguments({"blob": "x" * 5000}, 200)
    kept = json.loads(text)
    assert cut and isinstance(kept, str) and len(kept) == 201 and kept.endswith("…")
    assert named_arguments(login, ["ada", "hunter2", {}, "extra"], {}) == {"args": ["ada", "hunter2", {}, "extra"]}

    def many(first: str, *rest: str, token: str = "") -> None: ...

    assert named_arguments(many, ["a", "b", "c"], {"token": "t"}) == {"first": "a", "rest": ["b", "c"], "token": "t"}


def test_models_among_the_arguments_are_tagged_and_tags_merge_once() -> None:
    class Order:
        def __init__(self, id: int) -> None:
            self.id = id

    assert auto_tags([Customer(id=42, name="a"), 7, "x"], {"order": Order(9)}) == ["Customer:42", "Order:9"]
    assert merge_tags(["billing"], "a,b", ("a", "c,d")) == "billing,a,b,cd"  # a list item is one tag
    assert merge_tags(None, []) is None


async def test_dispatch_carries_the_tasks_the_calls_and_the_models_tags_and_its_send_time(conn: Any) -> None:
    pending = dispatch(charge, Customer(id=42, name="Ada"), 5).with_tags("vip")
    message = pending.kicker(conn.broker)._prepare_message(*pending.args, **pending.kwargs)
    pending.close()
    assert message.labels[TAGS] == "billing,vip,Customer:42"
    assert abs(float(message.labels[QUEUED_AT]) - time.time()) < 5


async def test_a_worker_records_metrics_recent_and_failed_jobs_and_they_are_searched(conn: Any) -> None:
    recorder = recorder_on(conn, monitored_tags=["Customer:7"])
    for amount in (1, 2, 3):
        await (await charge.dispatch(Customer(id=amount, name="x"), amount, "s3cret")).wait_result(timeout=5)
    await (await charge.dispatch(Customer(id=7, name="x"), -1).with_tags("urgent")).wait_result(timeout=5)
    await recorder.flush()

    found = await conn.metrics()
    [row] = found["tasks"]
    assert (row["task"], row["queue"], row["jobs"], row["failed"]) == (charge.task_name, conn.queue, 4, 1)
    assert row["per_minute"][-1] == 4 and len(row["per_minute"]) == 60
    assert row["runtime_ms"]["max"] is not None and row["wait_ms"]["p95"] is not None
    assert (await conn.metrics(task="no-such-task"))["tasks"] == []

    completed = await conn.recent_jobs()
    assert [job["arguments"]["amount"] for job in completed] == [3, 2, 1]  # newest first
    assert completed[0]["arguments"]["api_token"] == REDACTED
    assert completed[0]["arguments"]["customer"] == {"id": 3, "name": "x"}
    assert completed[0]["tags"] == ["billing", "Customer:3"]
    [failed] = await conn.recent_jobs(failed=True)
    assert failed["error"].startswith("ValueError: cannot charge -1")
    assert failed["tags"] == ["billing", "urgent", "Customer:7"]
    assert [job["arguments"]["amount"] for job in await conn.recent_jobs(tag="Customer:2")] == [2]
    assert await conn.recent_jobs(task="charge", tag="nothing") == []
    assert [job["id"] for job in await conn.recent_jobs(failed=True, tag="Customer:7")] == [failed["id"]]


async def test_recent_jobs_keep_their_cap(conn: Any) -> None:
    recorder = recorder_on(conn, recent_jobs=3)
    for amount in range(5):
        await (await charge.dispatch(Customer(id=1, name="x"), amount)).wait_result(timeout=5)
        await recorder.flush()
    assert [job["arguments"]["amount"] for job in await conn.recent_jobs(limit=100)] == [4, 3, 2]


async def test_workers_are_listed_while_they_beat_and_dropped_after_two_beats(conn: Any) -> None:
    recorder = recorder_on(conn)
    await recorder.flush()
    [beat] = await conn.workers()
    assert beat["id"] == recorder.worker_id and beat["queues"] == ["default"] and beat["jobs_done"] == 0
    state = insight_state(conn)
    stale = {**beat, "id": "gone:1:x", "seen": time.time() - 2 * beat["every"] - 2}
    await state.write([Entry(workers_map(conn.name), "gone:1:x", json.dumps(stale), 60)])
    assert [found["id"] for found in await conn.workers()] == [recorder.worker_id]
    assert "gone:1:x" not in (await state.entries([workers_map(conn.name)]))[0]  # removed, not only hidden
    await recorder.shutdown()
    assert await conn.workers() == []


async def test_a_failing_write_logs_one_warning_and_jobs_keep_running(
    conn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broken = True

    def state() -> Any:
        if broken:
            raise ConnectionError("the server is away")
        return insight_state(conn)

    recorder = InsightRecorder(InsightSettings(flush_every=60), conn.name, [], conn.queue, state)
    conn.broker.add_middlewares(recorder)
    with caplog.at_level(logging.WARNING, logger="queue_manager.worker"):
        for amount in (1, 2):
            result = await (await charge.dispatch(Customer(id=1, name="x"), amount)).wait_result(timeout=5)
            assert result.return_value == amount
            await recorder.flush()
    assert len([r for r in caplog.records if "Could not record metrics" in r.message]) == 1
    broken = False
    await recorder.flush()  # what was missed is written once the server answers
    assert (await conn.metrics())["tasks"][0]["jobs"] == 2
    assert len(await conn.recent_jobs()) == 2


async def test_a_connection_without_insight_names_the_setting_that_fixes_it(make_app: Callable[..., Any]) -> None:
    app = make_app(QUEUE_DRIVER="memory")
    rabbit = app.make("queue.manager").connection("rabbitmq")
    with pytest.raises(InsightUnavailable, match="QUEUE_CONNECTIONS__RABBITMQ__STATE"):
        await rabbit.metrics()


async def test_jobs_that_end_while_a_write_is_under_way_are_written_by_the_next(conn: Any) -> None:
    real, gate = insight_state(conn), asyncio.Event()

    class Slow:
        async def write(self, writes: Any) -> None:
            await gate.wait()
            await real.write(writes)

    recorder = recorder_on(conn)
    recorder._state = Slow  # type: ignore[assignment]
    await (await charge.dispatch(Customer(id=1, name="x"), 1)).wait_result(timeout=5)
    writing = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0.05)  # the write is waiting on the server
    await (await charge.dispatch(Customer(id=1, name="x"), 2)).wait_result(timeout=5)
    gate.set()
    await writing
    assert [job["arguments"]["amount"] for job in await conn.recent_jobs()] == [1]
    await recorder.flush()
    assert [job["arguments"]["amount"] for job in await conn.recent_jobs()] == [2, 1]
    assert (await conn.metrics())["tasks"][0]["jobs"] == 2


async def test_a_tag_monitored_at_run_time_keeps_its_jobs_in_a_list_of_their_own(conn: Any) -> None:
    recorder = recorder_on(conn, recent_jobs=1)
    assert await conn.monitor_tag("Customer:5") == "Customer:5"
    assert await conn.monitored_tags() == ["Customer:5"]
    await recorder.look_for_monitored_tags()
    for customer in (5, 6, 7):
        await (await charge.dispatch(Customer(id=customer, name="x"), customer)).wait_result(timeout=5)
    await recorder.flush()
    assert [job["arguments"]["amount"] for job in await conn.recent_jobs(limit=100)] == [7]  # the cap of 1
    assert [job["arguments"]["amount"] for job in await conn.recent_jobs(tag="Customer:5")] == [5]  # kept apart
    await conn.stop_monitoring_tag("Customer:5")
    assert await conn.monitored_tags() == []
    await recorder.look_for_monitored_tags()
    assert "Customer:5" not in recorder.tagged
    with pytest.raises(ValueError, match="Cannot monitor the tag ','"):
        await conn.monitor_tag(",")
