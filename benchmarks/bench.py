"""Benchmarks: ``python -m benchmarks.bench [dispatch|e2e|boot|bulk|all]`` (``make bench``).

Every comparison runs its variants back to back in one run and reports the median of ``--reps``
repetitions with min-max, and the ratio to the baseline. Results are printed and written to
``benchmarks/results/<date>-<what>.md``. Needs the local Redis, RabbitMQ and NATS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PEERS_PYTHON = ROOT / "benchmarks" / ".venv-peers" / "bin" / "python"
DRIVERS = ("redis", "redis_stream", "rabbitmq", "nats")
BATCH = 100


# -- reporting ---------------------------------------------------------------------------------
def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    libs = ", ".join(
        f"{name} {version(name)}" for name in ("taskiq", "taskiq-redis", "taskiq-aio-pika", "taskiq-nats", "redis")
    )
    return (
        f"{date.today().isoformat()}, {os.cpu_count()} cores {cpu}, Python {platform.python_version()}, {libs}; "
        "Redis, RabbitMQ and NATS on loopback"
    )


def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def cell(values: list[float], unit: str = "", digits: int = 0) -> str:
    median, low, high = summary(values)
    return f"{median:,.{digits}f}{unit} ({low:,.{digits}f}–{high:,.{digits}f})"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write(name: str, title: str, body: str) -> None:
    text = f"### {title}\n\n{machine()}\n\n{body}\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text)


# -- helpers -----------------------------------------------------------------------------------
NATS_BENCH_BUCKET = "bench_results"


def bench_options(driver: str) -> dict[str, Any]:
    """Defaults, except that results expire after 10 minutes instead of a day (in their own bucket on
    NATS, whose TTL is fixed when it is made): a full run stores ~100,000 results. Speed is the same."""
    if driver == "memory":
        return {}
    options: dict[str, Any] = {"result_ttl": 600}
    if driver == "nats":
        options["result_bucket"] = NATS_BENCH_BUCKET
    return options


def bench_env(driver: str, queue: str, results: bool = True) -> dict[str, str]:
    env = {
        "APP_ENV": "benchmark",
        "QUEUE_APP": "benchmarks.app:app",
        "QUEUE_DRIVER": driver,
        f"QUEUE_CONNECTIONS__{driver.upper()}__QUEUE": queue,
        f"QUEUE_CONNECTIONS__{driver.upper()}__OPTIONS": json.dumps(bench_options(driver)),
        "BENCH_DRIVER": driver,
        "BENCH_QUEUE": queue,
    }
    if not results:
        env[f"QUEUE_CONNECTIONS__{driver.upper()}__RESULT_BACKEND"] = "false"
    return env


def our_manager(driver: str, queue: str, results: bool = True, results_in: str | None = None) -> Any:
    from queue_manager import QueueManager
    from queue_manager.context import use_manager
    from queue_manager.settings import load_settings

    connection: dict[str, Any] = {"queue": queue, "result_backend": results, "options": bench_options(driver)}
    connections = {driver: {**connection, "results": results_in}}
    if results_in:
        connections[results_in] = {"options": bench_options(results_in)}
    manager = QueueManager(load_settings({"driver": driver, "connections": connections}))
    use_manager(manager)
    return manager


async def purge(driver: str, queue: str, remove: bool = False) -> None:
    """Empty what a run left behind, so each repetition starts from the same state; ``remove`` at the end.

    A RabbitMQ queue is emptied, not deleted, between repetitions: raw TaskIQ's TOPIC exchange would then
    route into nothing, and a publish RabbitMQ drops costs it far less than one it stores (the raw numbers
    doubled, measuring lost jobs)."""
    if driver in ("redis", "redis_stream"):
        from redis.asyncio import Redis

        keys = [queue, f"queues:{queue}", f"queues:stream:{queue}"]
        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            await redis.delete(*keys, *(f"{key}:{part}" for key in keys for part in ("delayed", "reserved")))
    elif driver == "rabbitmq":
        import aio_pika

        async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
            channel = await amqp.channel()
            if remove:
                await channel.queue_delete(queue)
            else:
                with contextlib.suppress(Exception):  # not declared (yet)
                    await channel.queue_purge(queue)
    elif driver == "nats":
        import nats

        client = await nats.connect("nats://127.0.0.1:4222")
        js = client.jetstream()
        for purging in (js.purge_stream("QUEUES", subject=f"queues.{queue}"), js.purge_stream(f"RAW_{queue}")):
            with contextlib.suppress(Exception):  # that variant's stream does not exist (yet)
                await purging
        await client.close()


async def drop_nats_streams(queue: str) -> None:
    """The raw broker makes a stream per queue; ours shares one with a consumer per queue."""
    import nats

    client = await nats.connect("nats://127.0.0.1:4222")
    js = client.jetstream()
    for dropping in (
        js.delete_stream(f"RAW_{queue}"),
        js.delete_consumer("QUEUES", f"workers_{queue}"),
        js.delete_key_value(NATS_BENCH_BUCKET),
    ):
        with contextlib.suppress(Exception):
            await dropping
    await client.close()


async def rate(send: Callable[[int], Awaitable[Any]], count: int, gathered: bool) -> float:
    started = time.perf_counter()
    if gathered:
        for first in range(0, count, BATCH):
            await asyncio.gather(*(send(n) for n in range(first, min(first + BATCH, count))))
    else:
        for number in range(count):
            await send(number)
    return count / (time.perf_counter() - started)


# -- 1. dispatch overhead ----------------------------------------------------------------------
async def dispatch_overhead(drivers: list[str], reps: int, count: int) -> None:
    from benchmarks import raw
    from benchmarks.jobs import job

    rows = []
    for driver in drivers:
        for gathered in (False, True):
            samples: dict[str, list[float]] = {"raw": [], "ours": []}
            queue = f"bench-{uuid.uuid4().hex[:8]}"
            raw_queue = f"{queue}-raw"  # TaskIQ declares its queues with other arguments than ours
            broker = raw.make(driver, raw_queue)
            raw_task = broker.register_task(job.original_func, task_name="bench:job")
            await broker.startup()
            manager = our_manager(driver, queue)
            await manager.connection().startup()
            ours_task = job  # a shared task: .kicker() would use TaskIQ's default; ours goes via dispatch()
            from queue_manager import dispatch

            for _ in range(reps):  # interleaved, so drift hits both alike
                samples["raw"].append(await rate(lambda n, t=raw_task: t.kiq("d", n), count, gathered))
                await purge(driver, raw_queue)
                samples["ours"].append(await rate(lambda n, t=ours_task: dispatch(t, "d", n), count, gathered))
                await purge(driver, queue)
            await broker.shutdown()
            await manager.shutdown()
            await purge(driver, queue, remove=True)
            await purge(driver, raw_queue, remove=True)
            if driver == "nats":
                await drop_nats_streams(queue)
                await drop_nats_streams(raw_queue)
            ratio = statistics.median(samples["ours"]) / statistics.median(samples["raw"])
            mode = f"gather ×{BATCH}" if gathered else "sequential"
            rows.append([driver, mode, cell(samples["raw"]), cell(samples["ours"]), f"{ratio:.2f}"])
            print(rows[-1], flush=True)
    raw_us, ours_us = await cost_without_a_broker(reps, count)
    write(
        "dispatch",
        f"Dispatch overhead: jobs/s of `await kiq()`, {count:,} jobs, median of {reps} (min–max)",
        table(["driver", "mode", "raw TaskIQ broker", "through the manager", "ratio"], rows)
        + "\n\nThe manager's own cost, without a broker's round trip (a broker whose `kick` does nothing, "
        f"sequential): raw TaskIQ `task.kiq()` {cell(raw_us, ' µs', 1)} per job, our `dispatch()` "
        f"{cell(ours_us, ' µs', 1)} per job.",
    )


async def cost_without_a_broker(reps: int, count: int) -> tuple[list[float], list[float]]:
    """Microseconds per send when sending costs nothing: what the manager itself adds."""
    from taskiq import BrokerMessage, InMemoryBroker

    from benchmarks.jobs import job
    from queue_manager import dispatch

    async def nothing(message: BrokerMessage) -> None:
        return None

    broker = InMemoryBroker()
    raw_task = broker.register_task(job.original_func, task_name="bench:job")
    manager = our_manager("memory", "null", results=False)
    for sending in (broker, manager.connection().broker):
        sending.kick = nothing  # type: ignore[method-assign]
    await manager.connection().startup()
    raw_us: list[float] = []
    ours_us: list[float] = []
    for _ in range(reps):
        raw_us.append(1e6 / await rate(lambda n: raw_task.kiq("d", n), count, False))
        ours_us.append(1e6 / await rate(lambda n: dispatch(job, "d", n), count, False))
    await manager.shutdown()
    return raw_us, ours_us


# -- 2. end to end -----------------------------------------------------------------------------
class Worker:
    def __init__(self, args: list[str], env: dict[str, str], command: list[str] | None = None) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "taskiq", "worker", *args, "--workers", "1", "--log-level", "WARNING"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


async def counted(run: str) -> tuple[int, int]:
    from redis.asyncio import Redis

    from benchmarks.jobs import COUNTER_URL, counter_keys

    ids, runs = counter_keys(run)
    async with Redis.from_url(COUNTER_URL) as redis:
        unique_ids, total = await redis.scard(ids), int(await redis.get(runs) or 0)
        return int(unique_ids), total


async def forget(run: str) -> None:
    from redis.asyncio import Redis

    from benchmarks.jobs import COUNTER_URL, counter_keys

    async with Redis.from_url(COUNTER_URL) as redis:
        await redis.delete(*counter_keys(run))


async def one_e2e(send: Callable[[str, int], Awaitable[Any]], count: int) -> tuple[float, int, int]:
    run = uuid.uuid4().hex
    started = time.perf_counter()
    for first in range(0, count, BATCH):
        await asyncio.gather(*(send(run, n) for n in range(first, min(first + BATCH, count))))
    last, last_change = -1, time.perf_counter()
    while True:
        unique_ids, total = await counted(run)
        if unique_ids >= count:
            break
        if unique_ids != last:
            last, last_change = unique_ids, time.perf_counter()
        elif time.perf_counter() - last_change > 15:
            break
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.2)
    unique_ids, total = await counted(run)
    await forget(run)
    return unique_ids / elapsed, count - unique_ids, total - unique_ids


E2E_VARIANTS = ("raw TaskIQ defaults", "ours (defaults)", "ours, no result backend")


async def e2e_variants(driver: str, reps: int, count: int) -> dict[str, list[tuple[float, int, int]]]:
    """Each variant with its own worker process, back to back."""
    from benchmarks import raw
    from benchmarks.jobs import job

    results: dict[str, list[tuple[float, int, int]]] = {}
    for variant in E2E_VARIANTS:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        env = bench_env(driver, queue, results=variant != "ours, no result backend")
        if variant.startswith("raw"):
            worker = Worker(["benchmarks.raw:broker", "benchmarks.jobs"], env)
            broker = raw.make(driver, queue)
            task = broker.register_task(job.original_func, task_name="bench:job")
            await broker.startup()

            async def send(run: str, n: int, task: Any = task) -> Any:
                return await task.kiq(run, n)

            close: Callable[[], Awaitable[None]] = broker.shutdown
        else:
            worker = Worker(["queue_manager.worker:broker", "benchmarks.jobs"], env)
            manager = our_manager(driver, queue, results=variant == "ours (defaults)")
            connection = manager.connection()
            await connection.startup()

            async def send(run: str, n: int, connection: Any = connection) -> Any:
                return await connection.dispatch(job, run, n)

            close = manager.shutdown
        try:
            await one_e2e(send, 200)  # warm-up: the worker is up and connected
            results[variant] = [await one_e2e(send, count) for _ in range(reps)]
        finally:
            worker.stop()
            await close()
            await purge(driver, queue, remove=True)
            if driver == "nats":
                await drop_nats_streams(queue)
    return results


def e2e_rows(driver: str, results: dict[str, list[tuple[float, int, int]]], baseline: float) -> list[list[str]]:
    rows = []
    for variant, samples in results.items():
        rates = [r[0] for r in samples]
        lost, dupes = sum(r[1] for r in samples), sum(r[2] for r in samples)
        rows.append([driver, variant, cell(rates), f"{statistics.median(rates) / baseline:.2f}", str(lost), str(dupes)])
        print(rows[-1], flush=True)
    return rows


async def end_to_end(drivers: list[str], reps: int, count: int) -> None:
    rows = []
    for driver in drivers:
        results = await e2e_variants(driver, reps, count)
        rows += e2e_rows(driver, results, statistics.median(r[0] for r in results[E2E_VARIANTS[0]]))
    write(
        "e2e",
        f"End to end: jobs/s from first dispatch to last job run, one worker process, {count:,} jobs, "
        f"median of {reps} (min–max)",
        table(["driver", "variant", "jobs/s", "ratio to raw", "lost", "ran twice"], rows),
    )


# -- 3. draining a full queue -------------------------------------------------------------------
RESULTS_IN_REDIS = "ours, results in Redis (`RESULTS=redis`)"
DRAIN_VARIANTS: dict[str, tuple[str, ...]] = {
    "redis": (*E2E_VARIANTS, "hand-written redis-py consumer, 100 at once"),
    "redis_stream": E2E_VARIANTS,
    "rabbitmq": (*E2E_VARIANTS, RESULTS_IN_REDIS),
    "nats": E2E_VARIANTS,
}


async def drained(run: str, count: int) -> tuple[float, int, int]:
    """Wait until every job ran (or nothing moved for 15 s); jobs/s between the first and the last job."""
    from redis.asyncio import Redis

    from benchmarks.jobs import COUNTER_URL, time_keys

    last, last_change = -1, time.perf_counter()
    while True:
        unique_ids, _ = await counted(run)
        if unique_ids >= count:
            break
        if unique_ids != last:
            last, last_change = unique_ids, time.perf_counter()
        elif time.perf_counter() - last_change > 15:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    unique_ids, total = await counted(run)
    async with Redis.from_url(COUNTER_URL) as redis:
        first_at, last_at = (float(value or 0) for value in await redis.mget(*time_keys(run)))
        await redis.delete(*time_keys(run))
    await forget(run)
    return (unique_ids - 1) / max(last_at - first_at, 1e-6), count - unique_ids, total - unique_ids


async def drain_variant(driver: str, variant: str, reps: int, count: int) -> list[tuple[float, int, int]]:
    """Fill a queue with ``count`` jobs, then start one worker process and time how fast it empties it."""
    from benchmarks import raw
    from benchmarks.jobs import job

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    with_results = variant in ("ours (defaults)", RESULTS_IN_REDIS)
    env = bench_env(driver, queue, results=with_results)
    if variant == RESULTS_IN_REDIS:
        env[f"QUEUE_CONNECTIONS__{driver.upper()}__RESULTS"] = "redis"
        env["QUEUE_CONNECTIONS__REDIS__OPTIONS"] = json.dumps(bench_options("redis"))
    command: list[str] | None = None
    args = ["queue_manager.worker:broker", "benchmarks.jobs"]
    if variant.startswith("raw"):
        args = ["benchmarks.raw:broker", "benchmarks.jobs"]
        broker = raw.make(driver, queue)
        task = broker.register_task(job.original_func, task_name="bench:job")
        await broker.startup()

        async def fill(run: str) -> None:
            for first in range(0, count, BATCH):
                await asyncio.gather(*(task.kiq(run, n) for n in range(first, min(first + BATCH, count))))

        close: Callable[[], Awaitable[None]] = broker.shutdown
    else:
        if variant.startswith("hand-written"):
            command = [sys.executable, "-m", "benchmarks.handwritten"]
            env["BENCH_QUEUE_KEY"] = f"queues:{queue}"
        manager = our_manager(
            driver, queue, results=with_results, results_in="redis" if variant == RESULTS_IN_REDIS else None
        )
        connection = manager.connection()
        await connection.startup()

        async def fill(run: str) -> None:
            await connection.bulk(job, [(run, n) for n in range(count)])

        close = manager.shutdown
    samples = []
    try:
        for _ in range(reps):
            run = uuid.uuid4().hex
            await fill(run)
            worker = Worker(args, env, command)
            try:
                samples.append(await drained(run, count))
            finally:
                worker.stop()
    finally:
        await close()
        await purge(driver, queue, remove=True)
        if driver == "nats":
            await drop_nats_streams(queue)
    return samples


async def draining(drivers: list[str], reps: int, count: int) -> None:
    rows = []
    for driver in drivers:
        results: dict[str, list[tuple[float, int, int]]] = {}
        for _ in range(reps):  # alternated: one repetition of each variant in turn
            for variant in DRAIN_VARIANTS[driver]:
                results.setdefault(variant, []).extend(await drain_variant(driver, variant, 1, count))
        rows += e2e_rows(driver, results, statistics.median(r[0] for r in results[E2E_VARIANTS[0]]))
    write(
        "drain",
        f"Draining a full queue: {count:,} jobs queued first, then one worker process; jobs/s from its first "
        f"job to its last, median of {reps} (min–max)",
        table(["driver", "variant", "jobs/s", "ratio to raw", "lost", "ran twice"], rows),
    )


# -- 3b. why RabbitMQ's own result store is slow -------------------------------------------------
async def rabbitmq_result_store(reps: int, count: int) -> None:
    """Our RabbitMQ result store against the two things it is made of, on the same server: declaring a
    queue (one per result) and publishing to one."""
    import aio_pika
    from taskiq import TaskiqResult

    from drivers.rabbitmq.results import RabbitMQResultBackend

    url = "amqp://guest:guest@127.0.0.1:5672/"
    arguments = {"x-expires": 600_000, "x-max-length": 1, "x-queue-type": "classic"}
    result = TaskiqResult(is_err=False, return_value=1, execution_time=0.1, log=None)
    store_rates, declare_rates, publish_rates = [], [], []
    backend: RabbitMQResultBackend[Any] = RabbitMQResultBackend(url, "bench.results.", 600)
    await backend.startup()
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=False)
    underlay = await channel.get_underlay_channel()
    one = await channel.declare_queue(f"bench.one.{uuid.uuid4().hex[:8]}", durable=False, arguments=arguments)
    for _ in range(reps):
        ids = [uuid.uuid4().hex for _ in range(count)]
        started = time.perf_counter()
        for first in range(0, count, BATCH):
            await asyncio.gather(*(backend.set_result(task_id, result) for task_id in ids[first : first + BATCH]))
        while not await backend.is_result_ready(ids[-1]):  # noqa: ASYNC110 (polling the server is the point)
            await asyncio.sleep(0.001)
        store_rates.append(count / (time.perf_counter() - started))
        names = [f"bench.declare.{uuid.uuid4().hex}" for _ in range(count)]
        started = time.perf_counter()
        for name in names:
            await underlay.queue_declare(name, durable=False, arguments=arguments, nowait=True)
        await underlay.queue_declare(names[-1], durable=False, arguments=arguments, passive=True)
        declare_rates.append(count / (time.perf_counter() - started))
        started = time.perf_counter()
        for _ in range(count):
            await channel.default_exchange.publish(aio_pika.Message(b"x" * 150), routing_key=one.name)
        await channel.declare_queue(one.name, passive=True)
        publish_rates.append(count / (time.perf_counter() - started))
        for name in names:
            await underlay.queue_delete(name, nowait=True)
    await one.delete(if_empty=False)
    await connection.close()
    await backend.shutdown()
    write(
        "rabbitmq-results",
        f"RabbitMQ result store: {count:,} results, per second, median of {reps} (min–max)",
        table(
            ["what", "per second"],
            [
                [
                    "our store (`set_result`, 100 at once: declare a queue + publish, no round trip waited)",
                    cell(store_rates),
                ],
                ["RabbitMQ declaring queues alone (nowait, one channel)", cell(declare_rates)],
                ["RabbitMQ publishing to one existing queue alone", cell(publish_rates)],
            ],
        ),
    )


PEERS = {
    "celery": "Celery 5, `--pool=solo` (one process, one job at a time), no result backend",
    "dramatiq": "Dramatiq, `--processes 1 --threads 8`",
    "arq": "arq, `max_jobs=100`, `keep_result=0`, `poll_delay=0.01`",
    "rq": "RQ, `SimpleWorker` (no fork per job), `result_ttl=0`",
}


async def peers(reps: int, count: int) -> None:
    """Our Redis list driver and raw TaskIQ, then each peer library, on the same Redis, back to back."""
    python = PEERS_PYTHON
    if not python.exists():
        raise SystemExit(
            "The peers run in their own virtualenv: python3 -m venv benchmarks/.venv-peers && "
            "benchmarks/.venv-peers/bin/pip install -r benchmarks/requirements-peers.txt"
        )
    results: dict[str, list[tuple[float, int, int]]] = {}
    for _ in range(reps):
        for variant in DRAIN_VARIANTS["redis"]:
            results.setdefault(variant, []).extend(await drain_variant("redis", variant, 1, count))
    baseline = statistics.median(r[0] for r in results[E2E_VARIANTS[0]])
    rows = e2e_rows("fastapi-startkit-queue / TaskIQ", results, baseline)
    for peer, how in PEERS.items():
        done = subprocess.run(  # noqa: ASYNC221 (nothing else runs meanwhile: that is the point)
            [str(python), "-m", "benchmarks.peers.run", peer, "--jobs", str(count), "--reps", str(reps)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            rows.append([peer, how, "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1], "", "", ""])
            continue
        samples = [tuple(r) for r in json.loads(done.stdout.strip().splitlines()[-1])]
        rows += e2e_rows(peer, {how: samples}, baseline)  # type: ignore[dict-item]
    write(
        "peers",
        f"Peers on the same Redis, draining a full queue: {count:,} trivial jobs (each one Redis round trip) "
        f"queued first, then one worker process; jobs/s from its first job to its last, median of {reps} (min–max)",
        table(["library", "configuration", "jobs/s", "ratio to raw TaskIQ", "lost", "ran twice"], rows),
    )


# -- 4. boot cost ------------------------------------------------------------------------------
BOOT = r"""
import json, os, resource, sys, tempfile, time
started = time.perf_counter()
import fastapi_startkit, taskiq
from fastapi_startkit import Application
import {lib}
base_path = tempfile.mkdtemp()
imported = time.perf_counter()
{imports}
providers = {providers}
app = Application(base_path=base_path, providers=providers)
{touch}
done = time.perf_counter()
print(json.dumps({{"ms": (done - started) * 1000, "app_ms": (done - imported) * 1000,
  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  "aio_pika": "aio_pika" in sys.modules, "nats": "nats" in sys.modules}}))
