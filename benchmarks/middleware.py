"""Job middleware (issue 24), ``make bench ARGS=middleware``: what ``RateLimited`` and ``WithoutOverlapping`` cost
per attempt on each server that keeps job state: round trips to the server (counted on the client: redis-py's
packed commands, nats-py's published messages) and the time of the middleware around an empty job, against the
same job with no middleware. One process, the middleware called as a worker calls it; RabbitMQ keeps its job
state on Redis (``STATE=redis``), so its row is Redis's."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.bench import cell, table, write

TAG = f"mwbench{uuid.uuid4().hex[:6]}"  # in every key written, so the NATS keys are purged at the end
WHERE = {"redis": ("redis", None), "rabbitmq (STATE=redis)": ("rabbitmq", "redis"), "nats": ("nats", None)}
# (middleware, clients taking turns on one key: one worker, or two whose writes the other has not seen)
CASES = [(variant, 1) for variant in ("no middleware", "RateLimited", "WithoutOverlapping", "both")] + [
    ("RateLimited", 2),
    ("WithoutOverlapping", 2),
]


@contextmanager
def redis_round_trips() -> Iterator[list[int]]:
    """Every packed command redis-py sends (a command, a pipeline, a script): one round trip each."""
    from redis.asyncio.connection import AbstractConnection

    counted = [0]
    original = AbstractConnection.send_packed_command

    async def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        counted[0] += 1
        await original(self, *args, **kwargs)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


async def one_variant(managers: list[Any], driver: str, variant: str, attempts: int) -> tuple[float, float]:
    """(round trips per attempt, µs per attempt) of ``attempts`` jobs of one key (a window with room, a free lock),
    sent by each of ``managers`` (separate clients, as separate workers are) in turn."""
    from taskiq import TaskiqMessage

    from queue_manager.middleware import Limit, RateLimited, RateLimits, WithoutOverlapping
    from queue_manager.running.interactions import Interactions
    from queue_manager.running.pipeline import through

    limits = RateLimits()
    run = f"{TAG}{uuid.uuid4().hex[:8]}"
    limits.define("bench", lambda job: Limit.per_minute(attempts).by(run))  # room for every attempt
    chosen = {
        "no middleware": [],
        "RateLimited": [RateLimited("bench", limits=limits)],
        "WithoutOverlapping": [WithoutOverlapping(f"bench-{run}", expire_after=60)],
        "both": [RateLimited("bench", limits=limits), WithoutOverlapping(f"bench-{run}", expire_after=60)],
    }[variant]

    class Delivery:
        def __init__(self, n: int, manager: Any) -> None:
            message = TaskiqMessage(task_id=f"{run}-{n}", task_name="bench:job", labels={}, args=[], kwargs={})
            self._interactions = Interactions(message)
            self._interactions.job_state = lambda: manager.job_state_of(driver)

    async def job(_job: Any) -> None:
        return None

    clients = []
    for manager in managers:
        state = manager.job_state_of(driver)
        await state.hit(f"warm-{run}", 10, 1)  # connect, load the scripts, open the buckets
        await state.lock(f"warm-lock-{run}", run, 1)
        await state.unlock(f"warm-lock-{run}", run)
        clients.append(getattr(getattr(state, "broker", None), "client", None))
    nats = [client for client in clients if client is not None]
    with redis_round_trips() as redis_counted:
        before = sum(client.stats["out_msgs"] for client in nats)
        began = time.perf_counter()
        for n in range(attempts):
            delivery = Delivery(n, managers[n % len(managers)])
            await through(chosen, delivery, delivery._interactions, job)
        took = time.perf_counter() - began
        sent = sum(client.stats["out_msgs"] for client in nats) - before if nats else redis_counted[0]
    return sent / attempts, took / attempts * 1e6


async def middleware_cost(reps: int, attempts: int) -> None:
    from queue_manager import QueueManager
    from queue_manager.settings import load_settings

    rows = []
    for label, (driver, state) in WHERE.items():
        connections = {driver: {"state": state}} if state else {}
        managers = [QueueManager(load_settings({"driver": driver, "connections": connections})) for _ in range(2)]
        try:
            found: dict[tuple[str, int], list[tuple[float, float]]] = {case: [] for case in CASES}
            for _ in range(reps):
                for variant, workers in CASES:
                    found[variant, workers].append(await one_variant(managers[:workers], driver, variant, attempts))
            for variant, workers in CASES:
                trips = [trip for trip, _ in found[variant, workers]]
                micros = [us for _, us in found[variant, workers]]
                who = "one worker" if workers == 1 else f"{workers} workers in turn"
                rows.append([label, variant, who, f"{statistics.median(trips):.2f}", cell(micros, " µs")])
        finally:
            for manager in managers:
                await manager.shutdown()
    await purge_nats_keys()
    write(
        "middleware",
        f"Job middleware per attempt: {attempts:,} attempts of an empty job in one process, each finding room; "
        f"round trips to the server counted on the client, time median of {reps} (min–max)",
        table(["connection", "middleware", "key last written by", "round trips / attempt", "time / attempt"], rows),
    )


async def purge_nats_keys() -> None:
    """Redis drops a window or lock when it expires; NATS keeps the key (free) until its bucket's age limit."""
    import nats
    from nats.js.errors import NoKeysError

    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        js = client.jetstream()
        for bucket in ("QUEUES_control_locks", "QUEUES_control_hits"):
            kv = await js.key_value(bucket)
            try:
                keys = await kv.keys()
            except NoKeysError:
                continue
            for key in keys:
                if TAG in key:
                    await kv.purge(key)
    finally:
        await client.close()
