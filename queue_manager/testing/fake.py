"""Laravel's ``Queue::fake()``, which also knows the connection each job went to.

The fake lives outside the core: the manager only tells it about each
connection it resolves (``manager.resolving``). On every covered connection the
fake replaces the broker's ``kick`` (and ``kick_many``) with a recorder: every
way of sending a job (``@task``, ``dispatch``, ``connection.dispatch``,
``bulk``, the guide's ``@broker.task``) ends there, so all are recorded and
none reaches a server. When it fakes every task of a connection it also
replaces the broker's ``startup``/``shutdown`` (no server is needed),
``size``/``clear`` (they count the recorded jobs) and result backend (a faked
job has no result). While faking, the container's ``queue`` key (the ``Queue``
facade) is the fake, as fastapi-startkit's own ``Event.fake()`` swaps
``events``. ``fake(tasks=[...])`` or ``fake(connections=[...])`` records only
those and lets the rest through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from taskiq import AsyncBroker, AsyncResultBackend, AsyncTaskiqDecoratedTask, BrokerMessage, TaskiqResult

from drivers.base import labels as wire

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.manager import QueueManager

TaskRef = AsyncTaskiqDecoratedTask[Any, Any] | str | type
# What the fake replaces on a broker that it fakes completely (kick/kick_many are replaced always).
REPLACED_WHEN_ALL = ("startup", "shutdown", "size", "clear")


class FakedJobError(RuntimeError):
    """A faked job never runs, so it has no result to wait for."""


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def task_name(task: TaskRef) -> str:
    """A task's name: a task, its name, or a job class (``SendWelcomeEmail``)."""
    if isinstance(task, str):
        return task
    if isinstance(task, type):
        return str(task.task.task_name)  # type: ignore[attr-defined]
    return task.task_name


@dataclass(frozen=True)
class PushedJob:
    """One recorded dispatch."""

    task_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    connection: str
    queue: str
    delay: float | None
    task_id: str
    labels: dict[str, Any] = field(default_factory=dict)

    @property
    def job(self) -> Any:
        """The job class instance this dispatch carries (None for a ``@task`` function's)."""
        from queue_manager.jobs.job import job_from

        return job_from(self.task_name, self.kwargs)

    def __getattr__(self, name: str) -> Any:
        """A job class's attributes read through (``where=lambda job: job.user_id == 42``), as Laravel's fake
        hands the callback the job."""
        if name.startswith("_"):
            raise AttributeError(name)
        job = self.job
        if job is None or name not in vars(job):
            raise AttributeError(f"{self.task_name} was pushed without an attribute {name!r}")
        return getattr(job, name)

    def __str__(self) -> str:
        params = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        delay = f", delay {self.delay:.0f}s" if self.delay is not None else ""
        return f"{self.task_name}({', '.join(params)}) on connection '{self.connection}', queue '{self.queue}'{delay}"


class FakeResultBackend(AsyncResultBackend[Any]):
    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        raise FakedJobError("The queue is faked: no job runs.")

    async def is_result_ready(self, task_id: str) -> bool:
        raise FakedJobError(f"Job {task_id} was faked (manager.fake()): it never runs, so it has no result.")

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        raise FakedJobError(f"Job {task_id} was faked (manager.fake()): it never runs, so it has no result.")


