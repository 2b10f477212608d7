"""Laravel-style dispatch: ``await dispatch(task, 42).on_connection("redis").on_queue("emails").delay(30)``.

A ``PendingDispatch`` sends nothing until it is awaited, so the fluent calls
can come in any order; awaiting it returns TaskIQ's task handle.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Coroutine, Generator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Self

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, AsyncTaskiqTask
from taskiq.kicker import AsyncKicker

from drivers.base import labels as wire
from drivers.base.delay import checked_due, due_from
from drivers.base.names import check_queue_name
from queue_manager.context import Destination, current
from queue_manager.errors import NeverAwaitedWarning
from queue_manager.handles import QueueKicker
from queue_manager.insight.tags import auto_tags, job_tags, merge_tags

Delay = float | int | timedelta | datetime
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller() -> tuple[str, int]:
    """The file and line outside this package that made the dispatch (where a never-awaited warning points)."""
    frame = sys._getframe(2)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno


def due_timestamp(when: Delay) -> float:
    """Seconds, a timedelta or a datetime, as a Unix timestamp (naive datetimes are local time)."""
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, timedelta):
        return time.time() + when.total_seconds()
    if isinstance(when, int | float) and not isinstance(when, bool):
        return time.time() + float(when)
    raise TypeError(f"delay() takes seconds, a timedelta or a datetime, not {type(when).__name__}.")


class PendingDispatch(Coroutine[Any, Any, "AsyncTaskiqTask[Any]"]):
    """A job not sent yet: chain the fluent calls, then await it (or hand it to gather/create_task).

    It is a ``Coroutine`` rather than a mere awaitable because asyncio wraps a plain awaitable in
    an extra generator for every task it makes of it: 8 µs per job under ``asyncio.gather``.
    """

    def __init__(
        self,
        task: AsyncTaskiqDecoratedTask[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        connection: Destination | None = None,
    ) -> None:
        if not isinstance(task, AsyncTaskiqDecoratedTask):
            raise TypeError(f"dispatch() needs a task (a function decorated with @task or @broker.task), got {task!r}.")
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.connection_name: str | None = None
        self._connection = connection
        self.labels: dict[str, Any] = {}
        self._running: Coroutine[Any, Any, AsyncTaskiqTask[Any]] | None = None
        self._made_at: tuple[str, int] | None = _caller()

    def on_connection(self, name: str) -> Self:
        self.connection_name = name
        self._connection = None
        return self

    def use_connection(self, connection: Destination) -> Self:
        """Send through this connection object (``connection.dispatch(...)``)."""
        self.connection_name = None
        self._connection = connection
        return self

    def on_queue(self, queue: str) -> Self:
        with self._refused():
            self.labels[wire.QUEUE] = check_queue_name(queue)
        return self

    def delay(self, when: Delay) -> Self:
        """A delay no driver can honour (infinite, NaN, beyond ``drivers.base.delay.MAX_DELAY``: 366 days) raises
        InvalidDelayError here, before anything is sent; every broker's ``kick`` checks the same rule."""
        with self._refused():
            self.labels[wire.ETA] = checked_due(due_timestamp(when))
        return self

    def with_labels(self, **labels: Any) -> Self:
        with self._refused():
            due_from(labels)  # TaskIQ's delay label, or an eta, is checked like delay()
        self.labels.update(labels)
        return self

    def with_tags(self, *tags: str) -> Self:
        """Horizon's tags, besides the task's and the models' (``.with_tags("customer:42")``): search jobs by them."""
        self.labels[wire.TAGS] = merge_tags(self.labels.get(wire.TAGS), tags)
        return self

    @contextmanager
    def _refused(self) -> Iterator[None]:
        """A fluent call that raises already told the caller: no never-awaited warning on top."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def resolve_connection(self) -> Destination:
        if self._connection is None:
            self._connection = current().connection(self.connection_name)
        return self._connection

    def unique_lock(self) -> tuple[str, float] | None:
        """The lock a unique job (``unique_for``) takes when sent: (its name, how long it lasts at most). Its
        name is the task's and the job's unique id: the arguments, for a ``@task`` function."""
        ttl = self.labels.get(wire.UNIQUE_FOR) or self.task.labels.get(wire.UNIQUE_FOR)
        if not ttl:
            return None
        return f"unique:{self.task.task_name}:{self.unique_id()}", float(ttl)

    def unique_id(self) -> str:
        """What tells two jobs of one task apart (a job class says it with ``unique_id()``)."""
        arguments = json.dumps([self.args, self.kwargs], sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(arguments.encode()).hexdigest()[:32]

    def unique_labels(self, lock: str) -> dict[str, Any]:
        """What the job carries so its worker frees the lock (when it starts, if until processing)."""
        return {wire.UNIQUE: lock}

    @property
    def queue(self) -> str:
        """The queue this job goes to: its own, else the task's, else the connection's."""
        label = self.labels.get(wire.QUEUE) or self.task.labels.get(wire.QUEUE)
        return str(label) if label else self.resolve_connection().queue

    # -- awaiting: a Coroutine, so asyncio.gather / create_task run it as a task directly ------------
    def _sending(self) -> Coroutine[Any, Any, AsyncTaskiqTask[Any]]:
        if self._running is None:
            self._made_at = None  # awaited: whatever happens now is reported to the caller
            self._running = self.resolve_connection().send(self)
        return self._running

    def send(self, value: Any) -> Any:
        return self._sending().send(value)

    def throw(self, *error: Any) -> Any:
        return self._sending().throw(*error)

    def close(self) -> None:
        """Discard it (as ``close()`` on a coroutine): unsent, and no warning."""
        if self._running is not None:
            self._running.close()
        self._made_at = None

    def __del__(self) -> None:
        made_at = getattr(self, "_made_at", None)  # None: awaited, discarded, or __init__ refused the task
        if made_at is None:
            return
        filename, line = made_at
        warnings.warn_explicit(
            f"dispatch of {self.task.task_name} was never awaited, so nothing was sent: write "
            f"`await dispatch(...)` (or `await {self.task.task_name.rpartition(':')[2]}.dispatch(...)`); Python "
            "needs the await where Laravel sends a pending dispatch when it is destroyed",
            NeverAwaitedWarning,
            filename,
            line,
        )

    def kicker(self, broker: AsyncBroker) -> AsyncKicker[Any, Any]:
        """TaskIQ's kicker for this job: every send (one job or a bulk) goes through its ``kiq``."""
        labels = {**self.task.labels, **self.labels, **self.own_labels()}
        return QueueKicker(
            task_name=self.task.task_name,
            broker=broker,
            labels={key: value for key, value in labels.items() if value is not None},
            return_type=self.task.return_type,
        )

    def own_labels(self) -> dict[str, Any]:
        """The labels this job has that another job of its group may not (its tags: the task's, its own, and
        a job class's ``tags()`` or the models among its arguments); None where it has none."""
        job = getattr(self, "job", None)
        found = job_tags(job) if job is not None else auto_tags(self.args, self.kwargs)
        return {wire.TAGS: merge_tags(self.task.labels.get(wire.TAGS), self.labels.get(wire.TAGS), found)}

    def call(self) -> tuple[tuple[Any, ...], dict[str, Any], dict[str, Any]]:
        """What ``sending.kiq_many`` sends of it with its group's kicker."""
        return self.args, self.kwargs, self.own_labels()

    def __await__(self) -> Generator[Any, None, AsyncTaskiqTask[Any]]:
        return self._sending().__await__()

    def __repr__(self) -> str:
        where = self.connection_name or (self._connection.name if self._connection else "default")
        return f"<PendingDispatch {self.task.task_name} connection={where!r} labels={self.labels!r}>"


def dispatch(task: Any, *args: Any, **kwargs: Any) -> PendingDispatch:
    """Dispatch ``task`` (with these arguments) or a job class's instance on its connection; chain
    ``on_connection/on_queue/delay`` before awaiting."""
    pending = getattr(task, "pending", None)
    if callable(pending) and not isinstance(task, AsyncTaskiqDecoratedTask) and not args and not kwargs:
        made: PendingDispatch = pending()  # a job class's instance (queue_manager.Job)
        return made
    return PendingDispatch(task, args, kwargs)
