"""Small shared values every worker of a connection can read: the restart signal, paused queues, counters.

Laravel keeps ``illuminate:queue:restart`` in its cache; here each connection keeps such values on its own
server, so workers on every machine see them without another service. Each broker of ours says where, as its
``control_state`` (a key on Redis, a key-value bucket on NATS, a stream on RabbitMQ; in the process for the
memory driver); a custom driver's broker may offer one too. Many processes read a value at once and all see it
(reading takes nothing away), and its name never is a queue's (``base.names.CONTROL_MARK``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def restart_key(app: str) -> str:
    """The value ``queue:restart`` sets for one app (a timestamp); its workers stop when it changes. Per app, as
    Laravel's cache prefix makes it, so two apps sharing a server do not restart each other's workers."""
    return f"restart:{app}"


MAX_CLAIM_TTL = 7200  # the longest a claim is kept (NATS keeps claims in a bucket whose entries expire after it)


def paused_key(queue: str) -> str:
    """The control value that marks ``queue`` paused (``Connection.pause`` sets it, workers read it)."""
    return f"paused:{queue}"


@dataclass(frozen=True)
class Entry:
    """Insight: one field of the map ``name``; the map expires ``ttl`` seconds after its last write."""

    name: str
    field: str
    value: str
    ttl: int


@dataclass(frozen=True)
class Pushed:
    """Insight: ``values`` (oldest first) put at the head of the list ``name``, which keeps its newest ``cap`` values
    and expires ``ttl`` seconds after its last push."""

    name: str
    values: tuple[str, ...]
    cap: int
    ttl: int


class InsightUnsupported(NotImplementedError):
    """This connection's server keeps no insight (metrics, recent jobs, workers)."""


class ControlState(ABC):
    """Named values shared by the processes of one connection; None when unset."""

    keeps_insight = False  # offers write/entries/listed/forget (queue_manager.insight)

    @abstractmethod
    async def get(self, name: str) -> str | None: ...

    @abstractmethod
    async def set(self, name: str, value: str) -> None: ...

    @abstractmethod
    async def delete(self, name: str) -> None: ...

    async def add(self, name: str, amount: int, ttl: int) -> None:
        """Add to a counter that expires ``ttl`` seconds after it was made (the dashboard's throughput)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no counters")

    async def counters(self, names: list[str]) -> list[int] | None:
        """The counters' values (0 for one never added to); None if this state keeps no counters."""
        return None

    # -- job state: unique jobs and job middleware (locks with owners, rate limits) -----------------------------
    async def lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take the lock ``name`` for ``owner`` for ``ttl`` seconds, atomically: True if it was free (or expired) or
        already ``owner``'s (then its expiry is renewed). A lock always expires, so a dead holder frees it."""
        raise JobStateUnsupported(type(self).__name__)

    async def unlock(self, name: str, owner: str) -> bool:
        """Free the lock if ``owner`` holds it (an expired lock taken by another is theirs): True if it did."""
        raise JobStateUnsupported(type(self).__name__)

    async def hit(self, name: str, limit: int, window: float) -> float:
        """A sliding-window rate limit, atomically: 0.0 if one more hit fits in ``limit`` per ``window`` seconds
        (and it is counted), else the seconds until the oldest hit leaves the window (nothing is counted)."""
        raise JobStateUnsupported(type(self).__name__)

    async def claim(self, name: str, ttl: int) -> bool:
        """Set ``name`` for ``ttl`` seconds (at most ``MAX_CLAIM_TTL``) if it is unset, atomically: True for the one
        caller that set it. ``queue:schedule`` claims each tick, so several schedulers send it once."""
        raise NotImplementedError(f"{type(self).__name__} cannot claim a value")

    # -- insight (queue_manager.insight): maps and capped lists that expire, written in one round trip -----------
    async def write(self, writes: Sequence[Entry | Pushed]) -> None:
        """Apply ``writes`` together (one round trip where the server allows)."""
        raise InsightUnsupported(type(self).__name__)

    async def entries(self, names: list[str]) -> list[dict[str, str]]:
        """Each map's fields ({} for one never written or expired)."""
        raise InsightUnsupported(type(self).__name__)

    async def listed(self, name: str, count: int) -> list[str]:
        """The list's newest ``count`` values, newest first."""
        raise InsightUnsupported(type(self).__name__)

    async def forget(self, name: str, fields: list[str]) -> None:
        """Remove fields of the map ``name`` (a worker that stopped, or died)."""
        raise InsightUnsupported(type(self).__name__)


class JobStateUnsupported(NotImplementedError):
    """This connection's server cannot keep job state (locks, rate limits): name one that can."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind} keeps no job state (locks, rate limits)")


def control_of(broker: Any) -> ControlState | None:
    """The control state a broker offers (``broker.control_state``), or None (a custom broker without one)."""
    state = getattr(broker, "control_state", None)
    return state if isinstance(state, ControlState) else None
