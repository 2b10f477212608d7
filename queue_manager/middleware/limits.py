"""Named rate limits, defined once (Laravel's ``RateLimiter::for``): ``rate_limits.define("emails", lambda job:
Limit.per_minute(10).by(job.user_id))``; ``RateLimited("emails")`` applies one to a job."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from drivers.base.errors import QueueConfigurationError

MAX_WINDOW = 86_400.0  # a day: the longest window every driver keeps


@dataclass(frozen=True)
class Limit:
    """At most ``max_attempts`` starts per ``decay_seconds`` (a sliding window), per ``key`` (``by``)."""

    max_attempts: int
    decay_seconds: float
    key: str = ""
    unlimited: bool = False

    def __post_init__(self) -> None:
        if self.unlimited:
            return
        attempts, decay = self.max_attempts, self.decay_seconds
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100_000:
            raise QueueConfigurationError(
                f"Limit: max_attempts must be a whole number from 1 to 100000, got {attempts!r}."
            )
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not math.isfinite(decay):
            raise QueueConfigurationError(f"Limit: the window must be seconds, got {decay!r}.")
        if not 0.001 <= decay <= MAX_WINDOW:
            raise QueueConfigurationError(
                f"Limit: the window must be from 0.001 to {MAX_WINDOW:g} seconds (Limit.per_day), got {decay:g}."
            )

    @classmethod
    def per_second(cls, max_attempts: int, decay_seconds: float = 1) -> Limit:
        """``max_attempts`` per ``decay_seconds`` seconds (``Limit.per_second(5, 2)``: 5 per 2 s)."""
        return cls(max_attempts, decay_seconds)

    @classmethod
    def per_minute(cls, max_attempts: int, decay_minutes: float = 1) -> Limit:
        return cls(max_attempts, decay_minutes * 60)

    @classmethod
    def per_minutes(cls, decay_minutes: float, max_attempts: int) -> Limit:
        """Laravel's ``Limit::perMinutes(5, 100)``: 100 per 5 minutes."""
        return cls(max_attempts, decay_minutes * 60)

    @classmethod
    def per_hour(cls, max_attempts: int, decay_hours: float = 1) -> Limit:
        return cls(max_attempts, decay_hours * 3600)

    @classmethod
    def per_day(cls, max_attempts: int) -> Limit:
        return cls(max_attempts, 86_400)

    @classmethod
    def none(cls) -> Limit:
        """No limit (e.g. for a customer on a paid plan)."""
        return cls(0, 0, unlimited=True)

    def by(self, key: Any) -> Limit:
        """A window per ``key`` (a user id, a customer): ``Limit.per_minute(10).by(job.user_id)``."""
        return replace(self, key=str(key))


LimitFactory = Callable[[Any], "Limit | Sequence[Limit] | None"]


class RateLimits:
    """The named limits of the app (``rate_limits``): a name -> a function of the job returning its limit(s)."""

    def __init__(self) -> None:
        self._defined: dict[str, LimitFactory] = {}

    def define(self, name: str, limit: LimitFactory | Limit) -> None:
        """``rate_limits.define("emails", lambda job: Limit.per_minute(10).by(job.user_id))`` (or a ``Limit``)."""
        if not isinstance(name, str) or not name:
            raise QueueConfigurationError(f"rate_limits.define: the name must be a non-empty string, got {name!r}.")
        if isinstance(limit, Limit):
            fixed = limit
            self._defined[name] = lambda _job: fixed
        elif callable(limit):
            self._defined[name] = limit
        else:
            raise QueueConfigurationError(
                f"rate_limits.define({name!r}, ...) takes a Limit or a function of the job returning one, "
                f"got {limit!r}."
            )

    def forget(self, name: str) -> None:
        self._defined.pop(name, None)

    def defined(self, name: str) -> bool:
        return name in self._defined

    def limits_for(self, name: str, job: Any) -> list[Limit]:
        """The limits the named limiter gives ``job``: [] for ``Limit.none()``."""
        factory = self._defined.get(name)
        if factory is None:
            close = difflib.get_close_matches(name, list(self._defined), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self._defined)) or "none yet"
            raise QueueConfigurationError(
                f"RateLimited({name!r}): no rate limit named {name!r} is defined (defined: {known}).{hint} Define it "
                f"once at boot: rate_limits.define({name!r}, lambda job: Limit.per_minute(10))."
            )
        made = factory(job)
        found = [made] if isinstance(made, Limit) else list(made or [])
        for limit in found:
            if not isinstance(limit, Limit):
                raise QueueConfigurationError(
                    f"The rate limit {name!r} returned {limit!r}: return a Limit (Limit.per_minute(10)), a list of "
                    "them, or Limit.none()."
                )
        return [limit for limit in found if not limit.unlimited]


#: the app's named rate limits (Laravel's ``RateLimiter::for``)
rate_limits = RateLimits()