"""
LIBS = {"redis": "taskiq_redis", "redis_stream": "taskiq_redis", "rabbitmq": "taskiq_aio_pika", "nats": "taskiq_nats"}


def boot_once(driver: str, with_provider: bool) -> dict[str, Any]:
    if with_provider:
        code = BOOT.format(
            lib=LIBS[driver],
            imports="from queue_manager import QueueProvider",
            providers="[QueueProvider]",
            touch='app.make("broker")',
        )
    else:
        code = BOOT.format(lib=LIBS[driver], imports="", providers="[]", touch="")
    env = {**os.environ, "APP_ENV": "benchmark", "QUEUE_DRIVER": driver}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def compile_package() -> None:
    """Bytecode for the package, as ``pip install`` of the wheel writes it. An editable checkout run with
    PYTHONDONTWRITEBYTECODE=1 (this machine sets it) would otherwise compile every module of ours at every
    start, while the libraries it is compared with were compiled when installed: that doubled the measured
    boot cost."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("queue_manager", "drivers"):
        compileall.compile_dir(str(root / package), quiet=1)


def boot_cost(drivers: list[str], reps: int) -> None:
    compile_package()
    rows = []
    for driver in drivers:
        runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        for _ in range(reps):
            for with_provider in (False, True):
                runs[with_provider].append(boot_once(driver, with_provider))
        base, ours = runs[False], runs[True]
        added = statistics.median(r["ms"] for r in ours) - statistics.median(r["ms"] for r in base)
        app_added = [o["app_ms"] - statistics.median(r["app_ms"] for r in base) for o in ours]
        rows.append(
            [
                driver,
                cell([r["ms"] for r in base], " ms"),
                cell([r["ms"] for r in ours], " ms"),
                f"{added:+.0f} ms",
                cell(app_added, " ms"),
                f"{statistics.median(r['rss_mb'] for r in base):.0f} → "
                f"{statistics.median(r['rss_mb'] for r in ours):.0f} MB",
                "yes" if any(r["aio_pika"] or r["nats"] for r in ours) and driver.startswith("redis") else "no",
            ]
        )
        print(rows[-1], flush=True)

    from queue_manager import QueueManager
    from queue_manager.settings import load_settings

    manager = QueueManager(load_settings({"driver": "memory"}))
    manager.connection("redis")
    lookups = []
    for _ in range(reps):
        started = time.perf_counter()
        for _ in range(1_000_000):
            manager.connection("redis")
        lookups.append(1_000_000 / (time.perf_counter() - started))
    write(
        "boot",
        f"Boot cost: a fresh process importing fastapi-startkit, TaskIQ and the driver's library and booting an "
        f"app, without and with QueueProvider (which builds the default connection), median of {reps} (min–max)",
        table(
            [
                "driver",
                "without the provider",
                "with QueueProvider",
                "added (whole process)",
                "added by the provider (inside the process)",
                "peak RSS",
                "imports aio_pika/nats on Redis",
            ],
            rows,
        )
        + "\n\nWhole-process times vary by tens of ms between runs; the column inside the process times only "
        "what follows the shared imports (fastapi-startkit, TaskIQ, the driver's library): importing "
        "queue_manager, booting the app and building the default connection, against booting without it."
        + f"\n\n`manager.connection('redis')` lookups: {cell(lookups)} per second.",
    )


