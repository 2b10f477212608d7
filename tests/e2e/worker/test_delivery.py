"""Delivery guarantees under faults: workers SIGKILLed mid-run, broker servers restarted.

Each test prints one `MEASURED` line; the README's "Delivery guarantees" table is filled from them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import connections_env, dispatch_jobs, lines, queue_work, queued, ran_jobs, wait_for
from tests.servers import private_nats, private_redis

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
TASKS = "--tasks=app.jobs"
JOBS = 200
# Short redelivery timers so the tests run in seconds; the defaults are documented in the README.
FAST_REDELIVERY = {
    "QUEUE_CONNECTIONS__REDIS__OPTIONS__RETRY_AFTER": "3",
    "QUEUE_CONNECTIONS__REDIS_STREAM__OPTIONS__IDLE_TIMEOUT_MS": "3000",
    "QUEUE_CONNECTIONS__NATS__OPTIONS__ACK_WAIT": "3",
}


def env_for(driver: str, queues: dict[str, str], record_dir: Path) -> dict[str, str]:
    return connections_env(queues, record_dir, driver, **FAST_REDELIVERY)


def events(record_dir: Path) -> list[tuple[str, int, float, int]]:
    rows = (line.split() for line in lines(record_dir / "events"))
    return [(kind, int(job), float(at), int(pid)) for kind, job, at, pid in rows]


def done(record_dir: Path) -> set[int]:
    return {job for kind, job, _, _ in events(record_dir) if kind == "done"}


def measure(name: str, **values: object) -> None:
    print(f"MEASURED {name} {json.dumps(values, sort_keys=True)}")


def stream_state(queue: str) -> tuple[int, int]:
    """(entries in the stream, consumers in its group) of a redis_stream queue."""
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        key = f"queues:stream:{queue}"
        return int(client.xlen(key)), len(client.xinfo_consumers(key, "workers"))
    finally:
        client.close()


@pytest.mark.parametrize("driver", ["redis_stream", "rabbitmq", "nats", "redis"])
def test_worker_killed_twice_mid_run(driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path) -> None:
    """200 jobs of ~0.2 s sent before any worker; the worker's process group is SIGKILLed twice."""
    env = env_for(driver, queues, record_dir)
    dispatch_jobs([{"task": "sleepy", "args": [i]} for i in range(JOBS)], env, wait=False)
    kills: list[tuple[float, set[int]]] = []
    for round_, threshold in enumerate((30, 90)):
        with queue_work("--max-async-tasks=10", TASKS, env=env, log=tmp_path / f"w{round_}.log") as worker:
            assert wait_for(lambda t=threshold: len(done(record_dir)) >= t, timeout=90), worker.output()
            killed_at = time.time()
            worker.kill()
            started = {job for kind, job, at, _ in events(record_dir) if kind == "start" and at <= killed_at}
            kills.append((killed_at, started - done(record_dir)))
    with queue_work("--max-async-tasks=10", TASKS, env=env, log=tmp_path / "final.log") as worker:
        assert wait_for(lambda: done(record_dir) == set(range(JOBS)), timeout=120), worker.output()
        if driver == "redis_stream":
            assert wait_for(lambda: stream_state(queues[driver]) == (0, 1), timeout=30), stream_state(queues[driver])

    in_flight = set().union(*(jobs for _, jobs in kills))
    reruns = {}
    for killed_at, jobs in kills:
        for job in jobs:
            later = [at for kind, j, at, _ in events(record_dir) if kind == "start" and j == job and at > killed_at]
            if later:
                reruns[job] = round(min(later) - killed_at, 2)
    starts = [job for kind, job, _, _ in events(record_dir) if kind == "start"]
    lost = sorted(set(range(JOBS)) - done(record_dir))
    measure(
        f"worker-kill {driver}",
        in_flight_at_kills=len(in_flight),
        lost=len(lost),
        rerun=len(reruns),
        max_seconds_to_rerun=max(reruns.values(), default=None),
        duplicate_starts=len(starts) - len(set(starts)),
    )
    assert lost == [], f"{driver} lost jobs {lost}"
    assert set(reruns) == in_flight, "every job running in a killed worker runs again"
    assert max(reruns.values(), default=0) <= 15


