"""Chains and batches (issue 25), ``make bench ARGS=batches``: dispatching a 10,000-job batch (one store write and
one bulk send) against 10,000 single dispatches; and one worker draining jobs that belong to a batch (each
outcome recorded by job id in the default SQLite batch store) against the same jobs outside a batch."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.bench import (
    Worker,
    bench_env,
    bench_options,
    cell,
    drained,
    e2e_rows,
    purge,
    table,
    write,
)

DRAIN_VARIANTS = ("outside a batch", "inside a batch")


def _manager(driver: str, queue: str, store_url: str) -> Any:
    from queue_manager import QueueManager
    from queue_manager.context import use_manager
    from queue_manager.settings import load_settings

    manager = QueueManager(
        load_settings(
            {
                "driver": driver,
                "connections": {driver: {"queue": queue, "options": bench_options(driver)}},
                "batches": {"url": store_url},
            }
        )
    )
    use_manager(manager)
    return manager


async def batch_dispatch(driver: str, reps: int, count: int) -> list[str]:
    from benchmarks.jobs import job
    from queue_manager import Bus, dispatch

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    store = Path(tempfile.mkdtemp(prefix="bench-batches-")) / "batches.sqlite"
    manager = _manager(driver, queue, f"sqlite+aiosqlite:///{store}")
    connection = manager.connection()
    await connection.startup()
    await manager.batches.store.find("warm-up")  # the table made once, outside the timing
    single, batched = [], []
    try:
        for _ in range(reps):
            started = time.perf_counter()
            for n in range(count):
                await dispatch(job, "d", n)
            single.append(count / (time.perf_counter() - started))
            await purge(driver, queue)
            started = time.perf_counter()
            await Bus.batch([dispatch(job, "d", n) for n in range(count)]).name("bench").dispatch()
            batched.append(count / (time.perf_counter() - started))
            await purge(driver, queue)
    finally:
        await manager.shutdown()
        await purge(driver, queue, remove=True)
    ratio = statistics.median(batched) / statistics.median(single)
    return [driver, cell(single), cell(batched), f"{ratio:.1f}×"]


async def batch_drain(reps: int, count: int) -> list[list[str]]:
    """The default driver (Redis list): ``count`` jobs queued first, then one worker process; alternated."""
    from benchmarks.jobs import job
    from queue_manager import Bus, dispatch

    driver, queue = "redis", f"bench-{uuid.uuid4().hex[:8]}"
    store = Path(tempfile.mkdtemp(prefix="bench-batches-")) / "batches.sqlite"
    url = f"sqlite+aiosqlite:///{store}"
    manager = _manager(driver, queue, url)
    connection = manager.connection()
    await connection.startup()
    results: dict[str, list[tuple[float, int, int]]] = {variant: [] for variant in DRAIN_VARIANTS}
    try:
        for _ in range(reps):
            for variant in DRAIN_VARIANTS:
                run = uuid.uuid4().hex
                if variant == "inside a batch":
                    await Bus.batch([dispatch(job, run, n) for n in range(count)]).dispatch()
                else:
                    await connection.bulk(job, [(run, n) for n in range(count)])
                env = {**bench_env(driver, queue), "QUEUE_BATCHES__URL": url}
                worker = Worker(["queue_manager.worker:broker", "benchmarks.jobs"], env)
                try:
                    results[variant].append(await drained(run, count))
                finally:
                    worker.stop()
    finally:
        await manager.shutdown()
        await purge(driver, queue, remove=True)
    return e2e_rows(driver, results, statistics.median(r[0] for r in results[DRAIN_VARIANTS[0]]))


async def batches(drivers: list[str], reps: int, count: int, drain_count: int) -> None:
    rows = []
    for driver in drivers:
        rows.append(await batch_dispatch(driver, reps, count))
        print(rows[-1], flush=True)
    drain = await batch_drain(reps, drain_count)
    for row in drain:
        print(row, flush=True)
    write(
        "batches",
        f"Chains and batches: dispatching {count:,} jobs one `await dispatch(...)` at a time vs one "
        f"`Bus.batch([...]).dispatch()` (one store write, one bulk send), jobs/s, median of {reps} (min–max); then "
        f"one worker process draining {drain_count:,} jobs of the default Redis list outside and inside a batch "
        "(each outcome recorded in the default SQLite batch store), alternated",
        table(["driver", "single dispatches", "Bus.batch", "speed-up"], rows)
        + "\n\n"
        + table(["driver", "variant", "jobs/s", "ratio to outside", "lost", "ran twice"], drain),
    )
