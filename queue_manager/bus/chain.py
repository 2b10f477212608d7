"""``Bus.chain([...])`` before it is dispatched, and how a link is sent: a chain sends its first link only; each
link carries the rest (``wire.CHAIN``), and the worker that ran it sends the next (``running``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self

from taskiq import AsyncTaskiqTask

from drivers.base import labels as wire_labels
from drivers.base.errors import QueueConfigurationError
from queue_manager.bus import wire
from queue_manager.bus.context import BusManager, bus_manager
from queue_manager.dispatch import PendingDispatch, dispatch
from queue_manager.errors import JobPayloadError

#: Told of every chain dispatched (the fake listens: ``assert_chained``).
CHAIN_LISTENERS: list[Callable[[PendingChain], None]] = []


def _pending(member: Any, where: str) -> PendingDispatch:
    if isinstance(member, PendingDispatch):
        member.close()  # the bus sends it: handed over, it counts as used
        return member
    try:
        made = dispatch(member)
    except JobPayloadError:
        raise  # a job, whose attribute cannot travel: that error says which and what to do
    except TypeError:
        raise QueueConfigurationError(
            f"{where}: {member!r} is not a job. Pass job instances (SendEmail(1)) or un-awaited dispatches "
            "(send_email.dispatch(1)); a list inside a batch is a chain."
        ) from None
    made.close()
    return made


def _members(jobs: Any, where: str) -> list[Any]:
    """A chain's or batch's jobs as a list: one job alone (``Bus.chain(job)``) is the usual slip, named here."""
    if isinstance(jobs, list | tuple):
        return list(jobs)
    if not isinstance(jobs, Iterable) or isinstance(jobs, str | bytes | dict):  # a generator of jobs is fine
        raise QueueConfigurationError(
            f"{where}([...]) takes a list of jobs, got {jobs!r}: write {where}([job, ...]) even for one job."
        )
    return list(jobs)


def connection_name(name: Any, where: str) -> str:
    """An ``.on_connection()`` argument: a connection's name (an empty one would mean the default, silently)."""
    if not isinstance(name, str) or not name:
        raise QueueConfigurationError(
            f"{where}.on_connection() takes a connection's name, got {name!r} (leave it out for the default "
            "connection)."
        )
    return name


class PendingChain:
    """Laravel's ``Bus::chain([...])``: ``.catch(cb)``, ``.finally_(cb)``, ``.on_connection()``, ``.on_queue()``,
    then ``await chain.dispatch()`` (the chain's id)."""

    def __init__(self, jobs: Sequence[Any]) -> None:
        members = _members(jobs, "Bus.chain")
        if not members:
            raise QueueConfigurationError("Bus.chain([...]) needs at least one job.")
        self.jobs = [_pending(member, "Bus.chain") for member in members]
        self.connection: str | None = None
        self.queue: str | None = None
        self.catch_callbacks: list[dict[str, str]] = []
        self.finally_callbacks: list[dict[str, str]] = []
        self.id = str(uuid.uuid4())

    def on_connection(self, name: str) -> Self:
        self.connection = connection_name(name, "Bus.chain(...)")
        return self

    def on_queue(self, queue: str) -> Self:
        from drivers.base.names import check_queue_name

        self.queue = check_queue_name(queue)
        return self

    def catch(self, callback: Any) -> Self:
        """Run ``callback(error)`` on a worker, once, if a job of the chain fails for good (the rest never runs)."""
        self.catch_callbacks.append(wire.callback_spec(callback, "Bus.chain(...).catch"))
        return self

    def finally_(self, callback: Any) -> Self:
        """Run ``callback()`` on a worker, once, when the chain has ended: every job ran, or one failed for good."""
        self.finally_callbacks.append(wire.callback_spec(callback, "Bus.chain(...).finally_"))
        return self

    def state(self, manager: BusManager, batch_id: str | None = None) -> dict[str, Any]:
        connection = self.connection or manager.get_default_driver()
        return {
            "id": self.id,
            "i": 0,
            "links": [wire.link_of(job, connection, self.queue) for job in self.jobs],
            "catch": self.catch_callbacks,
            "finally": self.finally_callbacks,
            "batch": batch_id,
        }

    async def dispatch(self) -> str:
        manager = bus_manager()
        await send_link(manager, self.state(manager), 0)
        for listener in list(CHAIN_LISTENERS):
            listener(self)
        return self.id

    def __await__(self) -> Any:
        return self.dispatch().__await__()


async def send_link(manager: BusManager, state: dict[str, Any], index: int) -> AsyncTaskiqTask[Any]:
    """Send link ``index`` of a chain (its deterministic task id, a fresh nonce, the chain with it)."""
    link = state["links"][index]
    labels = dict(link["l"])
    if link.get("d"):
        labels[wire_labels.ETA] = time.time() + float(link["d"])
    labels[wire.CHAIN] = json.dumps({**state, "i": index}, separators=(",", ":"))
    labels[wire.NONCE] = wire.new_nonce()
    if state.get("batch"):
        labels[wire.BATCH] = state["batch"]
    connection = manager.connection(link["c"])
    connection.check_queue(labels.get(wire_labels.QUEUE))
    return await connection.send_named(link["t"], link["a"], link["k"], labels, wire.link_id(state["id"], index))
