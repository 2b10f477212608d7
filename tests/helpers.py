"""Shared test helpers: unique names, env isolation, real worker processes, broker cleanup."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from queue_manager import QueueManager

ROOT = Path(__file__).resolve().parent.parent
SEED_APP = ROOT / "tests" / "app"
PYTHON = sys.executable
SERVER_DRIVERS = ("redis", "redis_stream", "rabbitmq", "nats")
ENV_PREFIXES = ("QUEUE_", "REDIS_", "RABBITMQ_", "NATS_")


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's env without any queue/broker variables, plus ``extra``."""
    # Without PYTEST_CURRENT_TEST (and the APP_ENV=testing our pytest plugin sets) a child app is not in
    # fastapi-startkit's "testing" env, so the seed app's .env.testing (QUEUE_DRIVER=memory, for its own
    # example tests) does not apply.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(ENV_PREFIXES) and k not in ("PYTEST_CURRENT_TEST", "APP_ENV")
    }
    env.update(extra or {})
    return env


def queue_env(driver: str, queue: str, **extra: str) -> dict[str, str]:
    """Env for a seed-app process on ``driver`` using a queue name unique to this test."""
    return {"QUEUE_DRIVER": driver, f"QUEUE_CONNECTIONS__{driver.upper()}__QUEUE": queue, **extra}


