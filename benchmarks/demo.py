"""``python -m benchmarks.demo`` (``make demo``): the same job on every connection, with real workers.

For each default connection whose server answers, it starts a real
``taskiq worker`` process, dispatches a batch of jobs, waits for every result
and reports jobs/s from the first dispatch to the last completion. The memory
connection runs in-process and needs no server. A connection whose server does
not answer gets one line saying where it looked and how to start it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskiq import async_shared_broker

from drivers import DRIVERS, BrokerUnreachableError
from drivers.base.urls import host_port
from queue_manager.connection import Connection
from queue_manager.settings import DEFAULT_CONNECTIONS
from queue_manager.worker.process import worker_argv

APP_PATH = "benchmarks.demo:app"
QUEUE = "demo"
BATCH = 100


@async_shared_broker.task(task_name="benchmarks.demo:double")
async def double(number: int) -> int:
    """The demo job: trivial work, so the numbers show the queue's own cost."""
    return number * 2


def demo_environment() -> dict[str, str]:
    """Env for the demo app and its workers: its own queue name and short-lived results."""
    env = {"APP_ENV": os.environ.get("APP_ENV", "demo"), "QUEUE_APP": APP_PATH}
    for name in DEFAULT_CONNECTIONS:
        env[f"QUEUE_CONNECTIONS__{name.upper()}__QUEUE"] = QUEUE
    for name in ("REDIS", "REDIS_STREAM", "RABBITMQ"):
        env[f"QUEUE_CONNECTIONS__{name}__OPTIONS__RESULT_TTL"] = "300"
    return env


def make_app() -> Any:
    from fastapi_startkit import Application

    from queue_manager.provider import QueueProvider

    os.environ.update(demo_environment())
    return Application(base_path=tempfile.mkdtemp(prefix="queue-demo-"), providers=[QueueProvider])


_app: Any = None


def __getattr__(name: str) -> Any:
    """``app`` is built on first use, so importing this module (as the worker does) boots nothing."""
    global _app
    if name == "app":
        if _app is None:
            _app = make_app()
        return _app
    raise AttributeError(name)


@dataclass
class Row:
    connection: str
    driver: str
    sent: int = 0
    completed: int = 0
    seconds: float = 0.0
    note: str = ""

    @property
    def rate(self) -> str:
        return f"{self.completed / self.seconds:,.0f}" if self.seconds and self.completed else "-"


class Worker:
    """A real ``taskiq worker`` process for one connection, in its own process group."""

    def __init__(self, connection: str) -> None:
        self.log = Path(tempfile.mkstemp(prefix=f"queue-demo-{connection}-", suffix=".log")[1])
        env = {**os.environ, **demo_environment(), "QUEUE_WORKER_CONNECTION": connection}
        command = [*worker_argv(["benchmarks.demo"], shutdown_timeout=5), "--log-level", "WARNING"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])


def progress(name: str, done: int, total: int, started: float) -> None:
    if sys.stdout.isatty():
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(f"\r  {name:<13} {done:>6}/{total} jobs done  ({rate:,.0f} jobs/s)", end="", flush=True)


async def run_batch(connection: Connection, jobs: int, row: Row) -> None:
    """Send in concurrent batches (as a busy web app would), then read every result."""
    warm = await connection.dispatch(double, -1)
    await warm.wait_result(timeout=60, check_interval=0.05)
    started = time.perf_counter()
    handles = []
    for first in range(0, jobs, BATCH):
        numbers = range(first, min(first + BATCH, jobs))
        handles += await asyncio.gather(*(connection.dispatch(double, n) for n in numbers))
        row.sent = len(handles)
    # Results are awaited in dispatch order: by the time job i is done, most jobs before it are
    # too, so this costs about one result read per job instead of a storm of polls.
    for number, handle in enumerate(handles):
        result = await handle.wait_result(timeout=120, check_interval=0.002)
        row.completed += int(not result.is_err and result.return_value == number * 2)
        if number % 50 == 0:
            progress(connection.name, row.completed, jobs, started)
    row.seconds = time.perf_counter() - started
    progress(connection.name, row.completed, jobs, started)
    if sys.stdout.isatty():
        print()


async def run_connection(manager: Any, name: str, jobs: int) -> Row:
    connection: Connection = manager.connection(name)
    row = Row(name, connection.driver)
    try:
        await connection.ping()
    except BrokerUnreachableError:
        info = DRIVERS[connection.driver]
        where = host_port(connection.spec.url or "", info.default_port)
        row.note = f"skipped: no server answers at {where}; start one with: {info.start_command(where)}"
        print(f"  {name}: {row.note}")
        return row
    worker = None if connection.driver == "memory" else Worker(name)
    try:
        await connection.startup()
        await asyncio.wait_for(run_batch(connection, jobs, row), timeout=300)
        row.note = "in-process (no worker)" if worker is None else "1 worker process"
    except Exception as error:  # the demo reports a failed connection and goes on
        row.note = f"FAILED: {type(error).__name__}: {error}"
        if worker is not None:
            print(f"  {name} worker log:\n{worker.tail()}")
    finally:
        if worker is not None:
            worker.stop()
        await connection.shutdown()
    return row


def print_table(rows: list[Row]) -> None:
    header = ("connection", "driver", "jobs sent", "jobs completed", "jobs/s", "note")
    table = [header] + [(r.connection, r.driver, str(r.sent), str(r.completed), r.rate, r.note) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    print()
    for index, line in enumerate(table):
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=False))
        ]
        print("  ".join(cells) + "  " + line[-1])
        if index == 0:
            print("  ".join("-" * width for width in widths) + "  " + "-" * 4)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per connection (default 1000)")
    parser.add_argument("--connections", default=",".join(["memory", *DEFAULT_CONNECTIONS[:-1]]))
    args = parser.parse_args(argv)
    # The table says what failed; library retry chatter would only bury it.
    logging.basicConfig(level=logging.ERROR, format="  %(name)s: %(message)s")
    logging.getLogger("aiormq").setLevel(logging.CRITICAL)
    from benchmarks import demo

    manager = demo.app.make("queue.manager")
    print(f"Queue demo: {args.jobs} jobs per connection, one real worker process each.")
    rows = [await run_connection(manager, name, args.jobs) for name in args.connections.split(",") if name]
    print_table(rows)
    failed = [row for row in rows if row.note.startswith("FAILED")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
