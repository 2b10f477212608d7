"""``benchmarks/.venv-peers/bin/python -m benchmarks.peers.run PEER --jobs N --reps R``: prints JSON results.

Starts the peer's worker (one process, configured as the README says), warms it up, then for each
repetition enqueues N jobs from this process and waits until every one has run.
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


def one_run(send, count: int, counter: redis.Redis) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex
    started = time.perf_counter()
    for number in range(count):
        send(run, number)
    last, changed = -1, time.perf_counter()
    while True:
        done = counter.scard(f"bench:{run}:ids")
        if done >= count:
            break
        if done != last:
            last, changed = done, time.perf_counter()
        elif time.perf_counter() - changed > 15:
            break
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    time.sleep(0.2)
    unique, runs = counter.scard(f"bench:{run}:ids"), int(counter.get(f"bench:{run}:runs") or 0)
    counter.delete(f"bench:{run}:ids", f"bench:{run}:runs")
    return unique / elapsed, count - unique, runs - unique


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=sorted(WORKERS))
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    redis.Redis.from_url(BROKER_URL).flushdb()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        WORKERS[args.peer],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        send = enqueuer(args.peer)
        counter = redis.Redis.from_url(COUNTER_URL)
        one_run(send, 100, counter)  # warm-up: the worker is up
        results = [one_run(send, args.jobs, counter) for _ in range(args.reps)]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        redis.Redis.from_url(BROKER_URL).flushdb()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
