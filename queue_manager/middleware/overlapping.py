"""``WithoutOverlapping(key)``: one job of a kind (of a key) runs at a time (Laravel's WithoutOverlapping).

The lock is on the job's connection's server, its owner the job's id (a job's retry or redelivery keeps its id,
so it is not locked out by its own crashed run), and it always expires (``expire_after``: by default the job's
``timeout``, else an hour), so a worker SIGKILLed while holding it blocks the key at most that long. A job that
finds the lock taken is released for ``release_after`` seconds (1 by default: Laravel's 0 puts it straight back and
it spins on the queue while the lock is held), which is a release, not an attempt nor an exception;
``dont_release()`` deletes it instead.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from queue_manager.middleware.state import (
    NoJobState,
    fail_unguarded,
    guarded,
    key_part,
    release,
    running,
    task_name,
    timeout_of,
)
from queue_manager.running.pipeline import Next

logger = logging.getLogger("queue_manager.middleware")
DEFAULT_EXPIRY = 3600.0
MAX_EXPIRY = 30 * 86_400.0


def _seconds(value: Any, what: str, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < low:
        raise ValueError(f"WithoutOverlapping({what}=...) must be seconds >= {low:g}, got {value!r}")
    return float(value)


class WithoutOverlapping:
    """Job middleware: the job runs only while it holds the lock of its key (per job class, or ``shared``). The key
    is a value (``WithoutOverlapping(self.user_id)`` in a job class's ``middleware()``) or a function of the job
    (``@task(middleware=[WithoutOverlapping(lambda job: job.user_id)])``)."""

    needs_job_state = True

    def __init__(
        self,
        key: Any = "",
        *,
        release_after: float = 1,
        expire_after: float | None = None,
        shared: bool = False,
        dont_release: bool = False,
    ) -> None:
        self.key: Any = key if callable(key) else key_part(key) if key != "" else ""
        self.release_after = _seconds(release_after, "release_after", 0)
        self.expire_after = None if expire_after is None else _seconds(expire_after, "expire_after", 0.001)
        if self.expire_after is not None and self.expire_after > MAX_EXPIRY:
            raise ValueError(
                f"WithoutOverlapping(expire_after=...) is at most {MAX_EXPIRY:g} s (a lock always expires)"
            )
        self.shared = shared
        self.releases = not dont_release

    def dont_release(self) -> WithoutOverlapping:
        """A job that finds the lock taken is deleted instead of released (Laravel's ``dontRelease()``)."""
        self.releases = False
        return self

    def lock_name(self, job: Any) -> str:
        """``overlap:<task>:<key>``, or ``overlap::<key>`` when ``shared`` across job classes (Laravel's shared())."""
        key = key_part(self.key(job)) if callable(self.key) else self.key
        return f"overlap:{'' if self.shared else task_name(job)}:{key}"

    def expiry(self, job: Any) -> float:
        return self.expire_after or min(MAX_EXPIRY, timeout_of(job) or DEFAULT_EXPIRY)

    async def handle(self, job: Any, next: Next) -> Any:
        name, owner = self.lock_name(job), running(job).job_id
        ttl = self.expiry(job)
        try:
            taken = await guarded(job, repr(self), "lock", name, owner, ttl)
        except NoJobState as error:
            fail_unguarded(job, error)
            return None
        if not taken:
            if self.releases:
                release(job, self.release_after)
            else:
                running(job).delete()
            return None
        try:
            return await next(job)
        finally:
            await asyncio.shield(self._unlock(job, name, owner))

    async def _unlock(self, job: Any, name: str, owner: str) -> None:
        try:
            await guarded(job, repr(self), "unlock", name, owner)
        except Exception as error:  # it expires by itself (expire_after)
            logger.warning("Could not free the WithoutOverlapping lock %s of job %s: %s", name, owner, error)

    def __repr__(self) -> str:
        return f"WithoutOverlapping({self.key!r}{', shared=True' if self.shared else ''})"
