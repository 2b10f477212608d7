"""``RateLimited("emails")``: a job starts only if its named limit has room (Laravel's RateLimited middleware).

The window is kept on the job's connection's server and slides (Celery's ``rate_limit`` is per worker and holds
prefetched jobs; Dramatiq's buckets burst at window edges), so every worker of every machine shares it. A job
over the limit is released, back on its queue until about when its slot frees, holding no worker slot meanwhile;
that is a release, not an attempt and not an exception. ``dont_release()`` deletes it instead.
"""

from __future__ import annotations

import random
from typing import Any

from drivers.base.errors import QueueConfigurationError
from queue_manager.middleware.limits import RateLimits, rate_limits
from queue_manager.middleware.state import NoJobState, fail_unguarded, guarded, key_part, release, running
from queue_manager.running.pipeline import Next

MAX_SPREAD = 1.0  # at most this many seconds added to a release, so the jobs waiting for a window do not return at once


class RateLimited:
    """Job middleware: the named limit (``rate_limits.define``) decides whether the job starts now."""

    needs_job_state = True

    def __init__(self, name: str, *, dont_release: bool = False, limits: RateLimits | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"RateLimited takes the name of a defined rate limit, got {name!r}")
        self.name = name
        self.releases = not dont_release
        self.limits = limits if limits is not None else rate_limits

    def dont_release(self) -> RateLimited:
        """A job over the limit is deleted instead of released (Laravel's ``dontRelease()``)."""
        self.releases = False
        return self

    async def handle(self, job: Any, next: Next) -> Any:
        try:
            limits = self.limits.limits_for(self.name, job)
        except QueueConfigurationError as error:  # an undefined limit: no retry would find it, fail for good
            running(job).fail(error)
            return None
        for index, limit in enumerate(limits):
            name = f"limit:{key_part(self.name)}:{index}:{key_part(limit.key)}"
            try:
                wait = await guarded(job, repr(self), "hit", name, limit.max_attempts, limit.decay_seconds)
            except NoJobState as error:
                fail_unguarded(job, error)
                return None
            if wait > 0:
                if self.releases:
                    spread = random.uniform(0, min(MAX_SPREAD, limit.decay_seconds / limit.max_attempts))
                    release(job, wait + spread)
                else:
                    running(job).delete()
                return None
        return await next(job)

    def __repr__(self) -> str:
        return f"RateLimited({self.name!r}{'' if self.releases else ', dont_release=True'})"
