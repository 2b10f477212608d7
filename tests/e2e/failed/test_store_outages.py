"""The failed-jobs store away while real `queue:work` workers fail jobs: stopped (a private PostgreSQL or Redis),
or cut off by a partition (a TCP proxy that stops forwarding). No record is lost (they wait in the worker's
spool and reach the store when it is back), and the worker goes on with its good jobs meanwhile."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from queue_manager.failed import FailedSettings, make_store
from queue_manager.failed.spool import Spool
from tests.helpers import (
    SEED_APP,
    connections_env,
    dispatch_jobs,
    lines,
    push_foreign,
    queue_work,
    ran_jobs,
    wait_for,
)
from tests.servers import private_postgres, private_redis, tcp_proxy

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
TASKS = "--tasks=app.jobs"
FAILURES = 50


class PrivateStore:
    """A failed-jobs store on a private server the test stops, starts or cuts off."""

    def __init__(self, kind: str, server: Any, port: int) -> None:
        self.kind, self.server, self.port = kind, server, port

    def env(self) -> dict[str, str]:
        if self.kind == "postgres":
            return {"QUEUE_FAILED__URL": f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.server.database}"}
        return {
            "QUEUE_FAILED__DRIVER": "redis",
            "QUEUE_FAILED__CONNECTION": "store",
            "QUEUE_CONNECTIONS__STORE__DRIVER": "redis",
            "QUEUE_CONNECTIONS__STORE__URL": f"redis://127.0.0.1:{self.port}/0",
        }

    def settings(self) -> FailedSettings:
        env = self.env()
        if self.kind == "postgres":
            return FailedSettings(url=env["QUEUE_FAILED__URL"])
        return FailedSettings(driver="redis")

    def count(self) -> int:
        async def count() -> int:
            store = make_store(
                self.settings(), SEED_APP, lambda connection: self.env().get("QUEUE_CONNECTIONS__STORE__URL", "")
            )
            try:
                return await store.count()
            finally:
                await store.close()

        try:
            return asyncio.run(count())
        except Exception:
            return -1

    def spool(self) -> Path:
        store = make_store(
            self.settings(), SEED_APP, lambda connection: self.env().get("QUEUE_CONNECTIONS__STORE__URL", "")
        )
        return Spool(SEED_APP, store.identity).directory


@contextmanager
def private_store(kind: str, tmp_path: Path, through_proxy: bool = False) -> Iterator[tuple[PrivateStore, Any]]:
    """The store's server (and a proxy in front of it, to cut it off); the worker's spool is removed after."""
    with ExitStack() as stack:
        server = stack.enter_context(private_postgres("failed") if kind == "postgres" else private_redis(tmp_path))
        proxy = stack.enter_context(tcp_proxy(server.port)) if through_proxy else None
        store = PrivateStore(kind, server, proxy.port if proxy is not None else server.port)
        try:
            yield store, proxy
        finally:
            shutil.rmtree(store.spool(), ignore_errors=True)


def failing(numbers: range) -> list[dict[str, Any]]:
    return [{"task": "always_fails", "args": [n], "labels": {"retries": 0}} for n in numbers]


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_failures_while_the_store_is_stopped_are_all_recorded_once_it_is_back(
    kind: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    with private_store(kind, tmp_path) as (store, _):
        env = connections_env(queues, record_dir, "redis", **store.env())
        with queue_work("redis", TASKS, env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            store.server.stop()
            dispatch_jobs(failing(range(FAILURES)), env, wait=False)
            assert wait_for(lambda: worker.output().count("Recorded as failed job") == FAILURES, timeout=120), (
                worker.output()[-3000:]
            )
            assert all(lines(record_dir / f"fails-{n}") for n in range(FAILURES)), "every job ran"
            assert "kept in" in worker.output() and "until the store answers" in worker.output()
            store.server.start()
            assert wait_for(lambda: store.count() == FAILURES, timeout=120), (store.count(), worker.output()[-3000:])
            assert wait_for(lambda: not any(store.spool().glob("*.json")), timeout=30), "the spool is written out"
            assert "Wrote 50 failed job(s) from the spool" in worker.output()


@contextmanager
def worker_cut_off_from_its_store(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> Iterator[tuple[PrivateStore, Any, dict[str, str], Any]]:
    """A worker with 10 slots whose store (a private PostgreSQL behind a proxy) answered once, then is cut off."""
    with private_store("postgres", tmp_path, through_proxy=True) as (store, proxy):
        env = connections_env(queues, record_dir, "redis", **store.env())
        with queue_work("redis", TASKS, "--max-async-tasks=10", env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            dispatch_jobs(failing(range(1000, 1001)), env, wait=False)  # the worker's store connection is open
            assert wait_for(lambda: store.count() == 1, timeout=60), worker.output()
            proxy.black_hole()
            yield store, proxy, env, worker


def good_jobs_run_meanwhile(env: dict[str, str], record_dir: Path, worker: Any) -> float:
    """Send 20 good jobs; how long they took to run (the store still cut off)."""
    started = time.monotonic()
    dispatch_jobs([{"task": "remember", "args": [n]} for n in range(20)], env, wait=False)
    assert wait_for(lambda: len(ran_jobs(record_dir)) == 20, timeout=45), (
        f"{len(ran_jobs(record_dir))} of 20 good jobs ran in 45 s while the store was cut off",
        worker.output()[-3000:],
    )
    return time.monotonic() - started


def test_failing_jobs_do_not_hold_the_worker_slots_while_the_store_is_cut_off(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    with worker_cut_off_from_its_store(queues, record_dir, tmp_path) as (store, proxy, env, worker):
        started = time.monotonic()
        dispatch_jobs(failing(range(12)), env, wait=False)  # more failing jobs than the worker has slots
        took = good_jobs_run_meanwhile(env, record_dir, worker)
        assert wait_for(lambda: worker.output().count("Recorded as failed job") == 1 + 12, timeout=60)
        recorded = time.monotonic() - started
        print(f"cut off: 20 good jobs ran in {took:.1f} s; 12 failures recorded (spooled) in {recorded:.1f} s")
        proxy.heal()
        assert wait_for(lambda: store.count() == 1 + 12, timeout=120), (store.count(), worker.output()[-3000:])


def test_a_message_no_worker_can_run_does_not_hold_up_the_fetch_loop_while_the_store_is_cut_off(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    with worker_cut_off_from_its_store(queues, record_dir, tmp_path) as (store, proxy, env, worker):
        asyncio.run(push_foreign("redis", queues["redis"], [b"\x00\xffnot a taskiq message"]))
        took = good_jobs_run_meanwhile(env, record_dir, worker)
        print(f"cut off: 20 good jobs behind an undecodable message ran in {took:.1f} s")
        proxy.heal()
        assert wait_for(lambda: store.count() == 1 + 1, timeout=120), (store.count(), worker.output()[-3000:])
        assert "cannot run: undecodable" in worker.output()
