"""Laravel's ``Queue::fake()``, which also knows the connection each job went to.

While a fake is active, every broker of the manager has its ``kick`` replaced
by a recorder: every way of sending a job (``@task``, ``dispatch``,
``connection.dispatch``, the guide's ``@broker.task``) ends in ``kick``, so
all of them are recorded and none reaches a server. ``fake(tasks=[...])`` or
``fake(connections=[...])`` records only those and lets the rest through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from taskiq import AsyncBroker, AsyncResultBackend, AsyncTaskiqDecoratedTask, BrokerMessage, TaskiqResult

from drivers.delay import ETA_LABEL
from queue_manager.dispatch import QUEUE_LABEL

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.manager import QueueManager

TaskRef = AsyncTaskiqDecoratedTask[Any, Any] | str


class FakedJobError(RuntimeError):
    """A faked job never runs, so it has no result to wait for."""


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def task_name(task: TaskRef) -> str:
    return task if isinstance(task, str) else task.task_name


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
        self._saved: dict[int, tuple[Connection, Any, Any]] = {}

    # -- which jobs are faked ------------------------------------------------------------------
    def covers(self, connection: str, name: str | None = None) -> bool:
        if self.connections is not None and connection not in self.connections:
            return False
        return name is None or self.tasks is None or name in self.tasks

    def install(self, connection: Connection) -> None:
        """Record instead of send on this connection's broker (called for every resolved connection)."""
        broker = connection.broker
        if id(broker) in self._saved or not self.covers(connection.name):
            return
        real_kick = broker.kick
        self._saved[id(broker)] = (connection, real_kick, broker.result_backend)
        connection.faked_by = self

        async def recording_kick(message: BrokerMessage) -> None:
            if not self.covers(connection.name, message.task_name):
                await real_kick(message)
                return
            self.record(connection, broker, message)

        broker.kick = recording_kick  # type: ignore[method-assign]
        if self.tasks is None:
            broker.result_backend = FakeResultBackend()

    def record(self, connection: Connection, broker: AsyncBroker, message: BrokerMessage) -> None:
        parsed = broker.formatter.loads(message.message)
        parsed.parse_labels()
        labels = dict(parsed.labels)
        eta = labels.get(ETA_LABEL)
        self.jobs.append(
            PushedJob(
                task_name=message.task_name,
                args=tuple(parsed.args),
                kwargs=dict(parsed.kwargs),
                connection=connection.name,
                queue=str(labels.get(QUEUE_LABEL) or connection.queue),
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
        """Put the real brokers back; the manager stops faking."""
        for connection, kick, backend in self._saved.values():
            connection.broker.kick = kick  # type: ignore[method-assign]
            connection.broker.result_backend = backend
            connection.faked_by = None
        self._saved.clear()
        self.manager.stop_faking(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.restore()

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

    def __repr__(self) -> str:
        return f"<QueueFake jobs={len(self.jobs)} tasks={self.tasks} connections={self.connections}>"
