"""``queue:schedule`` with real processes: several schedulers send each tick once (each claims it on the
connection's server), one keeps going when the other dies, and schedules TaskIQ would accept and never run (or
fail at every tick) are refused at start, naming the schedule and the fix."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import PYTHON, WorkerProcess, connections_env, lines, queue_work, run_python, wait_for

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.schedules"


def schedulers(env: dict[str, str], tmp_path: Path, count: int) -> list[WorkerProcess]:
    command = [PYTHON, "artisan", "queue:schedule", TASKS]
    return [WorkerProcess(env=env, log=tmp_path / f"scheduler{n}.log", command=command) for n in range(count)]


def beats(record_dir: Path) -> Counter[datetime]:
    """How many runs each tick got, from app.schedules.beat's record."""
    return Counter(datetime.fromisoformat(row.split()[0]) for row in lines(record_dir / "beats"))


def latest(record_dir: Path) -> datetime:
    return max(beats(record_dir), default=datetime.fromtimestamp(0, tz=UTC))


def seconds_from(now: float, ahead: float) -> datetime:
    return datetime.fromtimestamp(int(now + ahead), tz=UTC)


def missing(runs: Counter[datetime], first: datetime, last: datetime) -> list[str]:
    """The ticks of an interval of 1 s from ``first`` to ``last`` that never ran."""
    seconds = int((last - first).total_seconds()) + 1
    return [tick.isoformat() for n in range(seconds) if (tick := first + timedelta(seconds=n)) not in runs]


@pytest.mark.parametrize("driver", ["redis", "rabbitmq", "nats"])
def test_two_schedulers_send_each_tick_once_and_one_goes_on_when_the_other_dies(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver, SCHEDULE=json.dumps([{"interval": 1}]))
    with queue_work(driver, TASKS, env=env, log=tmp_path / "worker.log") as worker:
        worker.wait_ready()
        both = schedulers(env, tmp_path, 2)
        try:
            for scheduler in both:
                assert wait_for(lambda s=scheduler: "Scheduler started" in s.output() or not s.alive(), 90)
                assert scheduler.alive(), scheduler.output()
            together = seconds_from(time.time(), 2)
            assert wait_for(lambda: latest(record_dir) >= together + timedelta(seconds=15), 90), worker.output()
            killed = time.time()
            both[0].kill()  # SIGKILL: no shutdown; the other scheduler carries on alone
            alone = seconds_from(killed, 2)
            assert wait_for(lambda: latest(record_dir) >= alone + timedelta(seconds=10), 90), both[1].output()
            runs = beats(record_dir)
            twice = {tick.isoformat(): n for tick, n in runs.items() if n > 1}
            assert not twice, f"ticks sent more than once: {twice}"
            assert not missing(runs, together, seconds_from(killed, -2)), "ticks lost while both ran"
            assert not missing(runs, alone, max(runs) - timedelta(seconds=3)), "ticks lost after one was killed"
        finally:
            for scheduler in both:
                scheduler.stop()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param({"cron": "5-1 * * * *"}, "its minute field '5-1' is a range that runs backwards", id="backwards"),
        pytest.param({"cron": "* * 31 2 *"}, "no date has day of month '31' in month '2'", id="february-31"),
        pytest.param({"cron": "*/100 * * * *"}, "has a step of 100, longer than the field", id="huge-step"),
        pytest.param(
            {"cron": "0 3 * * *", "cron_offset": "Mars/Olympus"}, "cron_offset 'Mars/Olympus' is not a", id="offset"
        ),
        pytest.param({"interval": 60, "args": "abc"}, "args must be a list of the task's positional", id="args"),
        pytest.param({"interval": 60, "kwarg": {"a": 1}}, "unknown key 'kwarg'. Did you mean 'kwargs'?", id="typo"),
    ],
)
def test_a_schedule_that_would_never_run_or_fail_every_tick_is_refused_at_start(
    entry: dict[str, object], message: str, record_dir: Path
) -> None:
    env = {"QUEUE_DRIVER": "redis", "RECORD_DIR": str(record_dir), "SCHEDULE": json.dumps([{**entry}])}
    done = run_python("artisan", "queue:schedule", TASKS, env=env, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "app.schedules:beat: schedule entry 1 " in done.stderr and message in done.stderr, done.stderr
