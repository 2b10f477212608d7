"""The supervisor's loop (Horizon's ``Supervisor::monitor``): once a second it restarts the children that ended,
every ``cooldown`` seconds it balances the pools by the jobs waiting, and on SIGTERM/SIGINT it tells every child
to finish its jobs and waits for all of them before returning 0.

A child that ends by itself is started again: a crash (any exit code but 0 and 2, or a signal), or a clean stop
(``queue:restart``, ``--max-jobs``, ``--max-time``, ``--memory``), which is how the new code is picked up. A
child that exits 2 had its input or credentials refused: starting it again cannot help, so the supervisor stops
every child and exits 2. A child that crashes within ``QUICK_CRASH`` seconds of its start is started again after
a pause that doubles each time (up to ``MOST_PAUSE``), so a broken deploy does not spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from drivers import QueueConfigurationError
from drivers.base.contract import QueueCounts
from queue_manager.supervisor.balance import Limits, Strategy, initial, pools_for, step, targets, time_to_clear
from queue_manager.supervisor.pool import Child, Pool, Spawn

logger = logging.getLogger("queue_manager.supervisor")

REFUSED = 2  # queue:work's exit code for refused input or credentials
QUICK_CRASH = 5.0
MOST_PAUSE = 30.0


class Counted(Protocol):
    """What the supervisor asks of its connection (``queue_manager.connection.Connection``)."""

    async def counts(self, queue: str | None = None) -> QueueCounts: ...

    async def paused(self, queue: str | None = None) -> bool: ...


@dataclass(frozen=True)
class Options:
    connection: str
    queues: tuple[str, ...]
    strategy: Strategy = "auto"
    limits: Limits = field(default_factory=Limits)
    cooldown: float = 3.0  # seconds between two balances (Horizon's balanceCooldown)
    tick: float = 1.0  # seconds between two looks at the children


def describe(code: int) -> str:
    return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"


class Supervisor:
    def __init__(
        self,
        options: Options,
        spawn: Spawn,
        connection: Counted,
        say: Callable[[str], None],
        runtime: Callable[[str], Awaitable[float | None]] | None = None,
    ) -> None:
        self.options = options
        self.connection = connection
        self.runtime = runtime  # a queue's typical job run time in seconds (the workers' metrics), if known
        self.say = say
        self.pools = {pool.name: pool for pool in (Pool(q, spawn) for q in pools_for(options.strategy, options.queues))}
        self.wanted = initial(list(self.pools), options.limits)
        self.crashes = dict.fromkeys(self.pools, 0)
        self.hold_until = dict.fromkeys(self.pools, 0.0)
        self.exit_code: int | None = None
        self._unreachable = False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        try:
            self.say(
                f"Supervising {self.options.connection}: {', '.join(self.options.queues)} "
                f"(balance={self.options.strategy}, processes {self.options.limits.min_processes}"
                f"..{self.options.limits.max_processes})"
            )
            self.fill()
            self.report()
            last_balance = time.monotonic()
            while not stopping.is_set() and self.exit_code is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self.options.tick)
                if stopping.is_set():
                    break
                self.watch()
                if self.exit_code is None and time.monotonic() - last_balance >= self.options.cooldown:
                    last_balance = time.monotonic()
                    await self.balance()
        finally:  # a failure of the supervisor itself still lets every child finish its jobs
            await self.stop_children()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return self.exit_code or 0

    # -- children ---------------------------------------------------------------------------------
    def fill(self) -> None:
        """Bring every pool to its wanted count (starting children, stopping the newest), save the held ones."""
        now = time.monotonic()
        for name, pool in self.pools.items():
            if pool.working < self.wanted[name] and now < self.hold_until[name]:
                continue
            started, stopped = pool.scale(self.wanted[name])
            for child in started:
                self.say(f"Started worker {child.pid} for {name}")
            for child in stopped:
                self.say(f"Stopping worker {child.pid} of {name}: finishing its jobs")

    def watch(self) -> None:
        """Start again the children that ended by themselves; stop everything on a refused one."""
        for name, pool in self.pools.items():
            for child, code in pool.reap():
                if child.stopping:
                    self.say(f"Worker {child.pid} of {name} stopped")
                    continue
                self.ended(name, child, code)
        if self.exit_code is None:
            self.fill()

    def ended(self, name: str, child: Child, code: int) -> None:
        if code == REFUSED:
            self.say(f"Worker {child.pid} of {name} exited with code 2 (refused settings or credentials); stopping")
            logger.error("A queue:work child of %s was refused (exit 2): the supervisor stops", name)
            self.exit_code = REFUSED
            return
        lived = time.monotonic() - child.started
        if code != 0 and lived < QUICK_CRASH:
            self.crashes[name] += 1
            pause = min(MOST_PAUSE, 2.0 ** (self.crashes[name] - 1))
            self.hold_until[name] = time.monotonic() + pause
            self.say(
                f"Worker {child.pid} of {name} {describe(code)} after {lived:.1f} s; starting another in {pause:g} s"
            )
            return
        self.crashes[name] = 0
        what = "crashed: it " + describe(code) if code != 0 else "exited (restart or a stop flag)"
        self.say(f"Worker {child.pid} of {name} {what}; starting another")

    async def stop_children(self) -> None:
        alive = sum(pool.total for pool in self.pools.values())
        self.say(f"Stopping: {alive} worker{'' if alive == 1 else 's'} finishing their jobs")
        for pool in self.pools.values():
            pool.stop_all()
        while any(pool.total for pool in self.pools.values()):
            for name, pool in self.pools.items():
                for child, code in pool.reap():
                    self.say(f"Worker {child.pid} of {name} stopped ({describe(code)})")
            await asyncio.sleep(0.1)
        self.say("Supervisor stopped")

    # -- balancing --------------------------------------------------------------------------------
    async def loads(self) -> tuple[dict[str, float], dict[str, int]] | None:
        """Each pool's load (``time_to_clear``) and jobs waiting; a paused queue counts none, its workers may not
        take them. None: the server cannot be asked now."""
        waiting: dict[str, list[tuple[int, float | None]]] = {}
        try:
            for name, pool in self.pools.items():
                waiting[name] = []
                for queue in pool.queues:
                    count = 0 if await self._paused(queue) else (await self.connection.counts(queue)).waiting
                    runtime = await self.runtime(queue) if count and self.runtime is not None else None
                    waiting[name].append((count, runtime))
        except Exception as error:  # the server is away (BrokerUnreachableError), or answered oddly: try next time
            if not self._unreachable:
                logger.warning("queue:supervise cannot count the queues, keeping the processes as they are: %s", error)
            self._unreachable = True
            return None
        self._unreachable = False
        return time_to_clear(waiting), {name: sum(count for count, _ in queues) for name, queues in waiting.items()}

    async def _paused(self, queue: str) -> bool:
        try:
            return await self.connection.paused(queue)
        except QueueConfigurationError:  # a driver that keeps no shared state cannot be paused
            return False

    async def balance(self) -> None:
        measured = await self.loads()
        if measured is None:
            return
        loads, waiting = measured
        wanted = step(self.wanted, targets(self.options.strategy, loads, self.options.limits), self.options.limits)
        if wanted == self.wanted:
            return
        self.wanted = wanted
        self.fill()
        self.report(waiting)

    def report(self, waiting: dict[str, int] | None = None) -> None:
        counts = " ".join(f"{name}={count}" for name, count in self.wanted.items())
        jobs = " ".join(f"{name}={count}" for name, count in waiting.items()) if waiting is not None else ""
        self.say(f"Processes {counts}" + (f" (waiting {jobs})" if jobs else ""))
