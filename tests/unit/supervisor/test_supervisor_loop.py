"""The supervisor's decisions with stand-in children (real processes that only sleep) and a stand-in for the
queue counts: a paused queue draws no processes, a child that exits 2 stops the supervisor, a crash loop is
slowed down. (tests/e2e/supervisor runs it with real queue:work children on Redis.)"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

from drivers import BrokerUnreachableError
from drivers.base.contract import QueueCounts
from queue_manager.supervisor import supervisor as loop
from queue_manager.supervisor.balance import Limits
from queue_manager.supervisor.pool import spawner
from queue_manager.supervisor.supervisor import Options, Supervisor


class Counts:
    """Queue sizes and pause flags as a connection would report them."""

    def __init__(self, waiting: dict[str, int], paused: set[str] | None = None) -> None:
        self.waiting, self.paused_queues = waiting, paused or set()

    async def counts(self, queue: str | None = None) -> QueueCounts:
        return QueueCounts(waiting=self.waiting[str(queue)])

    async def paused(self, queue: str | None = None) -> bool:
        return queue in self.paused_queues


def supervisor(counts: Counts, command: list[str], limits: Limits) -> tuple[Supervisor, list[str]]:
    said: list[str] = []
    options = Options("redis", tuple(counts.waiting), "auto", limits, cooldown=0.01, tick=0.01)
    return Supervisor(options, spawner(command), counts, said.append), said


def until(predicate, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.02)
    return bool(predicate())


def test_a_paused_queue_draws_no_processes_however_long_its_backlog() -> None:
    counts = Counts({"a": 500, "b": 50}, paused={"a"})
    sup, _ = supervisor(counts, [sys.executable, "-c", "import time; time.sleep(60)"], Limits(1, 4, 1))
    try:
        sup.fill()
        for _ in range(5):
            asyncio.run(sup.balance())
        assert sup.wanted == {"a": 1, "b": 3}
        assert {name: pool.working for name, pool in sup.pools.items()} == {"a": 1, "b": 3}
        counts.paused_queues.clear()  # queue:resume: a's backlog counts again
        for _ in range(5):
            asyncio.run(sup.balance())
        assert sup.wanted["a"] > 1
    finally:
        asyncio.run(sup.stop_children())
    assert not any(pool.total for pool in sup.pools.values())


def test_a_child_refused_with_exit_2_stops_the_supervisor() -> None:
    sup, said = supervisor(Counts({"a": 0}), [sys.executable, "-c", "raise SystemExit(2)"], Limits(1, 2, 1))
    sup.fill()
    assert until(lambda: (sup.watch(), sup.exit_code)[1] == 2)
    assert any("exited with code 2" in line for line in said)
    asyncio.run(sup.stop_children())


def test_a_crash_loop_waits_longer_each_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(loop, "MOST_PAUSE", 4.0)
    sup, said = supervisor(Counts({"a": 0}), [sys.executable, "-c", "raise SystemExit(1)"], Limits(1, 2, 1))
    sup.fill()
    assert until(lambda: (sup.watch(), sup.crashes["a"])[1] >= 3, timeout=60), said
    pauses = [line.rsplit(" in ", 1)[1] for line in said if "starting another in" in line]
    assert pauses[:3] == ["1 s", "2 s", "4 s"]
    asyncio.run(sup.stop_children())


def test_sigterm_to_a_child_group_reaches_the_whole_group() -> None:
    """Each child has its own process group: stopping one signals only its group."""
    counts = Counts({"a": 0, "b": 0})
    sup, _ = supervisor(counts, [sys.executable, "-c", "import time; time.sleep(60)"], Limits(1, 2, 1))
    sup.fill()
    [child_a] = sup.pools["a"].children
    [child_b] = sup.pools["b"].children
    assert os.getpgid(child_a.pid) == child_a.pid != os.getpgid(0)
    child_a.stop()
    assert child_a.process.wait(timeout=30) == -signal.SIGTERM
    assert child_b.process.poll() is None
    asyncio.run(sup.stop_children())


def test_a_server_that_cannot_be_asked_keeps_the_processes_and_says_so_once(caplog) -> None:  # type: ignore[no-untyped-def]
    class Away(Counts):
        async def counts(self, queue: str | None = None) -> QueueCounts:
            raise BrokerUnreachableError("Cannot reach the redis server of queue connection 'redis' at 127.0.0.1:1")

    sup, _ = supervisor(Away({"a": 0, "b": 0}), [sys.executable, "-c", "import time; time.sleep(60)"], Limits(1, 4, 1))
    try:
        sup.fill()
        for _ in range(3):
            asyncio.run(sup.balance())
        assert sup.wanted == {"a": 1, "b": 1}
        warnings = [r for r in caplog.records if "cannot count the queues" in r.getMessage()]
        assert len(warnings) == 1 and "127.0.0.1:1" in warnings[0].getMessage()
    finally:
        asyncio.run(sup.stop_children())