# -- 5. bulk dispatch --------------------------------------------------------------------------
async def bulk_dispatch(drivers: list[str], reps: int, count: int) -> None:
    from benchmarks.jobs import job

    rows = []
    for driver in drivers:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        manager = our_manager(driver, queue)
        connection = manager.connection()
        await connection.startup()
        sequential, bulk = [], []
        for _ in range(reps):
            sequential.append(await rate(lambda n, c=connection: c.dispatch(job, "b", n), count, gathered=False))
            await purge(driver, queue)
            started = time.perf_counter()
            await connection.bulk(job, [("b", n) for n in range(count)])
            bulk.append(count / (time.perf_counter() - started))
            await purge(driver, queue)
        await manager.shutdown()
        await purge(driver, queue, remove=True)
        if driver == "nats":
            await drop_nats_streams(queue)
        ratio = statistics.median(bulk) / statistics.median(sequential)
        rows.append([driver, cell(sequential), cell(bulk), f"{ratio:.1f}×"])
        print(rows[-1], flush=True)
    write(
        "bulk",
        f"Bulk dispatch: {count:,} jobs, sequential `await dispatch(...)` vs `connection.bulk(...)`, "
        f"jobs/s, median of {reps} (min–max)",
        table(["driver", "sequential dispatch", "connection.bulk", "speed-up"], rows),
    )