class QueueFake:
    """Records dispatches on the manager's connections until ``restore()`` (or the end of a ``with`` block)."""

    #: Fakes not restored yet: the pytest plugin restores any a test forgot.
    active: ClassVar[list[QueueFake]] = []

    def __init__(
        self,
        manager: QueueManager,
        tasks: Iterable[TaskRef] | None = None,
        connections: Iterable[str] | None = None,
    ) -> None:
        self.manager = manager
        self.tasks = {task_name(t) for t in tasks} if tasks is not None else None
        self.connections = set(connections) if connections is not None else None
        for name in self.connections or ():
            manager.check_connection_name(name)
        self.jobs: list[PushedJob] = []
        self._saved: list[tuple[AsyncBroker, dict[str, Any]]] = []
        self._states: list[tuple[Connection, Any]] = []
        from drivers.memory import MemoryControl

        self.state = MemoryControl()  # where faked connections keep unique jobs' locks
        for other in [fake for fake in QueueFake.active if fake.manager is manager]:
            other.restore()
        for connection in manager.resolved.values():
            self.install(connection)
        self._stop_resolving = manager.resolving(self.install)
        self.chains: list[Any] = []  # Bus.chain(...) dispatched: PendingChain
        self.batches: list[FakedBatch] = []  # Bus.batch(...) dispatched
        self._listen_to_the_bus()
        self._container = _container_binding(manager)
        if self._container is not None:
            self._container.bind("queue", self)
        QueueFake.active.append(self)

    # -- which jobs are faked ------------------------------------------------------------------
    def covers(self, connection: str, name: str | None = None) -> bool:
        if self.connections is not None and connection not in self.connections:
            return False
        return name is None or self.tasks is None or name in self.tasks

    def install(self, connection: Connection) -> None:
        """Record instead of send on this connection's broker."""
        broker = connection.broker
        if not self.covers(connection.name) or any(saved is broker for saved, _ in self._saved):
            return
        names = ["kick", "kick_many", "result_backend"] + (list(REPLACED_WHEN_ALL) if self.tasks is None else [])
        self._saved.append((broker, {name: broker.__dict__[name] for name in names if name in broker.__dict__}))
        real_kick, real_kick_many = broker.kick, getattr(broker, "kick_many", None)

        async def recording_kick(message: BrokerMessage) -> None:
            if self.covers(connection.name, message.task_name):
                self.record(connection, broker, message)
            else:
                await real_kick(message)

        async def recording_kick_many(messages: Sequence[BrokerMessage]) -> None:
            passed = [m for m in messages if not self.covers(connection.name, m.task_name)]
            for message in messages:
                if self.covers(connection.name, message.task_name):
                    self.record(connection, broker, message)
            if passed and real_kick_many is not None:
                await real_kick_many(passed)

        broker.kick = recording_kick  # type: ignore[method-assign]
        if real_kick_many is not None:
            broker.kick_many = recording_kick_many  # type: ignore[attr-defined]
        if self.tasks is None:
            self._replace_server_calls(connection, broker)

    def _replace_server_calls(self, connection: Connection, broker: AsyncBroker) -> None:
        """Every job of this connection is recorded: it needs no server, counts recorded jobs, has no results."""

        async def nothing() -> None:
            return None

        async def size(queue: str) -> int:
            return self.count_queue(connection.name, queue)

        async def clear(queue: str) -> int:
            return self.count_queue(connection.name, queue, clear=True)

        broker.startup = broker.shutdown = nothing  # type: ignore[method-assign]
        broker.size, broker.clear = size, clear  # type: ignore[attr-defined]
        broker.result_backend = FakeResultBackend()
        # unique jobs' locks in the test's process, not on the server
        self._states.append((connection, connection.__dict__.get("job_state")))
        connection.job_state = lambda: self.state

    def record(self, connection: Connection, broker: AsyncBroker, message: BrokerMessage) -> None:
        parsed = broker.formatter.loads(message.message)
        parsed.parse_labels()
        labels = dict(parsed.labels)
        eta = labels.get(wire.ETA)
        self.jobs.append(
            PushedJob(
                task_name=message.task_name,
                args=tuple(parsed.args),
                kwargs=dict(parsed.kwargs),
                connection=connection.name,
                queue=str(labels.get(wire.QUEUE) or connection.queue),
                delay=max(0.0, float(eta) - time.time()) if eta not in (None, "") else None,
                task_id=message.task_id,
                labels=labels,
            )
        )

    def count_queue(self, connection: str, queue: str, clear: bool = False) -> int:
        """``Connection.size``/``clear`` while faked: the jobs recorded for that connection and queue."""
        kept = [job for job in self.jobs if job.connection != connection or job.queue != queue]
        count = len(self.jobs) - len(kept)
        if clear:
            self.jobs = kept
        return count

    def restore(self) -> None:
        """Put the real brokers back and the manager behind the ``Queue`` facade."""
        for broker, attributes in self._saved:
            for name in ["kick", "kick_many", "result_backend", *REPLACED_WHEN_ALL]:
                if name in attributes:
                    setattr(broker, name, attributes[name])
                else:
                    broker.__dict__.pop(name, None)
        self._saved.clear()
        for connection, state in self._states:
            if state is None:
                connection.__dict__.pop("job_state", None)
            else:
                connection.job_state = state
        self._states.clear()
        self._stop_resolving()
        self._stop_listening_to_the_bus()
        if self._container is not None:
            self._container.bind("queue", self.manager)
            self._container = None
        if self in QueueFake.active:
            QueueFake.active.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.restore()

    def __getattr__(self, name: str) -> Any:
        """Behind the ``Queue`` facade the fake stands for the manager: ``Queue.connection(...)`` still works."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.manager, name)

    # -- what was pushed -----------------------------------------------------------------------
    def pushed(
        self,
        task: TaskRef | None = None,
        queue: str | None = None,
        connection: str | None = None,
        where: Callable[[PushedJob], bool] | None = None,
    ) -> list[PushedJob]:
        """The recorded dispatches of ``task`` (all if None), optionally filtered."""
        name = task_name(task) if task is not None else None
        return [
            job
            for job in self.jobs
            if (name is None or job.task_name == name)
            and (queue is None or job.queue == queue)
            and (connection is None or job.connection == connection)
            and (where is None or where(job))
        ]

    def _listing(self) -> str:
        if not self.jobs:
            return "Nothing was pushed."
        return "Pushed jobs:\n" + "\n".join(f"  - {job}" for job in self.jobs)

    # -- assertions (Laravel's names, Python spelling) -----------------------------------------
    def assert_pushed(
        self,
        task: TaskRef,
        times: int | None = None,
        queue: str | None = None,
        connection: str | None = None,
        where: Callable[[PushedJob], bool] | None = None,
    ) -> None:
        found = len(self.pushed(task, queue, connection, where))
        if (times is None and found) or found == times:
            return
        conditions = "".join(
            part
            for part in (
                f" on connection '{connection}'" if connection else "",
                f" on queue '{queue}'" if queue else "",
                " matching the `where` callback" if where else "",
            )
        )
        wanted = "at least once" if times is None else _times(times)
        raise AssertionError(
            f"Expected {task_name(task)} to be pushed {wanted}{conditions}, but it was pushed "
            f"{_times(found)}{' that way' if conditions else ''}.\n{self._listing()}"
        )

    def assert_pushed_on(self, queue: str, task: TaskRef, where: Callable[[PushedJob], bool] | None = None) -> None:
        self.assert_pushed(task, queue=queue, where=where)

    def assert_not_pushed(self, task: TaskRef, where: Callable[[PushedJob], bool] | None = None) -> None:
        found = self.pushed(task, where=where)
        if found:
            raise AssertionError(
                f"Expected {task_name(task)} not to be pushed, but it was pushed {_times(len(found))}.\n"
                f"{self._listing()}"
            )

    def assert_nothing_pushed(self) -> None:
        if self.jobs:
            raise AssertionError(f"Expected no job to be pushed, but {len(self.jobs)} were.\n{self._listing()}")

    def assert_count(self, count: int) -> None:
        if len(self.jobs) != count:
            raise AssertionError(f"Expected {count} pushed jobs, but {len(self.jobs)} were.\n{self._listing()}")

    # -- chains and batches (Laravel's Bus::assertChained / assertBatched) ----------------------------------
    def _listen_to_the_bus(self) -> None:
        from queue_manager.bus.batch import BATCH_LISTENERS
        from queue_manager.bus.chain import CHAIN_LISTENERS

        def on_batch(pending: Any, batch: Any) -> None:
            self.batches.append(FakedBatch(batch.id, pending.batch_name, list(pending.jobs), dict(batch.options)))

        self._on_chain, self._on_batch = self.chains.append, on_batch
        CHAIN_LISTENERS.append(self._on_chain)
        BATCH_LISTENERS.append(self._on_batch)

    def _stop_listening_to_the_bus(self) -> None:
        from queue_manager.bus.batch import BATCH_LISTENERS
        from queue_manager.bus.chain import CHAIN_LISTENERS

        if self._on_chain in CHAIN_LISTENERS:
            CHAIN_LISTENERS.remove(self._on_chain)
        if self._on_batch in BATCH_LISTENERS:
            BATCH_LISTENERS.remove(self._on_batch)

    def assert_chained(self, jobs: Sequence[TaskRef]) -> None:
        """A chain of exactly these jobs (tasks, job classes or task names), in this order, was dispatched."""
        wanted = [task_name(job) for job in jobs]
        dispatched = [[pending.task.task_name for pending in chain.jobs] for chain in self.chains]
        if wanted not in dispatched:
            shown = "\n".join(f"  - {' -> '.join(chain)}" for chain in dispatched) or "  (none)"
            raise AssertionError(
                f"Expected the chain {' -> '.join(wanted)} to be dispatched. Chains dispatched:\n{shown}"
            )

    def assert_batched(self, where: Callable[[FakedBatch], bool] | None = None) -> None:
        """A batch was dispatched (one for which ``where(batch)`` is true: ``batch.name``, ``batch.jobs``)."""
        if not any(where is None or where(batch) for batch in self.batches):
            shown = "\n".join(f"  - {batch}" for batch in self.batches) or "  (none)"
            raise AssertionError(f"Expected a batch{' matching the callback' if where else ''}. Batches:\n{shown}")

    def assert_nothing_batched(self) -> None:
        if self.batches:
            raise AssertionError(f"Expected no batch, but {len(self.batches)} were dispatched: {self.batches}")

    def assert_batch_count(self, count: int) -> None:
        if len(self.batches) != count:
            raise AssertionError(f"Expected {count} batches, but {len(self.batches)} were dispatched.")

    def __repr__(self) -> str:
        return f"<QueueFake jobs={len(self.jobs)} tasks={self.tasks} connections={self.connections}>"


@dataclass
class FakedBatch:
    """A batch dispatched while faking: its id, name, jobs (pending dispatches, a chain's as a PendingChain) and
    options (connection, queue, allow_failures, callbacks)."""

    id: str
    name: str
    jobs: list[Any]
    options: dict[str, Any]

    @property
    def allows_failures(self) -> bool:
        return bool(self.options.get("allow_failures"))

    def __str__(self) -> str:
        return f"batch {self.name!r} of {len(self.jobs)} job(s)"


def _container_binding(manager: QueueManager) -> Any:
    """The app container whose ``queue`` key (the ``Queue`` facade) is this manager, if there is one."""
    from fastapi_startkit.application import app

    try:
        container = app()
        bound = container.make("queue") if container.has("queue") else None
    except Exception:  # no app booted (a manager built by hand), or no binding
        return None
    return container if bound is manager else None
