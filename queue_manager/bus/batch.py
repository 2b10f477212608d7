"""``Batch`` (a batch as its store last saw it: Laravel's ``Illuminate\\Bus\\Batch``, with ``add`` and ``cancel``) and
``Bus.batch([...])`` before it is dispatched.

A batch is one store write (its row, with its total and callbacks) and then its jobs through the one send path
(TaskIQ's ``kiq`` for each job, the driver's bulk call for all: ``sending.kiq_many``), grouped by connection,
task and labels.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from drivers.base import labels as wire_labels
from drivers.base.errors import QueueConfigurationError
from queue_manager.batches import BatchRow
from queue_manager.batches.store import utc_now
from queue_manager.bus import wire
from queue_manager.bus.callback_sending import send_callbacks
from queue_manager.bus.chain import PendingChain, _members, _pending, connection_name, send_link
from queue_manager.bus.context import BusManager, bus_manager
from queue_manager.dispatch import PendingDispatch
from queue_manager.sending import kiq_many

#: Told of every batch dispatched (the fake listens: ``assert_batched``).
BATCH_LISTENERS: list[Callable[[PendingBatch, Batch], None]] = []


@dataclass
class Batch:
    id: str
    name: str
    total_jobs: int
    pending_jobs: int
    processed_jobs: int
    failed_jobs: int
    failed_job_ids: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict, repr=False)
    created_at: datetime | None = None
    cancelled_at: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def of(cls, row: BatchRow) -> Batch:
        return cls(
            id=row.id,
            name=row.name,
            total_jobs=row.total_jobs,
            pending_jobs=row.pending,
            processed_jobs=row.done + row.skipped,
            failed_jobs=row.failed,
            failed_job_ids=list(row.failed_job_ids),
            options=dict(row.options),
            created_at=row.created_at,
            cancelled_at=row.cancelled_at,
            finished_at=row.finished_at,
        )

    def progress(self) -> int:
        """Percent of its jobs that have run (succeeded or failed), 0 to 100."""
        if self.total_jobs <= 0:
            return 100 if self.finished else 0
        return int(100 * (self.total_jobs - self.pending_jobs) / self.total_jobs)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def allows_failures(self) -> bool:
        return bool(self.options.get("allow_failures"))

    @property
    def has_failures(self) -> bool:
        return self.failed_jobs > 0

    async def add(self, jobs: Iterable[Any]) -> Batch:
        """More jobs (job instances, un-awaited dispatches, lists for chains), from outside or from one of its own
        jobs; on the batch's connection and queue unless they name their own."""
        await add_to_batch(self, list(jobs))
        return self

    async def cancel(self) -> None:
        """Its jobs still queued skip themselves; a running job can look: ``(await self.batch()).cancelled``."""
        await bus_manager().batches.store.cancel(self.id)

    async def fresh(self) -> Batch:
        row = await bus_manager().batches.store.find(self.id)
        return Batch.of(row) if row is not None else self

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "total_jobs": self.total_jobs,
            "pending_jobs": self.pending_jobs,
            "processed_jobs": self.processed_jobs,
            "failed_jobs": self.failed_jobs,
            "failed_job_ids": self.failed_job_ids,
            "progress": self.progress(),
            "cancelled": self.cancelled,
            "finished": self.finished,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "cancelled_at": self.cancelled_at.isoformat() if self.cancelled_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


