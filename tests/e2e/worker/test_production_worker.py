"""The production worker with real `queue:work` processes: job lines, Laravel's lifecycle flags and exit
codes, queue:restart, @broker.task and middlewares on every connection, queue:schedule, and logging."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.helpers import (
    PYTHON,
    SEED_APP,
    SERVER_DRIVERS,
    WorkerProcess,
    connections_env,
    dispatch_jobs,
    lines,
    queue_work,
    queued,
    ran_jobs,
    run_python,
    wait_for,
)
from tests.servers import free_port

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.jobs"
LINE = re.compile(r"^  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\S+) ([0-9a-f]{8}) \.+ (?:(\d+\.\d\d)ms )?(RUNNING|DONE|FAIL)$")


def work(*args: str, env: dict[str, str], log: Path) -> WorkerProcess:
    return WorkerProcess(env=env, log=log, command=[PYTHON, "artisan", "queue:work", *args])


def exit_code(process: WorkerProcess, timeout: float = 60) -> int:
    assert wait_for(lambda: not process.alive(), timeout=timeout), "the worker did not stop:\n" + process.output()
    return process.stop()


async def reserved(driver: str, queue: str) -> int | None:
    """Jobs taken by a worker and not finished, as the broker counts them (None: RabbitMQ cannot tell)."""
    manager = QueueManager(load_settings({"driver": driver, "connections": {driver: {"queue": queue}}}))
    try:
        return (await manager.connection(driver).counts(queue)).reserved
    finally:
        await manager.shutdown()


def test_a_line_when_each_job_starts_and_ends(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    env = connections_env(queues, record_dir, "redis")
    with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        dispatch_jobs([{"task": "remember", "args": [1]}, {"task": "always_fails", "args": [2]}], env)
        assert wait_for(lambda: worker.output().count(" FAIL") == 2, timeout=30), worker.output()
        output = worker.output()
    rows = [match.groups() for line in output.splitlines() if (match := LINE.match(line))]
    assert ("app.jobs:remember", "RUNNING") in {(task, status) for task, _, _, status in rows}
    done = [row for row in rows if row[0] == "app.jobs:remember" and row[3] == "DONE"]
    assert len(done) == 1 and float(done[0][2]) >= 0, "DONE with its duration"
    failed = [row for row in rows if row[0] == "app.jobs:always_fails" and row[3] == "FAIL"]
    assert len(failed) == 2, "each failed attempt gets a FAIL line"
    assert "      ValueError: job 2 is broken (will be retried)" in output, "the first attempt's error, not TaskIQ's"
    under_fail = [line for line in output.splitlines() if line.startswith("      ValueError: job 2 is broken")]
    assert len(under_fail) == 2 and "NoResultError" not in output, output
    assert "Executing task" not in output, "TaskIQ's own INFO lines are left out (-v shows them)"


def test_json_lines_for_log_shippers_and_quiet(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    env = connections_env(queues, record_dir, "redis")
    with queue_work(TASKS, "--format=json", env=env, log=tmp_path / "json.log") as worker:
        worker.wait_ready()
        [row] = dispatch_jobs([{"task": "remember", "args": [1]}], env)
        assert wait_for(lambda: '"status": "done"' in worker.output(), timeout=30), worker.output()
        records = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    assert [r["status"] for r in records] == ["running", "done"]
    assert {r["job_id"] for r in records} == {row["task_id"]} and records[1]["duration_ms"] >= 0
    assert records[0]["task"] == "app.jobs:remember" and records[0]["queue"] == queues["redis"]
    with queue_work(TASKS, "-q", env=env, log=tmp_path / "quiet.log") as worker:
        worker.wait_ready()
        dispatch_jobs([{"task": "remember", "args": [2]}], env)
        output = worker.output()
    assert "RUNNING" not in output and "DONE" not in output


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_max_jobs_runs_exactly_that_many_and_leaves_the_rest_queued(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver)
    dispatch_jobs([{"task": "remember", "args": [i]} for i in range(8)], env, wait=False)
    worker = work(TASKS, "--max-jobs=3", env=env, log=tmp_path / "w.log")
    assert exit_code(worker) == 0, worker.output()
    assert len(ran_jobs(record_dir)) == 3, worker.output()
    assert wait_for(lambda: asyncio.run(queued(driver, queues[driver])) == 5, timeout=60), "5 jobs stay queued"
    # and none is left held by the worker that stopped (NATS pulled 10 and they came back only after ack_wait,
    # 30 s; the server applies a hand-back a moment after the worker sent it)
    handed_back = wait_for(lambda: asyncio.run(reserved(driver, queues[driver])) in (0, None), timeout=10)
    assert handed_back, "jobs not started were handed back"
    once = work(TASKS, "--once", env=env, log=tmp_path / "once.log")
    assert exit_code(once) == 0 and len(ran_jobs(record_dir)) == 4


def test_stop_when_empty_max_time_and_memory(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    env = connections_env(queues, record_dir, "redis")
    dispatch_jobs([{"task": "sleepy", "args": [i, 0.2]} for i in range(5)], env, wait=False)
    empty = work(TASKS, "--stop-when-empty", env=env, log=tmp_path / "empty.log")
    assert exit_code(empty) == 0, empty.output()
    assert len([line for line in lines(record_dir / "events") if line.startswith("done")]) == 5, "all ran first"
    started = time.monotonic()
    timed = work(TASKS, "--max-time=2", env=env, log=tmp_path / "time.log")
    assert exit_code(timed) == 0 and time.monotonic() - started >= 2, timed.output()
    assert "Stopping the worker (max-time)" in timed.output()
    hungry = work(TASKS, "--memory=1", env=env, log=tmp_path / "memory.log")
    assert exit_code(hungry) == 12, "Laravel's exit code for the memory limit"
    assert "Stopping the worker (memory)" in hungry.output()


def test_worker_wide_tries_backoff_and_timeout(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    env = connections_env(queues, record_dir, "redis")
    with queue_work(TASKS, "--tries=3", "--backoff=0.2", "--timeout=1", env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        # remember declares no retries, so --tries applies; sleepy(…, 3) declares no timeout, so --timeout does
        rows = dispatch_jobs([{"task": "sleepy", "args": [1, 3]}], env)
        output = worker.output()
    assert rows[0]["is_err"] and "TimeoutError" in rows[0]["error"]
    starts = [line for line in lines(record_dir / "events") if line.startswith("start 1 ")]
    assert len(starts) == 3, "--tries=3: three attempts, each stopped after --timeout=1"
    assert "failed after 3 attempts" in output


def test_queue_restart_stops_the_workers_of_every_connection(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, "redis")
    workers = [work(name, TASKS, env=env, log=tmp_path / f"{name}.log") for name in ("redis", "rabbitmq", "nats")]
    for worker in workers:
        worker.wait_ready()
    done = run_python("artisan", "queue:restart", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "on connection 'rabbitmq'" in done.stdout and "Restart signalled" in done.stdout
    for worker in workers:
        assert exit_code(worker, timeout=30) == 0, worker.output()
        assert "Stopping the worker (restart)" in worker.output()
    fresh = work("redis", TASKS, env=env, log=tmp_path / "fresh.log")
    try:
        fresh.wait_ready()
        assert not wait_for(lambda: not fresh.alive(), timeout=4), "a worker started after the signal keeps running"
    finally:
        fresh.stop()


def test_guide_tasks_and_middlewares_work_on_a_non_default_connection(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """@broker.task (the default connection's broker) run by a nats worker; QUEUE_MIDDLEWARES on nats too;
    taskiq-fastapi's Request dependency and Prometheus metrics in that worker."""
    port = free_port()
    env = {
        **connections_env(queues, record_dir, "redis"),
        "RECORD_FILE": str(record_dir / "record"),
        "QUEUE_MIDDLEWARES": '["app.middlewares:Recorder", "app.middlewares:metrics"]',
        "METRICS_PORT": str(port),
    }
    tasks = "--tasks=app.jobs,app.tasks,app.integrations"
    with queue_work("nats", tasks, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        rows = dispatch_jobs(
            [
                {"task": "app.tasks:record", "args": [7], "connection": "nats"},
                {"task": "app.integrations:which_app", "connection": "nats"},
            ],
            env,
        )
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        output = worker.output()
    assert [row["value"] for row in rows] == [7, "FastAPI"], output
    assert "Dropped" not in output and "unknown task" not in output
    assert lines(record_dir / "record") == ["7"]
    assert lines(record_dir / "middleware") == ["app.tasks:record nats", "app.integrations:which_app nats"]
    assert 'received_tasks_total{task_name="app.tasks:record"} 1.0' in metrics


def test_schedules_fire_on_their_connections(queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    env = connections_env(queues, record_dir, "redis")
    with (
        queue_work("redis", TASKS, env=env, log=tmp_path / "redis.log"),
        queue_work("nats", TASKS, env=env, log=tmp_path / "nats.log"),
    ):
        scheduler = WorkerProcess(env=env, log=tmp_path / "s.log", command=[PYTHON, "artisan", "queue:schedule", TASKS])
        try:
            ticks = record_dir / "ticks"
            assert wait_for(lambda: {"shared redis", "on nats nats"} <= set(lines(ticks)), timeout=60), (
                scheduler.output()
            )
            assert "Scheduled app.jobs:tick (every 1s) on 'nats'" in scheduler.output()
        finally:
            assert scheduler.stop() == 0


def test_a_schedule_that_cannot_run_is_refused_at_start() -> None:
    done = run_python("artisan", "queue:schedule", "--tasks=app.bad_schedule", env={"QUEUE_DRIVER": "redis"})
    assert done.returncode == 2
    assert "cron '61 * * * *' is not valid: its minute field '61' is outside 0-59" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-jobs=0"], "--max-jobs must be a whole number >= 1"),
        (["--max-time=soon"], "--max-time must be a number > 0"),
        (["--memory=-5"], "--memory must be a number > 0"),
        (["--format=xml"], "--format must be text or json"),
        (["--workers=2", "--once"], "--once stops one worker process"),
        (["rabbitmq", "--sleep=3"], "--sleep does not apply to connection 'rabbitmq'"),
        (["--tries=zero"], "--tries must be a whole number >= 1"),
        (["--backoff=1,x"], "--backoff must be a number > 0"),
    ],
)
def test_bad_flags_are_refused_with_exit_code_2(args: list[str], message: str) -> None:
    done = run_python("artisan", "queue:work", *args, env={"QUEUE_DRIVER": "redis"}, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stdout + done.stderr


def test_the_give_up_error_keeps_its_level_and_time_with_the_frameworks_log_provider(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """fastapi-startkit's LogProvider bakes a level and a time into the root logger's format."""
    env = {**connections_env(queues, record_dir, "redis"), "QUEUE_APP": "bootstrap.logged:app"}
    command = [PYTHON, "-c", "from bootstrap.logged import app; app.handle_command()", "queue:work", TASKS]
    worker = WorkerProcess(env=env, log=tmp_path / "w.log", command=command)
    try:
        worker.wait_ready()
        time.sleep(1.5)  # so a stale timestamp (the worker's start) differs from the failure's
        before = int(time.time())  # whole seconds: the log's timestamps have no fraction
        dispatch_jobs([{"task": "always_fails", "args": [3]}], env)
        logs = record_dir / "logs"
        assert wait_for(lambda: "failed after 2 attempts" in "".join(p.read_text() for p in logs.glob("*.log")), 30)
        after = time.time()
    finally:
        worker.stop()
    [line] = [line for p in logs.glob("*.log") for line in p.read_text().splitlines() if "failed after 2" in line]
    assert " - ERROR - " in line, line
    logged_at = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
    assert before <= logged_at <= after, f"stale or wrong timestamp ({before=} {after=}): {line}"
    assert SEED_APP.exists()


@pytest.mark.parametrize("driver", ["redis", "nats"])
def test_workers_count_finished_jobs_per_minute(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """What the dashboard's sparkline shows: conn.throughput(queue), from the workers' counters."""
    from queue_manager import QueueManager
    from queue_manager.settings import load_settings

    env = connections_env(queues, record_dir, driver)
    settings = load_settings({"driver": driver, "connections": {driver: {"queue": queues[driver]}}})

    async def finished() -> int:
        manager = QueueManager(settings)
        try:
            return sum(await manager.connection().throughput(minutes=5) or [])
        finally:
            await manager.shutdown()

    with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        dispatch_jobs([{"task": "remember", "args": [i]} for i in range(3)], env)
        assert wait_for(lambda: asyncio.run(finished()) == 3, timeout=60), worker.output()


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_a_paused_queue_is_not_worked_until_resumed(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver)
    target = f"{driver}:{queues[driver]}"
    with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        paused = run_python("artisan", "queue:pause", target, env=env)
        assert paused.returncode == 0 and "paused" in paused.stdout, paused.stdout + paused.stderr
        # Every worker looks at the paused state about once a second: jobs sent before it noticed could be taken.
        assert wait_for(lambda: "is paused: taking no new jobs" in worker.output(), timeout=15), worker.output()
        dispatch_jobs([{"task": "remember", "args": [i]} for i in range(3)], env, wait=False)
        assert not wait_for(lambda: ran_jobs(record_dir), timeout=5), "a job of a paused queue ran"
        assert asyncio.run(queued(driver, queues[driver])) == 3, "dispatching to a paused queue still enqueues"
        sizes = run_python("artisan", "queue:size", target, env=env).stdout
        assert " yes " in sizes, sizes
        resumed = run_python("artisan", "queue:resume", target, env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert wait_for(lambda: len(ran_jobs(record_dir)) == 3, timeout=30), worker.output()