PRIVATE_SERVERS = {
    "redis": (private_redis, "REDIS_URL", "redis://127.0.0.1:{port}/0"),
    "redis_stream": (private_redis, "REDIS_URL", "redis://127.0.0.1:{port}/0"),
    "nats": (private_nats, "NATS_URL", "nats://127.0.0.1:{port}"),
}


@pytest.mark.parametrize("driver", sorted(PRIVATE_SERVERS))
def test_worker_reconnects_after_its_server_restarts(driver: str, tmp_path: Path, record_dir: Path) -> None:
    """A private server on another loopback port is stopped and started under a running worker."""
    start_server, url_variable, url = PRIVATE_SERVERS[driver]
    with start_server(tmp_path) as server:
        env = {"QUEUE_DRIVER": driver, url_variable: url.format(port=server.port), "RECORD_DIR": str(record_dir)}
        with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
            dispatch_jobs([{"task": "remember", "args": [i]} for i in range(5)], env)
            restarted_at = time.time()
            server.restart(pause=2)
            rows = dispatch_jobs([{"task": "remember", "args": [i]} for i in range(5, 10)], env, timeout=90)
            ran = ran_jobs(record_dir)
            output = worker.output()
        assert sorted(ran) == list(range(10)) and all(not row["is_err"] for row in rows)
        assert output.count("Worker ready") == 1, f"the worker process crashed:\n{output}"
        if driver.startswith("redis"):
            assert "reconnecting" in output, "our reconnect loop, not a crash, brought the worker back"
        measure(f"broker-restart {driver}", seconds_to_first_job_after_restart=round(ran[5][0] - restarted_at, 2))


