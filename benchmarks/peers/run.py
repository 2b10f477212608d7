"""``benchmarks/.venv-peers/bin/python -m benchmarks.peers.run PEER --jobs N --reps R``: prints JSON results.

For each repetition: enqueues N jobs from this process, then starts the peer's worker (one process,
configured as the README says) and times it from its first job to its last (the job writes both times),
as ``benchmarks.bench drain`` does for TaskIQ and for us.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis

from benchmarks.peers.common import BROKER_URL, COUNTER_URL

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

WORKERS = {
    "celery": [
        str(BIN / "celery"),
        "-A",
        "benchmarks.peers.celery_app",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "--loglevel=WARNING",
        "-Q",
        "bench_celery",
    ],
    "dramatiq": [str(BIN / "dramatiq"), "benchmarks.peers.dramatiq_app", "--processes", "1", "--threads", "8"],
    "arq": [str(BIN / "arq"), "benchmarks.peers.arq_app.WorkerSettings"],
    "rq": [
        str(BIN / "rq"),
        "worker",
        "--worker-class",
        "rq.worker.SimpleWorker",
        "-u",
        BROKER_URL,
        "--quiet",
        "bench_rq",
    ],
}


def enqueuer(peer: str):  # type: ignore[no-untyped-def]
    if peer == "celery":
        from benchmarks.peers.celery_app import job

        return lambda run, n: job.apply_async((run, n), queue="bench_celery")
    if peer == "dramatiq":
        from benchmarks.peers.dramatiq_app import job as actor

        return lambda run, n: actor.send(run, n)
    if peer == "rq":
        from rq import Queue

        queue = Queue("bench_rq", connection=redis.Redis.from_url(BROKER_URL))
        return lambda run, n: queue.enqueue("benchmarks.peers.rq_app.job", run, n, result_ttl=0)
    if peer == "arq":
        from arq import create_pool

        from benchmarks.peers.arq_app import REDIS

        loop = asyncio.new_event_loop()
        pool = loop.run_until_complete(create_pool(REDIS, default_queue_name="bench_arq"))
        return lambda run, n: loop.run_until_complete(pool.enqueue_job("job", run, n))
    raise ValueError(peer)


def one_drain(peer: str, send, count: int, counter: redis.Redis) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex
    for number in range(count):
        send(run, number)
    worker = subprocess.Popen(
        WORKERS[peer],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        last, changed = -1, time.perf_counter()
        while True:
            done = counter.scard(f"bench:{run}:ids")
            if done >= count:
                break
            if done != last:
                last, changed = done, time.perf_counter()
            elif time.perf_counter() - changed > 30:  # also covers the worker's start-up
                break
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    unique, runs = counter.scard(f"bench:{run}:ids"), int(counter.get(f"bench:{run}:runs") or 0)
    first, last_at = (float(value or 0) for value in counter.mget(f"bench:{run}:first", f"bench:{run}:last"))
    counter.delete(f"bench:{run}:ids", f"bench:{run}:runs", f"bench:{run}:first", f"bench:{run}:last")
    return (unique - 1) / max(last_at - first, 1e-6), count - unique, runs - unique


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=sorted(WORKERS))
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    redis.Redis.from_url(BROKER_URL).flushdb()
    try:
        send = enqueuer(args.peer)
        counter = redis.Redis.from_url(COUNTER_URL)
        results = [one_drain(args.peer, send, args.jobs, counter) for _ in range(args.reps)]
    finally:
        redis.Redis.from_url(BROKER_URL).flushdb()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