def run_python(
    script: str | Path, *args: str, env: Mapping[str, str], cwd: Path = SEED_APP, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(script), *args],
        cwd=cwd,
        env=clean_environ(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class WorkerProcess:
    """A real worker process (``taskiq worker`` or ``artisan queue:work``) in its own process group."""

    def __init__(
        self, *args: str, env: Mapping[str, str], cwd: Path = SEED_APP, log: Path, command: list[str] | None = None
    ) -> None:
        self.log = log
        self.handle = log.open("ab")
        argv = command or [PYTHON, "-m", "taskiq", "worker", *args, "--wait-tasks-timeout", "5"]
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=clean_environ(env),
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no acknowledgements."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every worker process has started its broker (the worker logs "Worker ready")."""
        assert wait_for(lambda: "Worker ready" in self.output() or not self.alive(), timeout=timeout), self.output()
        assert self.alive(), f"the worker exited:\n{self.output()}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        if not self.handle.closed:
            self.handle.flush()
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.alive():
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.handle.close()
        return self.process.returncode


@contextmanager
def worker(*args: str, env: Mapping[str, str], log: Path, cwd: Path = SEED_APP) -> Iterator[WorkerProcess]:
    process = WorkerProcess(*args, env=env, cwd=cwd, log=log)
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def queue_work(*args: str, env: Mapping[str, str], log: Path, cwd: Path = SEED_APP) -> Iterator[WorkerProcess]:
    """``python artisan queue:work ARGS`` (it execs a taskiq worker), stopped at the end."""
    process = WorkerProcess(env=env, cwd=cwd, log=log, command=[PYTHON, "artisan", "queue:work", *args])
    try:
        yield process
    finally:
        process.stop()


def wait_for(predicate, timeout: float = 30, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def recorded(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split()]


async def cleanup_queue(driver: str, queue: str) -> None:
    """Delete what a test's unique queue left on the shared servers: its jobs, and its pause flag (through the
    driver's own control state, so the flag's name is the driver's)."""
    await _drop_pause_flag(driver, queue)
    if driver in ("redis", "redis_stream"):
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            keys = [f"queues:{queue}", f"queues:stream:{queue}"]
            await redis.delete(*keys, *(f"{key}:{kind}" for key in keys for kind in ("delayed", "reserved")))
    elif driver == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
    elif driver == "nats":
        import nats

        client = await nats.connect("nats://127.0.0.1:4222")
        try:
            js = client.jetstream()
            with suppress(Exception):
                await js.delete_consumer("QUEUES", f"workers_{queue}")
            with suppress(Exception):  # a work-queue stream keeps jobs nobody consumes: drop this run's
                await js.purge_stream("QUEUES", subject=f"queues.{queue}")
        finally:
            await client.close()


async def _drop_pause_flag(driver: str, queue: str) -> None:
    from queue_manager import QueueManager
    from queue_manager.settings import load_settings

    manager = QueueManager(load_settings({"driver": driver}))
    try:
        with suppress(Exception):  # a server that is down, a name the driver refuses: nothing was paused there
            await manager.connection(driver).resume(queue)
    finally:
        await manager.shutdown()


def cleanup(driver: str, queue: str) -> None:
    asyncio.run(cleanup_queue(driver, queue))


def dispatch_jobs(
    specs: list[dict],
    env: Mapping[str, str],
    wait: bool = True,  # type: ignore[type-arg]
    timeout: float = 90,
) -> list[dict]:  # type: ignore[type-arg]
    """Run tests/app/dispatch_jobs.py: dispatch as a Laravel user would, return what came back."""
    import json

    args = [json.dumps(specs), *(["--wait"] if wait else [])]
    done = run_python("dispatch_jobs.py", *args, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def lines(path: Path) -> list[str]:
    return path.read_text().split("\n")[:-1] if path.exists() else []


def ran_jobs(record_dir: Path) -> dict[int, tuple[float, str]]:
    """job id -> (time it ran, connection that ran it), from app.jobs.remember's record."""
    rows = (line.split() for line in lines(record_dir / "ran"))
    return {int(job): (float(at), where) for job, at, where in rows}


def connections_env(queues: dict[str, str], record_dir: Path, driver: str, **extra: str) -> dict[str, str]:
    """Env for the example app on ``driver``, every connection on its unique queue."""
    env = {
        "QUEUE_DRIVER": driver,
        "RECORD_DIR": str(record_dir),
        # the test's own failed-jobs database, not the example app's storage/
        "QUEUE_FAILED__URL": f"sqlite+aiosqlite:///{record_dir}/failed_jobs.sqlite",
        **extra,
    }
    for name, queue in queues.items():
        env[f"QUEUE_CONNECTIONS__{name.upper()}__QUEUE"] = queue
    return env


async def queued(driver: str, queue: str) -> int:
    """How many jobs wait in the queue, read with the broker's own client."""
    if driver == "redis":
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            return int(await redis.llen(f"queues:{queue}"))
    if driver == "redis_stream":
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            return int(await redis.xlen(f"queues:stream:{queue}"))
    if driver == "rabbitmq":
        import aio_pika

        async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
            channel = await amqp.channel()
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)
    import nats

    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        info = await client.jetstream().stream_info("QUEUES", subjects_filter=f"queues.{queue}")
        return int((info.state.subjects or {}).get(f"queues.{queue}", 0))
    finally:
        await client.close()


def one_connection_manager(driver: str, url: str, queue: str, **options: Any) -> QueueManager:
    """A manager of one connection, made the current one (use with the ``no_current_manager`` fixture)."""
    from queue_manager import QueueManager, use_manager
    from queue_manager.settings import load_settings

    connection = {"url": url, "queue": queue, "options": options}
    manager = QueueManager(load_settings({"driver": driver, "connections": {driver: connection}}))
    use_manager(manager)
    return manager


async def push_foreign(driver: str, queue: str, payloads: list[bytes], headers: dict[str, str] | None = None) -> None:
    """Straight into the broker's queue with its own client (on the shared servers), as a foreign producer
    would: no queue manager, no TaskIQ."""
    if driver in ("redis", "redis_stream"):
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            for payload in payloads:
                if driver == "redis":
                    await redis.lpush(f"queues:{queue}", payload)
                else:
                    await redis.xadd(f"queues:stream:{queue}", {"data": payload})
    elif driver == "rabbitmq":
        import aio_pika
        from aiormq.exceptions import DeliveryError

        async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
            channel = await amqp.channel()
            for payload in payloads:
                message = aio_pika.Message(payload, headers=dict(headers or {}))
                for attempt in range(3):  # a nack (seen once, under load) means "not stored": safe to send again
                    try:
                        await channel.default_exchange.publish(message, routing_key=queue)
                        break
                    except DeliveryError:
                        if attempt == 2:
                            raise
    else:
        import nats

        client = await nats.connect("nats://127.0.0.1:4222")
        try:
            for payload in payloads:
                await client.jetstream().publish(f"queues.{queue}", payload, headers=headers)
        finally:
            await client.close()
