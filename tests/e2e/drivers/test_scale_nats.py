"""A real queue:work worker on a 3-node NATS JetStream cluster (replicas=3) while the stream's leader is SIGKILLed
mid-run and started again: no job lost, no running job started a second time. Prints one ``MEASURED`` line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.clusters import nats_cluster
from tests.helpers import connections_env, dispatch_jobs, lines, queue_work, unique, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
JOBS = 40
SECONDS = 3.0  # each job runs longer than the election takes, so some run across the kill


def events(record_dir: Path) -> list[tuple[str, int, float, int]]:
    rows = (line.split() for line in lines(record_dir / "events"))
    return [(kind, int(job), float(at), int(pid)) for kind, job, at, pid in rows]


def overlapping_starts(record: list[tuple[str, int, float, int]]) -> list[int]:
    """Jobs started again while an earlier start of theirs had not finished (run twice at once)."""
    open_runs: dict[int, int] = {}
    twice: list[int] = []
    for kind, job, _, _ in sorted(record, key=lambda row: row[2]):
        if kind == "start":
            if open_runs.get(job, 0) > 0:
                twice.append(job)
            open_runs[job] = open_runs.get(job, 0) + 1
        else:
            open_runs[job] = open_runs.get(job, 0) - 1
    return twice


def test_worker_keeps_going_when_the_stream_leader_is_killed(tmp_path: Path, record_dir: Path) -> None:
    stream, queue = unique("SCALE"), unique("q")
    with nats_cluster(tmp_path) as cluster:
        env = connections_env(
            {"nats": queue},
            record_dir,
            "nats",
            NATS_URL=cluster.url,
            QUEUE_CONNECTIONS__NATS__OPTIONS__STREAM=stream,
            QUEUE_CONNECTIONS__NATS__OPTIONS__SUBJECT_PREFIX=stream.lower(),
            QUEUE_CONNECTIONS__NATS__OPTIONS__RESULT_BUCKET=f"{stream}_results",
            QUEUE_CONNECTIONS__NATS__OPTIONS__REPLICAS="3",
            QUEUE_CONNECTIONS__NATS__OPTIONS__ACK_WAIT="10",
        )
        dispatch_jobs([{"task": "sleepy", "args": [i, SECONDS]} for i in range(JOBS)], env, wait=False)
        leader = cluster.leader_index(stream)
        with queue_work("--max-async-tasks=10", "--tasks=app.jobs", env=env, log=tmp_path / "w.log") as worker:
            assert wait_for(lambda: sum(k == "done" for k, *_ in events(record_dir)) >= 10, timeout=120), (
                worker.output()
            )
            killed_at = time.time()
            cluster.kill(leader)
            running = {job for kind, job, *_ in events(record_dir) if kind == "start"} - {
                job for kind, job, *_ in events(record_dir) if kind == "done"
            }
            # The first job to finish after the kill, and the first one started after it.
            assert wait_for(lambda: any(k == "start" and at > killed_at for k, _, at, _ in events(record_dir)), 120)
            first_start = min(at for k, _, at, _ in events(record_dir) if k == "start" and at > killed_at)
            cluster.start(leader)
            restarted_at = time.time()
            done = lambda: {job for kind, job, *_ in events(record_dir) if kind == "done"}  # noqa: E731
            assert wait_for(lambda: done() >= set(range(JOBS)), timeout=180), worker.output()
            output = worker.output()
        record = events(record_dir)
        starts = [job for kind, job, *_ in record if kind == "start"]
        twice = overlapping_starts(record)
        lost = sorted(set(range(JOBS)) - done())
        measure = {
            "jobs": JOBS,
            "running_at_kill": len(running),
            "lost": len(lost),
            "duplicate_starts": len(starts) - len(set(starts)),
            "started_while_running": len(twice),
            "seconds_to_first_start_after_kill": round(first_start - killed_at, 2),
            "seconds_node_down": round(restarted_at - killed_at, 2),
        }
        print(f"MEASURED nats-cluster-leader-kill {json.dumps(measure, sort_keys=True)}")
        assert lost == [], f"lost jobs {lost}"
        assert twice == [], f"jobs started again while running: {twice}"
        assert output.count("Worker ready") == 1, f"the worker process restarted:\n{output}"
