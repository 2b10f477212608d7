"""queue:monitor's alerts as an app with listeners sees them (bootstrap/with_alerts.py): QueueBusy and a log
WARNING when a queue reaches --max, on every server driver; LongWaitDetected once per crossing of a QUEUE_WAITS
threshold, re-armed when the wait goes back under, on the drivers whose workers keep throughput counters."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.helpers import (
    PYTHON,
    SERVER_DRIVERS,
    WorkerProcess,
    connections_env,
    dispatch_jobs,
    lines,
    run_python,
    wait_for,
)

pytestmark = pytest.mark.e2e


def rows(stdout: str) -> dict[str, list[str]]:
    found = [[cell.strip() for cell in line.strip("|").split("|")] for line in stdout.splitlines() if "|" in line]
    return {row[0]: row for row in found[1:]}


def alerts(record_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(record_dir / "alerts")]


def monitor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_python("alerts_artisan", "queue:monitor", *args, env=env, timeout=120)


def finished(driver: str, queue: str) -> int:
    """Jobs finished on ``queue`` in the last minutes, from the counters the workers keep (Connection.throughput)."""

    async def read() -> int:
        manager = QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue}}}))
        try:
            return sum(await manager.connection(driver).throughput(queue, minutes=5) or [])
        finally:
            await manager.shutdown()

    return asyncio.run(read())


def fill(count: int, env: dict[str, str]) -> None:
    dispatch_jobs([{"task": "remember", "args": [i]} for i in range(count)], env, wait=False)


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_queue_at_max_fires_queue_busy_and_logs_a_warning(
    driver: str, queues: dict[str, str], record_dir: Path
) -> None:
    env = connections_env(queues, record_dir, driver)
    queue = queues[driver]
    fill(3, env)
    target = f"{driver}:{queue}"
    assert wait_for(lambda: rows(monitor(target, "--max=100", env=env).stdout)[target][1] == "3", timeout=60)

    done = monitor(target, "--max=3", env=env)  # Laravel's rule: at --max or more
    assert done.returncode == 1, done.stdout + done.stderr
    assert rows(done.stdout)[target][1:] == ["3", "-", "ALERT"], done.stdout
    assert f"Queue {target} holds 3 jobs, --max is 3 (queue:monitor)" in done.stderr
    assert alerts(record_dir) == [{"event": "QueueBusy", "connection": driver, "queue": queue, "size": 3, "limit": 3}]

    calm = monitor(target, "--max=4", env=env)
    assert calm.returncode == 0, calm.stdout + calm.stderr
    assert rows(calm.stdout)[target][3] == "OK"
    assert len(alerts(record_dir)) == 1, "no event below --max"


@pytest.mark.parametrize("driver", [d for d in SERVER_DRIVERS if d != "rabbitmq"])  # RabbitMQ keeps no counters
def test_long_wait_detected_fires_once_per_crossing_and_again_after_going_back_under(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    queue = queues[driver]
    env = connections_env(queues, record_dir, driver, QUEUE_WAITS=json.dumps({f"{driver}:{queue}": 60}))
    target = f"{driver}:{queue}"
    # a worker finishes two jobs, so the queue has a finish rate (its throughput counters) ...
    fill(2, env)
    work = [PYTHON, "artisan", "queue:work", driver, "--tasks=app.jobs"]
    worker = WorkerProcess(env=env, log=tmp_path / "w.log", command=work)
    try:
        assert wait_for(lambda: len(lines(record_dir / "ran")) == 2, timeout=90), worker.output()
        assert wait_for(lambda: finished(driver, queue) == 2, timeout=60), "the worker's counters were not written"
    finally:
        worker.stop()
    # ... then 40 jobs arrive and nobody works them: at about 2 jobs in 5 minutes that is hours of waiting
    fill(40, env)

    first = monitor("--max=1000", env=env)  # no argument: the queues QUEUE_WAITS names are watched too
    assert first.returncode == 1, first.stdout + first.stderr
    assert rows(first.stdout)[target][3] == "LONG WAIT", first.stdout
    wait, limit = rows(first.stdout)[target][2].split(" / ")
    assert float(wait.rstrip("s")) > 60 and limit == "60s"
    assert f"Queue {target} waits about" in first.stderr and "over its 60 s" in first.stderr
    [event] = alerts(record_dir)
    assert (event["event"], event["connection"], event["queue"], event["threshold"]) == (
        "LongWaitDetected", driver, queue, 60.0,
    )  # fmt: skip
    assert event["seconds"] > 60

    again = monitor(target, env=env)  # still over: still an alert, but no second event
    assert again.returncode == 1 and rows(again.stdout)[target][3] == "LONG WAIT", again.stdout
    assert len(alerts(record_dir)) == 1, "LongWaitDetected fired again without going back under"
    assert "waits about" not in again.stderr

    cleared = run_python("artisan", "queue:clear", driver, f"--queue={queue}", env=env)
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    under = monitor(target, env=env)
    assert under.returncode == 0 and rows(under.stdout)[target][2:] == ["0s / 60s", "OK"], under.stdout

    fill(40, env)  # a new crossing: a new event
    over = monitor(target, env=env)
    assert over.returncode == 1, over.stdout
    assert [e["event"] for e in alerts(record_dir)] == ["LongWaitDetected", "LongWaitDetected"]

    run_python("artisan", "queue:clear", driver, f"--queue={queue}", env=env)
    assert monitor(target, env=env).returncode == 0  # back under: nothing left marked on the server


def test_a_stalled_queue_crosses_once_it_has_waited_its_threshold(queues: dict[str, str], record_dir: Path) -> None:
    """Jobs waiting and none ever finished: the wait is the time since queue:monitor first saw it so."""
    queue = queues["redis"]
    env = connections_env(queues, record_dir, "redis", QUEUE_WAITS=json.dumps({"redis": 2}))
    fill(1, env)
    target = f"redis:{queue}"
    first = monitor(target, env=env)
    assert rows(first.stdout)[target][2:] == ["0s / 2s", "OK"], first.stdout
    assert wait_for(lambda: monitor(target, env=env).returncode == 1, timeout=60)
    assert [e["event"] for e in alerts(record_dir)] == ["LongWaitDetected"]
    assert alerts(record_dir)[0]["seconds"] >= 2
    run_python("artisan", "queue:clear", "redis", f"--queue={queue}", env=env)
    assert monitor(target, env=env).returncode == 0


def test_rabbitmq_has_no_wait_estimate_and_says_so(queues: dict[str, str], record_dir: Path) -> None:
    env = connections_env(queues, record_dir, "rabbitmq", QUEUE_WAITS=json.dumps({"rabbitmq": 1}))
    fill(2, env)
    target = f"rabbitmq:{queues['rabbitmq']}"
    done = monitor(target, env=env)
    assert rows(done.stdout)[target][2:] == ["- / 1s", "OK"], done.stdout + done.stderr
