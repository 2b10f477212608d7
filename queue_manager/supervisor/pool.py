"""The ``queue:work`` children of one pool (one queue, or every queue with ``--balance=off``).

Each child runs in its own process group, so a signal meant for one (SIGTERM: finish the running jobs, then
exit) reaches its whole worker and nothing else; on Linux each is also told to stop when the supervisor dies
(``PR_SET_PDEATHSIG``), so a supervisor killed with SIGKILL leaves no orphan taking jobs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field

Spawn = Callable[[tuple[str, ...]], "subprocess.Popen[bytes]"]


def _stop_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send this child SIGTERM when the supervisor dies (best effort; other systems skip it)."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawner(command: Sequence[str], env: dict[str, str] | None = None) -> Spawn:
    """``spawn(queues)``: start ``command --queue=<queues>`` as a child in its own process group."""

    def spawn(queues: tuple[str, ...]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*command, f"--queue={','.join(queues)}"],
            env=env,
            start_new_session=True,
            preexec_fn=_stop_with_parent,  # no threads run in the supervisor when it forks
        )

    return spawn


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False  # told to finish its jobs and exit (scaled down, or the supervisor stops)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM to its process group: the worker finishes its running jobs and exits."""
        self.stopping = True
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGTERM)

    def kill(self) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


@dataclass
class Pool:
    queues: tuple[str, ...]
    spawn: Spawn
    children: list[Child] = field(default_factory=list)

    @property
    def name(self) -> str:
        return ",".join(self.queues)

    @property
    def working(self) -> int:
        """Children taking jobs (those told to stop are finishing theirs)."""
        return sum(not child.stopping for child in self.children)

    @property
    def total(self) -> int:
        """Every child still alive, the ones finishing their jobs too (they still hold jobs and memory)."""
        return len(self.children)

    def start(self) -> Child:
        child = Child(self.spawn(self.queues))
        self.children.append(child)
        return child

    def scale(self, processes: int) -> tuple[list[Child], list[Child]]:
        """Start or stop children until ``processes`` are working; the newest stop first. (started, stopped)"""
        started: list[Child] = []
        stopped: list[Child] = []
        while self.working < processes:
            started.append(self.start())
        working = [child for child in self.children if not child.stopping]
        for child in reversed(working[processes:]):
            child.stop()
            stopped.append(child)
        return started, stopped

    def reap(self) -> list[tuple[Child, int]]:
        """The children that exited since the last look, with their exit codes (removed from the pool)."""
        ended = [(child, code) for child in self.children if (code := child.process.poll()) is not None]
        for child, _ in ended:
            self.children.remove(child)
        return ended

    def stop_all(self) -> None:
        for child in self.children:
            if not child.stopping:
                child.stop()
