"""RabbitMQ's pause flag and restart signal with two real ``queue:work`` workers and two pollers reading them at
once (issue 22 item 8), in a vhost of the test's own (so its signals reach no other test's workers).

Before, a read took the flag's one message and put it back: while one reader held it the others saw "not paused"
(all 200 jobs of a paused queue ran) and the restart signal seemed to change (workers restarted unasked).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from drivers.base.control import control_of, restart_key
from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.clusters import rabbitmq_vhost
from tests.helpers import (
    PYTHON,
    WorkerProcess,
    connections_env,
    dispatch_jobs,
    ran_jobs,
    run_python,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.jobs"
JOBS = 100
QUIET = 10.0  # seconds the paused queue is watched for a job that runs


class Pollers:
    """Two dashboards' worth of readers: each its own connection, reading the pause flag and the restart signal
    as fast as they can, in a thread of their own."""

    def __init__(self, url: str, queue: str, app: str, count: int = 2) -> None:
        self.url, self.queue, self.app, self.count = url, queue, app, count
        self.stop = threading.Event()
        self.watching = threading.Event()  # record reads only while set (the paused window)
        self.paused_reads: list[bool] = []
        self.restart_reads: list[str | None] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        settings = {"driver": "rabbitmq", "connections": {"rabbitmq": {"url": self.url, "queue": self.queue}}}
        managers = [QueueManager(load_settings(settings)) for _ in range(self.count)]
        try:
            await asyncio.gather(*(self._poll(manager) for manager in managers))
        finally:
            for manager in managers:
                await manager.shutdown()

    async def _poll(self, manager: QueueManager) -> None:
        connection = manager.connection()
        await connection.startup()
        control = control_of(connection.broker)
        assert control is not None
        while not self.stop.is_set():
            paused = await connection.paused()
            restart = await control.get(restart_key(self.app))
            if self.watching.is_set():
                self.paused_reads.append(paused)
            self.restart_reads.append(restart)

    def __enter__(self) -> Pollers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


async def signal_restart(url: str, queue: str, app: str, stamp: str) -> None:
    settings = {"driver": "rabbitmq", "connections": {"rabbitmq": {"url": url, "queue": queue}}}
    manager = QueueManager(load_settings(settings))
    try:
        connection = manager.connection()
        await connection.startup()
        control = control_of(connection.broker)
        assert control is not None
        await control.set(restart_key(app), stamp)
    finally:
        await manager.shutdown()


async def waiting(url: str, queue: str) -> int:
    import aio_pika

    async with await aio_pika.connect(url) as amqp:
        declared = await (await amqp.channel()).declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


def test_a_paused_queue_runs_nothing_while_workers_and_pollers_read_its_state(tmp_path: Path, record_dir: Path) -> None:
    queue, app = unique("q"), unique("app")
    with rabbitmq_vhost() as vhost:
        env = connections_env({"rabbitmq": queue}, record_dir, "rabbitmq", RABBITMQ_URL=vhost.url, APP_NAME=app)
        stamp = f"{time.time():.3f}"
        asyncio.run(signal_restart(vhost.url, queue, app, stamp))  # a queue:restart from before these workers
        workers = [
            WorkerProcess(env=env, log=tmp_path / f"w{i}.log", command=[PYTHON, "artisan", "queue:work", TASKS])
            for i in range(2)
        ]
        try:
            for worker in workers:
                worker.wait_ready()
            with Pollers(vhost.url, queue, app) as pollers:
                paused = run_python("artisan", "queue:pause", f"rabbitmq:{queue}", env=env)
                assert paused.returncode == 0, paused.stdout + paused.stderr
                for worker in workers:
                    assert wait_for(lambda w=worker: "is paused: taking no new jobs" in w.output(), 30), w_out(workers)
                pollers.watching.set()
                dispatch_jobs([{"task": "remember", "args": [i]} for i in range(JOBS)], env, wait=False)
                assert not wait_for(lambda: ran_jobs(record_dir), timeout=QUIET), (
                    f"{len(ran_jobs(record_dir))} of {JOBS} jobs of the paused queue ran\n{w_out(workers)}"
                )
                pollers.watching.clear()
                assert asyncio.run(waiting(vhost.url, queue)) == JOBS, "dispatching to a paused queue enqueues"
                resumed = run_python("artisan", "queue:resume", f"rabbitmq:{queue}", env=env)
                assert resumed.returncode == 0, resumed.stdout + resumed.stderr
                assert wait_for(lambda: len(ran_jobs(record_dir)) == JOBS, timeout=120), w_out(workers)
            reads = len(pollers.paused_reads)
            assert reads >= 20 and all(pollers.paused_reads), (
                f"the pollers saw 'not paused' {pollers.paused_reads.count(False)} of {reads} times while paused"
            )
            assert set(pollers.restart_reads) == {stamp}, f"restart reads: {set(pollers.restart_reads)}"
            print(
                f"MEASURED rabbitmq control: 0 of {JOBS} jobs ran in {QUIET:.0f} s paused; the pollers read 'paused' "
                f"{reads} of {reads} times then, and the restart signal {len(pollers.restart_reads)} times unchanged"
            )
            for worker in workers:
                assert worker.alive(), f"a worker stopped:\n{worker.output()}"
                assert "Stopping the worker (restart)" not in worker.output(), worker.output()
        finally:
            for worker in workers:
                worker.stop()


def w_out(workers: list[WorkerProcess]) -> str:
    return "\n---\n".join(worker.output()[-3000:] for worker in workers)
