"""The health route under load: ``python -m benchmarks.health [--requests 300] [--concurrency 30]``.

Boots ``benchmarks.health_app`` (redis the default; rabbitmq and nats checked too) under a real uvicorn and
sends GET /queue/health from one client, ``--concurrency`` at a time. Prints requests per second and the
latency percentiles, and how many connections Redis accepted meanwhile (its ``total_connections_received``; a shared
server counts other clients' too). Needs the local Redis, RabbitMQ and NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHECKED = "redis,rabbitmq,nats"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("QUEUE_", "REDIS_", "RABBITMQ_", "NATS_"))},
        "APP_ENV": "benchmark",
        "QUEUE_DRIVER": "redis",
        "QUEUE_HEALTH_CONNECTIONS": CHECKED,
        "QUEUE_HEALTH_DETAILS": "true",
    }
    argv = [sys.executable, "-m", "uvicorn", "benchmarks.health_app:app.fastapi", "--log-level", "warning"]
    return subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env, start_new_session=True
    )


async def wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if (await client.get(url)).status_code in (200, 503):
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the benchmark app did not start")


async def load(url: str, requests: int, concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one() -> None:
            async with gate:
                started = time.perf_counter()
                response = await client.get(url)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies, statuses


def redis_connections_received() -> int:
    """Connections the local Redis has accepted since it started (every client's: a shared server counts others)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        return int(client.info("stats")["total_connections_received"])
    finally:
        client.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=30)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/queue/health"
    process = start_server(port)
    try:
        await wait_up(url, process)
        before = redis_connections_received()
        per_second, latencies, statuses = await load(url, args.requests, args.concurrency)
        after = redis_connections_received()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    print(f"GET /queue/health, checking {CHECKED}: {args.requests} requests, {args.concurrency} at a time")
    print(f"  statuses: {statuses}")
    print(
        f"  {per_second:.0f} req/s; latency p50 {percentile(latencies, 0.5):.1f} ms, "
        f"p95 {percentile(latencies, 0.95):.1f} ms, max {max(latencies):.1f} ms, "
        f"mean {statistics.fmean(latencies):.1f} ms"
    )
    print(f"  new connections to Redis during the load: {after - before - 1}")


if __name__ == "__main__":
    asyncio.run(main())
