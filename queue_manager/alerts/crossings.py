"""Once per crossing: ``LongWaitDetected`` fires when a queue's wait goes over its threshold, not at every look,
and again only after the wait went back under (Horizon fires at every check and leaves the rate limit to the
notification).

Which queues are over is kept with the queue itself (``queue:monitor`` runs from cron, a new process each
minute): in the connection's control state where it has one, else in this process. ``decide`` is the rule,
``Crossings`` keeps the state.
"""

from __future__ import annotations

import time
from typing import Literal, Protocol

Change = Literal["crossed", "still-over", "back-under", "under"]


def decide(was_over: bool, wait: float | None, limit: float) -> Change:
    """What a new measurement means for a queue that was (or was not) over ``limit``. An unknown wait changes
    nothing: a queue that was over stays over until it is measured under."""
    if wait is None:
        return "still-over" if was_over else "under"
    if wait >= limit:
        return "still-over" if was_over else "crossed"
    return "back-under" if was_over else "under"


class State(Protocol):
    """A connection's control state (``drivers.base.control.ControlState``), as far as crossings need it."""

    async def get(self, name: str) -> str | None: ...

    async def set(self, name: str, value: str) -> None: ...

    async def delete(self, name: str) -> None: ...


class InProcess:
    """The state of a connection that keeps none on its server: it lasts as long as the process."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get(self, name: str) -> str | None:
        return self.values.get(name)

    async def set(self, name: str, value: str) -> None:
        self.values[name] = value

    async def delete(self, name: str) -> None:
        self.values.pop(name, None)


def over_key(queue: str) -> str:
    return f"long-wait:{queue}"


def stalled_key(queue: str) -> str:
    return f"stalled:{queue}"


class Crossings:
    def __init__(self, state: State) -> None:
        self.state = state

    async def observe(self, queue: str, wait: float | None, limit: float) -> Change:
        """Record the measurement of ``queue``; the caller fires the event on ``crossed``."""
        was_over = await self.state.get(over_key(queue)) is not None
        change = decide(was_over, wait, limit)
        if change == "crossed":
            await self.state.set(over_key(queue), str(time.time()))
        elif change == "back-under":
            await self.state.delete(over_key(queue))
        return change

    async def stalled_for(self, queue: str, stalled: bool, now: float | None = None) -> float | None:
        """Seconds since ``queue`` was first seen stalled (jobs waiting, none finished); None when it is not."""
        now = time.time() if now is None else now
        since = await self.state.get(stalled_key(queue))
        if not stalled:
            if since is not None:
                await self.state.delete(stalled_key(queue))
            return None
        if since is None:
            await self.state.set(stalled_key(queue), str(now))
            return 0.0
        try:
            return max(0.0, now - float(since))
        except ValueError:
            await self.state.set(stalled_key(queue), str(now))
            return 0.0