# -- 6. a job class against a @task function ------------------------------------------------------
CLASS_VARIANTS = ("@task function", "Job class")


async def class_jobs(drivers: list[str], reps: int, count: int) -> None:
    """Drain ``count`` jobs of a ``Job`` class and of a ``@task`` function doing the same work, alternated, each
    with a fresh worker process importing both (results on, the defaults)."""
    from benchmarks.class_jobs import ClassJob, function_job

    rows = []
    for driver in drivers:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        manager = our_manager(driver, queue)
        connection = manager.connection()
        await connection.startup()
        results: dict[str, list[tuple[float, int, int]]] = {}
        try:
            for _ in range(reps):
                for variant in CLASS_VARIANTS:
                    run = uuid.uuid4().hex
                    if variant == "Job class":
                        await connection.bulk([ClassJob(run, n) for n in range(count)])
                    else:
                        await connection.bulk(function_job, [(run, n) for n in range(count)])
                    worker = Worker(["queue_manager.worker:broker", "benchmarks.class_jobs"], bench_env(driver, queue))
                    try:
                        results.setdefault(variant, []).append(await drained(run, count))
                    finally:
                        worker.stop()
        finally:
            await manager.shutdown()
            await purge(driver, queue, remove=True)
            if driver == "nats":
                await drop_nats_streams(queue)
        rows += e2e_rows(driver, results, statistics.median(r[0] for r in results[CLASS_VARIANTS[0]]))
    function_cost, class_cost = await class_job_cost(reps, 20_000)
    write(
        "class-jobs",
        f"A job class against a @task function: {count:,} jobs queued first, then one worker process; jobs/s "
        f"from its first job to its last, median of {reps} (min–max)",
        table(["driver", "variant", "jobs/s", "ratio to @task", "lost", "ran twice"], rows)
        + "\n\nThe worker's own cost per job, without the broker or the job's work (rebuilding the job, the "
        f"pipeline, the outcome): @task function {cell(function_cost, ' µs', 1)}, Job class "
        f"{cell(class_cost, ' µs', 1)}.",
    )


