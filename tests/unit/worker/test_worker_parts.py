"""Pieces of the production worker that need no server: job lines, cron checks, middlewares everywhere."""

from __future__ import annotations

import io
import json

import pytest
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from queue_manager import QueueConfigurationError, QueueManager
from queue_manager.settings import load_settings
from queue_manager.worker.output import JobLines


def message() -> TaskiqMessage:
    return TaskiqMessage(task_id="0123456789abcdef", task_name="app.jobs:send", labels={}, args=[], kwargs={})


def test_text_lines_have_time_task_short_id_duration_and_status() -> None:
    out = io.StringIO()
    lines = JobLines("text", out)
    job = message()
    lines.pre_execute(job)
    lines.post_execute(job, TaskiqResult(is_err=True, return_value=None, execution_time=0, error=KeyError("x")))
    first, second, error = out.getvalue().splitlines()
    assert "app.jobs:send 01234567 " in first and first.endswith(" RUNNING")
    assert second.endswith("ms FAIL") and error == "      KeyError: 'x'"
    assert "\033[" not in out.getvalue(), "no colour when not a terminal"


def test_a_failed_attempt_that_will_be_retried_shows_what_the_job_raised() -> None:
    """The retry middleware swaps the result's error for NoResultError: the line must not show that."""
    from taskiq.exceptions import NoResultError

    for fmt in ("text", "json"):
        out = io.StringIO()
        lines = JobLines(fmt, out)
        job = message()
        lines.pre_execute(job)
        result: TaskiqResult[None] = TaskiqResult(
            is_err=True, return_value=None, execution_time=0, error=ValueError("boom 5")
        )
        lines.on_error(job, result, ValueError("boom 5"))
        result.error = NoResultError()
        lines.post_execute(job, result)
        written = out.getvalue()
        assert "NoResultError" not in written and "ValueError: boom 5" in written, written
        if fmt == "json":
            assert json.loads(written.splitlines()[1])["retrying"] is True
        else:
            assert written.splitlines()[2] == "      ValueError: boom 5 (will be retried)"


def test_json_lines_parse_and_quiet_writes_nothing() -> None:
    out = io.StringIO()
    lines = JobLines("json", out, default_queue="emails")
    job = message()
    lines.pre_execute(job)
    lines.post_execute(job, TaskiqResult(is_err=False, return_value=1, execution_time=0))
    running, done = (json.loads(line) for line in out.getvalue().splitlines())
    assert (running["status"], done["status"], done["queue"]) == ("running", "done", "emails")
    quiet = io.StringIO()
    JobLines("quiet", quiet).pre_execute(job)
    assert quiet.getvalue() == ""


class Counting(TaskiqMiddleware):
    made = 0

    def __init__(self) -> None:
        super().__init__()
        Counting.made += 1


def test_middlewares_reach_every_connection_each_with_its_own_broker(clean_env: pytest.MonkeyPatch) -> None:
    Counting.made = 0
    manager = QueueManager(load_settings({"driver": "memory", "middlewares": [f"{__name__}:Counting"]}))
    redis, nats = manager.connection("redis"), manager.connection("nats")
    mine = [m for m in redis.broker.middlewares if isinstance(m, Counting)]
    theirs = [m for m in nats.broker.middlewares if isinstance(m, Counting)]
    assert len(mine) == len(theirs) == 1 and mine[0].broker is redis.broker and theirs[0].broker is nats.broker
    assert Counting.made == 1, "made once (Prometheus metrics may only be registered once), copied per broker"
    configured = []
    manager.each_broker(configured.append)
    manager.add_middlewares(Counting)
    later = manager.connection("rabbitmq")
    assert configured == [redis.broker, nats.broker, later.broker], "resolved ones now, later ones when resolved"
    assert sum(isinstance(m, Counting) for m in later.broker.middlewares) == 2
    with pytest.raises(QueueConfigurationError, match=r"neither a TaskIQ middleware .* nor a job middleware"):
        manager.add_middlewares(object)  # type: ignore[arg-type]


def test_a_task_declared_on_one_connections_broker_is_known_to_every_connection(clean_env: pytest.MonkeyPatch) -> None:
    manager = QueueManager(load_settings({"driver": "memory"}))
    default = manager.connection().broker

    @default.task(task_name="tests.worker_parts.guide_task")
    async def guide_task() -> int:
        return 1

    for name in ("redis", "nats", "rabbitmq"):
        assert manager.connection(name).broker.find_task("tests.worker_parts.guide_task") is guide_task


def test_a_taskiq_worker_process_knows_its_slots_from_its_command_line() -> None:
    from queue_manager.worker.capacity import worker_capacity

    assert worker_capacity(["worker", "app:broker", "app.tasks", "--max-async-tasks", "7", "--max-prefetch", "2"]) == 9
    assert worker_capacity(["worker", "app:broker", "--max-async-tasks", "0"]) == 0, "0: no limit"
    assert worker_capacity(["pytest", "-q"]) is None, "not a taskiq worker: learn the slots instead"
