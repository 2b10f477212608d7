"""Runtimes and waits as fixed-bucket histograms: a minute of any number of jobs is 18 counts, which add up across
workers and minutes exactly (samples would not), and a percentile read from them is within its bucket's bounds
(interpolated inside it, never above the largest value seen)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

#: The buckets' upper bounds in milliseconds; the last holds everything slower.
BOUNDS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000, 900_000, math.inf,
)  # fmt: skip


def bucket(ms: float) -> int:
    """The index of the bucket ``ms`` falls in."""
    return bisect.bisect_left(BOUNDS_MS, ms)


def empty() -> list[int]:
    return [0] * len(BOUNDS_MS)


def added(into: list[int], other: Sequence[int]) -> list[int]:
    for index, count in enumerate(other[: len(into)]):
        into[index] += int(count)
    return into


def percentile(counts: Sequence[int], q: float, largest: float) -> float | None:
    """The ``q`` quantile (0..1) in ms, interpolated within its bucket and capped at ``largest``; None if empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank, seen = q * total, 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low = BOUNDS_MS[index - 1] if index else 0.0
            high = min(BOUNDS_MS[index], largest)
            value = low + (high - low) * ((rank - seen) / count)
            return round(min(max(value, 0.0), largest), 3)
        seen += count
    return round(largest, 3)
