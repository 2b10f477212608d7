"""Small shared values every worker of a connection can read: the restart signal, paused queues, counters.

Laravel keeps ``illuminate:queue:restart`` in its cache; here each connection keeps such values on its own
server, so workers on every machine see them without another service. Each broker of ours says where, as its
``control_state`` (a key on Redis, a key-value bucket on NATS, a one-message queue on RabbitMQ; in the process
for the memory driver); a custom driver's broker may offer one too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

RESTART_KEY = "restart"  # the value queue:restart sets (a timestamp); workers stop when it changes


def paused_key(queue: str) -> str:
    """The control value that marks ``queue`` paused (``Connection.pause`` sets it, workers read it)."""
    return f"paused:{queue}"


class ControlState(ABC):
    """Named values shared by the processes of one connection; None when unset."""

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


def control_of(broker: Any) -> ControlState | None:
    """The control state a broker offers (``broker.control_state``), or None (a custom broker without one)."""
    state = getattr(broker, "control_state", None)
    return state if isinstance(state, ControlState) else None