def close_rabbitmq_connections(marker: str) -> int:
    """Close, from the server side, every connection whose client name mentions ``marker``."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    pids = [line.split("\t")[0] for line in listing.splitlines() if marker in line]
    for pid in pids:
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "fault test"], timeout=60, check=True)
    return len(pids)


def test_worker_reconnects_after_rabbitmq_closes_its_connections(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = env_for("rabbitmq", queues, record_dir)
    with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
        dispatch_jobs([{"task": "remember", "args": [i]} for i in range(5)], env)
        assert close_rabbitmq_connections(queues["rabbitmq"]) >= 2, "the worker's read and write connections"
        closed_at = time.time()
        rows = dispatch_jobs([{"task": "remember", "args": [i]} for i in range(5, 10)], env, timeout=90)
        ran = ran_jobs(record_dir)
        output = worker.output()
    assert sorted(ran) == list(range(10)) and all(not row["is_err"] for row in rows)
    assert output.count("Worker ready") == 1, f"the worker process crashed:\n{output}"
    measure("broker-restart rabbitmq", seconds_to_first_job_after_close=round(ran[5][0] - closed_at, 2))


def test_nats_workers_share_the_work_and_each_job_runs_once(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = env_for("nats", queues, record_dir)
    with (
        queue_work(TASKS, env=env, log=tmp_path / "a.log") as a,
        queue_work(TASKS, env=env, log=tmp_path / "b.log") as b,
    ):
        a.wait_ready()
        b.wait_ready()
        dispatch_jobs([{"task": "sleepy", "args": [i, 0.1]} for i in range(60)], env)
    starts = [(job, pid) for kind, job, _, pid in events(record_dir) if kind == "start"]
    assert sorted(job for job, _ in starts) == list(range(60)), "each job ran exactly once"
    assert len({pid for _, pid in starts}) == 2, "both workers took jobs"


def test_nats_job_longer_than_ack_wait_is_not_started_twice(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = {**env_for("nats", queues, record_dir), "QUEUE_CONNECTIONS__NATS__OPTIONS__ACK_WAIT": "2"}
    with (
        queue_work(TASKS, env=env, log=tmp_path / "a.log") as a,
        queue_work(TASKS, env=env, log=tmp_path / "b.log") as b,
    ):
        a.wait_ready()
        b.wait_ready()
        [row] = dispatch_jobs([{"task": "sleepy", "args": [1, 7]}], env)
        assert not wait_for(lambda: len(events(record_dir)) > 2, timeout=3), "a second start after the job ended"
    assert row["value"] == 1
    assert [kind for kind, *_ in events(record_dir)] == ["start", "done"], "ran once, though 7 s > ack_wait 2 s"


@pytest.mark.parametrize("driver", ["nats", "redis", "redis_stream"])
def test_jobs_a_busy_worker_took_are_not_handed_to_another_meanwhile(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """Each job is shorter than the redelivery timer (3 s here), together they are longer: a job a worker took
    and has not started yet must not go to a second worker meanwhile (on NATS a worker with one slot pulled a
    batch of 10, and the server handed the ones still waiting to the other worker after ack_wait)."""
    env = env_for(driver, queues, record_dir)
    dispatch_jobs([{"task": "sleepy", "args": [i, 1.2]} for i in range(6)], env, wait=False)
    with queue_work("--max-async-tasks=1", TASKS, env=env, log=tmp_path / "a.log") as a:
        assert wait_for(lambda: len(events(record_dir)) > 0, timeout=60), a.output()
        with queue_work("--max-async-tasks=1", TASKS, env=env, log=tmp_path / "b.log") as b:
            assert wait_for(lambda: done(record_dir) == set(range(6)), timeout=90), a.output() + b.output()
            assert not wait_for(lambda: len(events(record_dir)) > 12, timeout=4), "a job started again afterwards"
    starts = sorted(job for kind, job, _, _ in events(record_dir) if kind == "start")
    assert starts == list(range(6)), f"each job started once: {starts}"


@pytest.mark.parametrize("driver", ["rabbitmq", "redis"])
def test_worker_shutdown_waits_a_bounded_time_for_running_jobs(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = env_for(driver, queues, record_dir)
    with queue_work("--shutdown-timeout=3", TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        dispatch_jobs([{"task": "sleepy", "args": [1, 1.5]}, {"task": "sleepy", "args": [2, 60]}], env, wait=False)
        assert wait_for(lambda: len(events(record_dir)) >= 2, timeout=30), worker.output()
        stopping = time.time()
        worker.stop(timeout=30)
        stopped_after = time.time() - stopping
    finished = {job for kind, job, _, _ in events(record_dir) if kind == "done"}
    assert finished == {1}, "the short job finished during shutdown; the long one was not waited for"
    assert stopped_after < 15, f"shutdown took {stopped_after:.1f}s with --shutdown-timeout=3"
    back = wait_for(lambda: asyncio.run(queued(driver, queues[driver])) == 1, timeout=30)
    assert back, "the unfinished job went back to its queue for the next worker"
    measure(f"shutdown {driver}", seconds_to_stop_with_a_60s_job_running=round(stopped_after, 2))


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
def test_a_job_longer_than_the_redelivery_timer_is_not_run_twice(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = env_for(driver, queues, record_dir)  # retry_after 3 s / idle_timeout_ms 3000
    with (
        queue_work(TASKS, env=env, log=tmp_path / "a.log") as a,
        queue_work(TASKS, env=env, log=tmp_path / "b.log") as b,
    ):
        a.wait_ready()
        b.wait_ready()
        [row] = dispatch_jobs([{"task": "sleepy", "args": [1, 8]}], env)
        assert not wait_for(lambda: len(events(record_dir)) > 2, timeout=3), "a second start after the job ended"
    assert row["value"] == 1
    assert [kind for kind, *_ in events(record_dir)] == ["start", "done"], "ran once, though 8 s > the 3 s timer"