async def class_job_cost(reps: int, count: int) -> tuple[list[float], list[float]]:
    """µs per job of what the worker runs for a function and for a job class, their work made a no-op."""
    from benchmarks import class_jobs
    from queue_manager.running.interactions import _CURRENT, Interactions

    async def nothing(run: str, number: int) -> None:
        return None

    work, class_jobs.job = class_jobs.job, type("NoWork", (), {"original_func": staticmethod(nothing)})()
    function_task, class_task = class_jobs.function_job.original_func, class_jobs.ClassJob.task.original_func
    samples: tuple[list[float], list[float]] = ([], [])
    try:
        for _ in range(reps):
            for kept, call in zip(samples, (function_task, class_task), strict=True):
                started = time.perf_counter()
                for n in range(count):
                    _CURRENT.set(Interactions.standalone("bench"))
                    await call(run="r", number=n)
                kept.append((time.perf_counter() - started) / count * 1e6)
    finally:
        class_jobs.job = work
    return samples


# -- insight: the worker's metrics, recent jobs and heartbeat (issue 26) ------------------------------------
INSIGHT_VARIANTS = {"insight on (default)": {}, "insight off": {"QUEUE_INSIGHT__ENABLED": "false"}}


async def insight_cost(reps: int, count: int) -> None:
    """One ``queue:work`` process (our receiver, job lines off) draining the default Redis list with its metrics,
    recent jobs and heartbeat on (the default) and off, alternated; the ratio is on / off."""
    from benchmarks.jobs import job
    from queue_manager.worker.process import worker_argv

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    manager = our_manager("redis", queue)
    connection = manager.connection()
    await connection.startup()
    results: dict[str, list[tuple[float, int, int]]] = {variant: [] for variant in INSIGHT_VARIANTS}
    try:
        for rep in range(reps):  # on, off, then off, on: a drift of the machine counts against both alike
            for variant, extra in list(INSIGHT_VARIANTS.items())[:: 1 if rep % 2 == 0 else -1]:
                run = uuid.uuid4().hex
                await connection.bulk(job, [(run, n) for n in range(count)])
                env = {**bench_env("redis", queue), "QUEUE_WORKER_OUTPUT": "quiet", **extra}
                worker = Worker([], env, worker_argv(["benchmarks.jobs"]))
                try:
                    results[variant].append(await drained(run, count))
                finally:
                    worker.stop()
    finally:
        await manager.shutdown()
        await purge("redis", queue, remove=True)
    baseline = statistics.median(r[0] for r in results["insight off"])
    write(
        "insight",
        f"A worker's insight (metrics, recent jobs, heartbeat): one queue:work process draining {count:,} jobs from "
        f"the default Redis list, on and off alternated; jobs/s, median of {reps} (min–max), ratio to off",
        table(
            ["driver", "variant", "jobs/s", "ratio to off", "lost", "ran twice"], e2e_rows("redis", results, baseline)
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "what",
        choices=[
            *("dispatch", "e2e", "drain", "rabbitmq-results", "boot", "bulk", "class-jobs", "insight", "peers", "all"),
            "batches",
            "middleware",
        ],
        nargs="?",
        default="all",
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=None, help="jobs per run (default: 20000; 5000 end to end)")
    parser.add_argument("--drivers", default=",".join(DRIVERS))
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "benchmark")
    drivers = [d for d in args.drivers.split(",") if d]
    if args.what in ("dispatch", "all"):
        asyncio.run(dispatch_overhead(drivers, args.reps, args.jobs or 20_000))
    if args.what in ("e2e", "all"):
        asyncio.run(end_to_end(drivers, args.reps, args.jobs or 5_000))
    if args.what in ("drain", "all"):
        asyncio.run(draining(drivers, args.reps, args.jobs or 5_000))
    if args.what in ("rabbitmq-results", "all") and "rabbitmq" in drivers:
        asyncio.run(rabbitmq_result_store(args.reps, args.jobs or 3_000))
    if args.what in ("boot", "all"):
        boot_cost(drivers, args.reps)
    if args.what in ("bulk", "all"):
        asyncio.run(bulk_dispatch(drivers, args.reps, args.jobs or 20_000))
    if args.what in ("class-jobs", "all"):
        asyncio.run(class_jobs(["redis"] if args.what == "all" else drivers, args.reps, args.jobs or 5_000))
    if args.what in ("insight", "all"):
        asyncio.run(insight_cost(args.reps, args.jobs or 20_000))
    if args.what in ("batches", "all"):
        from benchmarks.batches import batches

        asyncio.run(batches(drivers, args.reps, args.jobs or 10_000, 5_000))
    if args.what in ("middleware", "all"):
        from benchmarks.middleware import middleware_cost

        asyncio.run(middleware_cost(args.reps, args.jobs or 500))
    if args.what == "peers" or (args.what == "all" and PEERS_PYTHON.exists()):
        asyncio.run(peers(args.reps, args.jobs or 5_000))
    elif args.what == "all":
        print("Skipped the peers (Celery, Dramatiq, arq, RQ): `make bench-peers` installs and runs them.")


if __name__ == "__main__":
    main()
