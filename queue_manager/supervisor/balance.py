"""How many worker processes each queue gets: Horizon's ``AutoScaler``, as pure functions.

``targets`` says what each pool would like (``auto``: a share of ``max_processes`` proportional to its load,
``time_to_clear``: the time to clear its backlog, or its size when job run times are unknown; ``simple``: an
even split; ``off``: one pool for every queue, at ``max_processes`` while it has work). ``step`` moves each pool
toward its target the way Horizon's ``scalePool`` does, at most ``max_shift`` processes per balance, never above
``max_processes`` in all and never below ``min_processes`` per pool. Unlike Horizon (#1295, #622) the pools start
at the minimum (``initial``) and the minimum is kept in every case.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from drivers import QueueConfigurationError

Strategy = Literal["auto", "simple", "off"]
STRATEGIES: tuple[Strategy, ...] = ("auto", "simple", "off")


@dataclass(frozen=True)
class Limits:
    """``--min-processes`` (per pool), ``--max-processes`` (all pools together), ``--max-shift`` (per balance)."""

    min_processes: int = 1
    max_processes: int = 1
    max_shift: int = 1

    def check(self, pools: int) -> None:
        """Refuse limits no balance can keep, naming the flag to change."""
        for flag, value in (("--min-processes", self.min_processes), ("--max-shift", self.max_shift)):
            if value < 1:
                raise QueueConfigurationError(f"{flag} must be a whole number >= 1, got {value}.")
        needed = self.min_processes * pools
        if self.max_processes < needed:
            per = f"{self.min_processes} per queue x {pools} queues" if pools > 1 else f"{self.min_processes}"
            raise QueueConfigurationError(
                f"--max-processes={self.max_processes} is below --min-processes ({per}); "
                f"raise --max-processes to at least {needed} or lower --min-processes."
            )


def check_strategy(value: str) -> Strategy:
    """``--balance``: auto, simple or off (``false`` too, Horizon's spelling of off)."""
    name = (value or "").strip().lower()
    if name == "false":
        name = "off"
    for strategy in STRATEGIES:
        if strategy == name:
            return strategy
    raise QueueConfigurationError(f"--balance must be auto, simple or off, got {value!r}.")


def pools_for(strategy: Strategy, queues: Sequence[str]) -> list[tuple[str, ...]]:
    """One pool per queue when balancing; ``off``: one pool working every queue, first one first."""
    return [tuple(queues)] if strategy == "off" else [(queue,) for queue in queues]


def initial(pools: Sequence[str], limits: Limits) -> dict[str, int]:
    """Every pool boots at the minimum (Horizon #1295 booted at the maximum)."""
    return {pool: limits.min_processes for pool in pools}


def time_to_clear(waiting: Mapping[str, Sequence[tuple[int, float | None]]]) -> dict[str, float]:
    """Each pool's load from its queues' (jobs waiting, typical run time in seconds): the seconds to clear it when
    every queue with jobs has a known run time (Horizon's ``time`` strategy), else the jobs waiting (its ``size``
    strategy: seconds and jobs are never mixed)."""
    timed = all(runtime for queues in waiting.values() for count, runtime in queues if count > 0)
    return {
        pool: float(sum(count * ((runtime or 0.0) if timed else 1.0) for count, runtime in queues))
        for pool, queues in waiting.items()
    }


def targets(strategy: Strategy, loads: Mapping[str, float], limits: Limits) -> dict[str, float]:
    """The processes each pool would like, before the limits (``loads``: pool -> seconds or jobs to clear)."""
    if strategy == "simple":
        return {pool: limits.max_processes / len(loads) for pool in loads}
    total = sum(max(0.0, load) for load in loads.values())
    if total <= 0:
        return {pool: float(limits.min_processes) for pool in loads}
    return {pool: max(0.0, load) / total * limits.max_processes for pool, load in loads.items()}


def step(current: Mapping[str, int], wanted: Mapping[str, float], limits: Limits) -> dict[str, int]:
    """Horizon's ``scalePool`` for every pool, lowest target first (the pools that shrink free room for the ones
    that grow): up by at most ``max_shift`` within ``max_processes`` (leaving each other pool its minimum), down
    by at most ``max_shift`` and never below ``min_processes``."""
    counts = dict(current)
    ceiling = max(limits.min_processes, limits.max_processes - (len(counts) - 1) * limits.min_processes)
    for pool in sorted(counts, key=lambda name: (wanted.get(name, 0.0), name)):
        have, want = counts[pool], math.ceil(wanted.get(pool, 0.0) - 1e-9)
        if want > have:
            room = max(0, limits.max_processes - sum(counts.values()))
            counts[pool] = max(have, min(have + min(room, limits.max_shift), ceiling, want))
        elif want < have:
            counts[pool] = max(have - limits.max_shift, limits.min_processes, want)
    return counts
