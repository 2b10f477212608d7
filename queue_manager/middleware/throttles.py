"""``ThrottlesExceptions(max_attempts, decay_seconds)``: a circuit breaker for a job that talks to a flaky service
(Laravel's ThrottlesExceptions).

Each exception the job raises is counted in a sliding window on the job's connection's server (per job class or
task; per job with ``by_job=True``). When ``max_attempts`` of them fall within ``decay_seconds`` the circuit opens:
for ``decay_seconds`` every job it covers is released for that long instead of running (a release, not an attempt
nor an exception). The exception itself goes on as usual (the job's ``tries``/``backoff`` decide its retry).
``when(predicate)`` counts only the exceptions it accepts.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from queue_manager.middleware.limits import MAX_WINDOW
from queue_manager.middleware.state import NoJobState, fail_unguarded, guarded, release, running, task_name
from queue_manager.running.pipeline import Next

logger = logging.getLogger("queue_manager.middleware")
_PROBE, _OPEN = "probe", "open"  # the owners of the circuit's lock: a check holds it a millisecond, a trip for decay


class ThrottlesExceptions:
    """Job middleware: after ``max_attempts`` exceptions within ``decay_seconds``, jobs wait ``decay_seconds``."""

    needs_job_state = True

    def __init__(self, max_attempts: int = 10, decay_seconds: float = 600, *, by_job: bool = False) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or not 1 <= max_attempts <= 100_000:
            raise ValueError(f"ThrottlesExceptions(max_attempts=...) must be a whole number >= 1, got {max_attempts!r}")
        if (
            isinstance(decay_seconds, bool)
            or not isinstance(decay_seconds, int | float)
            or not math.isfinite(decay_seconds)
            or not 0.01 <= decay_seconds <= MAX_WINDOW
        ):
            raise ValueError(
                f"ThrottlesExceptions(decay_seconds=...) must be from 0.01 to {MAX_WINDOW:g} seconds, "
                f"got {decay_seconds!r}"
            )
        self.max_attempts = max_attempts
        self.decay_seconds = float(decay_seconds)
        self.by_job = by_job
        self.counts: Callable[[BaseException], bool] = lambda _error: True

    def when(self, predicate: Callable[[BaseException], bool]) -> ThrottlesExceptions:
        """Count only the exceptions ``predicate`` accepts (Laravel's ``when``)."""
        self.counts = predicate
        return self

    def names(self, job: Any) -> tuple[str, str]:
        """(the window of its exceptions, the circuit's lock)."""
        base = f"throttle:{task_name(job)}" + (f":{running(job).job_id}" if self.by_job else "")
        return base, base + ":open"

    async def handle(self, job: Any, next: Next) -> Any:
        errors, circuit = self.names(job)
        what = repr(self)
        try:
            closed = await guarded(job, what, "lock", circuit, _PROBE, 0.001)
        except NoJobState as error:
            fail_unguarded(job, error)
            return None
        if not closed:
            release(job, self.decay_seconds)
            return None
        try:
            return await next(job)
        except Exception as error:
            if self.counts(error):
                try:
                    await asyncio.shield(self._count(job, what, errors, circuit))
                except Exception as counting:  # the job's own error is what it raised: keep it
                    logger.warning("%s could not count an exception of job %s: %s", what, task_name(job), counting)
            raise

    async def _count(self, job: Any, what: str, errors: str, circuit: str) -> None:
        """Count the exception; the one that fills the window opens the circuit for ``decay_seconds``."""
        if self.max_attempts > 1:
            wait = await guarded(job, what, "hit", errors, self.max_attempts - 1, self.decay_seconds)
            if wait <= 0:
                return
        for _ in range(20):  # a check may hold the circuit's lock for a millisecond
            if await guarded(job, what, "lock", circuit, _OPEN, self.decay_seconds):
                return
            await asyncio.sleep(0.002)

    def __repr__(self) -> str:
        by_job = ", by_job=True" if self.by_job else ""
        return f"ThrottlesExceptions({self.max_attempts}, {self.decay_seconds:g}{by_job})"