class PendingBatch:
    """Laravel's ``Bus::batch([...])``: ``.then()``, ``.catch()``, ``.finally_()``, ``.allow_failures()``,
    ``.name()``, ``.on_connection()``, ``.on_queue()``, then ``await batch.dispatch()`` (the ``Batch``)."""

    def __init__(self, jobs: Sequence[Any]) -> None:
        members = _members(jobs, "Bus.batch")
        self.jobs: list[PendingDispatch | PendingChain] = [self._member(member) for member in members]
        self.batch_name = ""
        self.connection: str | None = None
        self.queue: str | None = None
        self.allows_failures = False
        self.callbacks: dict[str, list[dict[str, str]]] = {"then": [], "catch": [], "finally": []}

    @staticmethod
    def _member(member: Any) -> PendingDispatch | PendingChain:
        if isinstance(member, list | tuple):
            return PendingChain(member)
        return _pending(member, "Bus.batch")

    def name(self, name: str) -> Self:
        if not isinstance(name, str):
            raise QueueConfigurationError(f"Bus.batch(...).name() takes a string, got {name!r}.")
        self.batch_name = name
        return self

    def on_connection(self, name: str) -> Self:
        self.connection = connection_name(name, "Bus.batch(...)")
        return self

    def on_queue(self, queue: str) -> Self:
        from drivers.base.names import check_queue_name

        self.queue = check_queue_name(queue)
        return self

    def allow_failures(self, allow: bool = True) -> Self:
        """A failed job does not cancel the batch (its other jobs still run); ``catch`` still runs, once."""
        if not isinstance(allow, bool):
            raise QueueConfigurationError(f"Bus.batch(...).allow_failures() takes True or False, got {allow!r}.")
        self.allows_failures = allow
        return self

    def then(self, callback: Any) -> Self:
        """Run ``callback(batch)`` on a worker, once, when every job succeeded."""
        self.callbacks["then"].append(wire.callback_spec(callback, "Bus.batch(...).then"))
        return self

    def catch(self, callback: Any) -> Self:
        """Run ``callback(batch, error)`` on a worker, once, at the first job that fails for good."""
        self.callbacks["catch"].append(wire.callback_spec(callback, "Bus.batch(...).catch"))
        return self

    def finally_(self, callback: Any) -> Self:
        """Run ``callback(batch)`` on a worker, once, when every job has run (succeeded or failed)."""
        self.callbacks["finally"].append(wire.callback_spec(callback, "Bus.batch(...).finally_"))
        return self

    @property
    def total(self) -> int:
        return sum(len(job.jobs) if isinstance(job, PendingChain) else 1 for job in self.jobs)

    async def dispatch(self) -> Batch:
        manager = bus_manager()
        connection = self.connection or manager.get_default_driver()
        manager.connection(connection)  # an unknown name fails here, before the store is written
        options = {
            "connection": connection,
            "queue": self.queue,
            "callback_queue": self._callback_queue(),
            "allow_failures": self.allows_failures,
            **self.callbacks,
        }
        row = BatchRow(str(uuid.uuid4()), self.batch_name, self.total, options, utc_now())
        if not self.jobs:  # nothing will run to finish it: finished now, its then/finally sent now (as Laravel)
            row.finished_at = row.created_at
        await manager.batches.store.create(row)
        batch = Batch.of(row)
        await _send_members(manager, batch, self.jobs)
        if not self.jobs and (self.callbacks["then"] or self.callbacks["finally"]):
            await send_callbacks(manager, f"batch:{row.id}", "finish", connection, callback_queue(options), {})
        for listener in list(BATCH_LISTENERS):
            listener(self, batch)
        return batch

    def _callback_queue(self) -> str | None:
        """Where the callback jobs go: the queue a callback declares, else the batch's, else its first job's (a
        worker of the batch listens there); None: the connection's default queue."""
        declared = wire.declared_queue(self.callbacks["then"], self.callbacks["catch"], self.callbacks["finally"])
        if declared or self.queue or not self.jobs:
            return declared or self.queue
        first = self.jobs[0]
        if isinstance(first, PendingChain):
            if first.queue:
                return first.queue
            first = first.jobs[0]
        own = first.labels.get(wire_labels.QUEUE) or first.task.labels.get(wire_labels.QUEUE)
        return str(own) if own else None

    def __await__(self) -> Any:
        return self.dispatch().__await__()


def callback_queue(options: dict[str, Any]) -> str | None:
    """A stored batch's callback queue (a batch stored before there was one: its own queue)."""
    return options.get("callback_queue") or options.get("queue")


async def add_to_batch(batch: Batch, jobs: list[Any]) -> None:
    members = [PendingBatch._member(member) for member in jobs]
    if not members:
        return
    manager = bus_manager()
    total = sum(len(job.jobs) if isinstance(job, PendingChain) else 1 for job in members)
    await manager.batches.store.add_jobs(batch.id, total)  # counted first: the batch cannot finish before they run
    batch.total_jobs += total
    batch.pending_jobs += total
    batch.finished_at = None
    await _send_members(manager, batch, members)


async def _send_members(manager: BusManager, batch: Batch, members: Iterable[PendingDispatch | PendingChain]) -> None:
    """Each chain's first link, then the single jobs grouped by connection, task and labels: one bulk send per
    group (TaskIQ's kicker for every job, the driver's bulk call for each 1,000)."""
    connection_name = str(batch.options.get("connection") or manager.get_default_driver())
    queue = batch.options.get("queue")
    groups: dict[tuple[str, str, Any], list[PendingDispatch]] = {}
    for member in members:
        if isinstance(member, PendingChain):
            if member.connection is None:
                member.connection = connection_name
            if member.queue is None and queue:
                member.queue = queue
            await send_link(manager, member.state(manager, batch.id), 0)
            continue
        own = member.connection_name or (member._connection.name if member._connection is not None else None)
        try:
            same: Any = tuple(sorted(member.labels.items()))
            hash(same)
        except TypeError:  # a label value that cannot be hashed: a group of its own
            same = id(member)
        groups.setdefault((own or connection_name, member.task.task_name, same), []).append(member)
    for (name, _, _), pendings in groups.items():
        connection = manager.connection(name)
        template = pendings[0]
        extra: dict[str, Any] = {wire.BATCH: batch.id}
        if queue and wire_labels.QUEUE not in template.labels:
            extra[wire_labels.QUEUE] = queue
        own_queue = template.labels.get(wire_labels.QUEUE) or template.task.labels.get(wire_labels.QUEUE)
        connection.check_queue(extra.get(wire_labels.QUEUE) or own_queue)
        await connection.startup()

        kicker = template.kicker(connection.broker).with_labels(**extra)
        outcomes = await kiq_many(kicker, [pending.call() for pending in pendings])
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if errors:
            raise errors[0]
