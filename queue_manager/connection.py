"""A named queue connection: one TaskIQ broker plus what the manager knows about it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from taskiq import (
    AsyncBroker,
    AsyncTaskiqDecoratedTask,
    AsyncTaskiqTask,
    BrokerMessage,
    TaskiqEvents,
    TaskiqState,
)
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker

from drivers import DRIVERS, BrokerSpec, BrokerUnreachableError, QueueConfigurationError
from drivers.base import labels
from drivers.base.contract import CountsQueues, QueueCounts, ReportsCounts
from drivers.base.control import ControlState, JobStateUnsupported, control_of, paused_key
from drivers.base.names import check_queue_name
from queue_manager import insight
from queue_manager.dispatch import PendingDispatch, dispatch
from queue_manager.errors import BulkDispatchError, raise_if_unreachable
from queue_manager.events import Events, JobQueued
from queue_manager.handles import QueueKicker
from queue_manager.running.pipeline import needing_state
from queue_manager.sending import kiq_many

Pinger = Callable[[BrokerSpec], Awaitable[None]]


async def _no_ping(spec: BrokerSpec) -> None:
    """Custom drivers have no ping of their own."""


class Connection:
    """Laravel's queue connection: a name, a driver and the broker that carries its jobs.

    Whether the broker is started is read from the broker's own startup and
    shutdown events, so a seed-style ``await broker.startup()`` counts too and
    a broker is never started twice.
    """

    #: Where this connection keeps job state (unique locks, job middleware): set by the manager.
    job_state: Callable[[], ControlState] | None = None
    #: The app's events (JobQueued): set by the manager.
    events: Events = Events()

    def __init__(self, spec: BrokerSpec, broker: AsyncBroker, pinger: Pinger | None = None) -> None:
        self.spec = spec
        self.broker = broker
        self._pinger = pinger or _no_ping
        known = DRIVERS.get(spec.driver)
        self._queue_rule = known.queue_rule if known is not None else None
        self._started = False
        self._fired = False  # the broker's startup event fired during our own startup()
        self._lock = asyncio.Lock()
        for event in (TaskiqEvents.CLIENT_STARTUP, TaskiqEvents.WORKER_STARTUP):
            broker.add_event_handler(event, self._mark(True))
        for event in (TaskiqEvents.CLIENT_SHUTDOWN, TaskiqEvents.WORKER_SHUTDOWN):
            broker.add_event_handler(event, self._mark(False))

    def _mark(self, started: bool) -> Callable[[TaskiqState], None]:
        def handler(_state: TaskiqState) -> None:
            if started and self._lock.locked():  # our own startup() says so once the broker is connected
                self._fired = True
            else:
                self._started = started

        return handler

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def driver(self) -> str:
        return self.spec.driver

    @property
    def queue(self) -> str:
        return self.spec.queue

    @property
    def started(self) -> bool:
        return self._started

    def check_queue(self, queue: str | None = None) -> str:
        """``queue`` (default: this connection's), or QueueConfigurationError if this connection's driver cannot
        use the name: the same check at dispatch, in the worker and in every command."""
        return check_queue_name(queue or self.queue, self._queue_rule, self.driver)

    async def startup(self) -> None:
        """Start the broker once (idempotent); an unreachable server raises BrokerUnreachableError."""
        async with self._lock:
            if not self._started:
                self._fired = False
                try:
                    await self.broker.startup()
                except BaseException:
                    self._started = False  # the startup event fired before the failure
                    raise
                # only now: TaskIQ fires the startup event before the broker connects, and a concurrent first
                # dispatch that saw `started` then would send on a broker not yet connected (RabbitMQ); a faked
                # startup (QueueFake) fires nothing and starts nothing
                self._started = self._fired

    async def shutdown(self) -> None:
        async with self._lock:
            if self._started:
                await self.broker.shutdown()

    async def ping(self) -> None:
        """Check the server answers (a short-lived connection); raises BrokerUnreachableError."""
        await self._pinger(self.spec)

    async def size(self, queue: str | None = None) -> int:
        """Laravel's ``Queue::size``: jobs waiting in ``queue`` (default: this connection's queue).

        What a broker can count differs a little: see "What `size` counts, per driver" in the README.
        """
        return await self._counted("size", queue)

    async def clear(self, queue: str | None = None) -> int:
        """Laravel's ``Queue::clear``: delete the jobs waiting in ``queue``; returns how many there were."""
        return await self._counted("clear", queue)

    async def counts(self, queue: str | None = None) -> QueueCounts:
        """Waiting, delayed and reserved (running) jobs of ``queue``, as far as the driver can tell (None where
        it cannot; see "Operating the queues" in the README); at least ``size()`` as waiting."""
        name = self.check_queue(queue)
        if not self._started:
            await self.startup()
        if isinstance(self.broker, ReportsCounts):
            return await self.broker.counts(name)
        return QueueCounts(waiting=await self._counted("size", name))

    # -- pausing (Laravel's queue:pause / queue:resume) --------------------------------------------
    async def pause(self, queue: str | None = None) -> None:
        """Workers of every process and machine stop taking jobs from ``queue`` within about a second (running
        ones finish); dispatching to it still enqueues. The state lives on the connection's own server."""
        await self._control().set(paused_key(self.check_queue(queue)), str(time.time()))

    async def resume(self, queue: str | None = None) -> None:
        await self._control().delete(paused_key(self.check_queue(queue)))

    async def paused(self, queue: str | None = None) -> bool:
        return await self._control().get(paused_key(self.check_queue(queue))) is not None

    async def throughput(self, queue: str | None = None, minutes: int = 30) -> list[int] | None:
        """Jobs finished on ``queue`` in each of the last ``minutes`` minutes, oldest first, as ``queue:work``
        workers count them; None where the connection keeps no counters (RabbitMQ, custom drivers)."""
        name = self.check_queue(queue)
        now = int(time.time() // 60)
        keys = [throughput_key(name, minute) for minute in range(now - minutes + 1, now + 1)]
        try:
            return await self._control().counters(keys)
        except QueueConfigurationError:
            return None

    # -- insight (Horizon's metrics, recent jobs, workers), as queue:work workers record it: queue_manager.insight --
    async def metrics(self, queue: str | None = None, task: str | None = None, minutes: int = 60) -> dict[str, Any]:
        """Per task and per queue over the last ``minutes`` (at most 60): jobs and failures per minute, runtime and
        wait (dispatch to start) p50/p95/max in ms; ``task`` matches part of a task's name."""
        return await insight.metrics(self, queue, task, minutes)

    async def recent_jobs(
        self, failed: bool = False, task: str | None = None, tag: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest completed (``failed=True``: failed) jobs, newest first, with their tags and arguments
        (secret-looking ones redacted); ``task`` matches part of the task's name, ``tag`` one of its tags."""
        return await insight.recent_jobs(self, failed, task, tag, limit)

    async def workers(self) -> list[dict[str, Any]]:
        """The live ``queue:work`` processes of this connection (host, pid, queues, jobs done, running now)."""
        return await insight.workers(self)

    async def monitor_tag(self, tag: str) -> str:
        """Horizon's "monitor a tag": workers keep its jobs in a list of their own, longer (read once a minute)."""
        return await insight.monitor_tag(self, tag)

    async def stop_monitoring_tag(self, tag: str) -> None:
        await insight.stop_monitoring_tag(self, tag)

    async def monitored_tags(self) -> list[str]:
        """The tags monitored with ``monitor_tag`` (``QUEUE_INSIGHT__MONITORED_TAGS``'s are monitored besides)."""
        return await insight.monitored_tags(self)

    def _control(self) -> ControlState:
        control = control_of(self.broker)
        if control is None:
            raise QueueConfigurationError(
                f"Queue connection '{self.name}' (driver {self.driver}) keeps no shared state, so its queues cannot "
                "be paused (a custom driver's broker would need a control_state)."
            )
        return _Started(self, control)

    async def _counted(self, operation: str, queue: str | None) -> int:
        name = self.check_queue(queue)
        if not isinstance(self.broker, CountsQueues):
            raise QueueConfigurationError(
                f"Queue connection '{self.name}' (driver {self.driver}) cannot {operation} a queue: its broker "
                f"({type(self.broker).__name__}) has no `async def size(queue) -> int` and "
                "`async def clear(queue) -> int`. Add them to the custom driver's broker to support it."
            )
        if not self._started:
            await self.startup()
        method = self.broker.clear if operation == "clear" else self.broker.size
        return int(await method(name))

    def dispatch(self, task: Any, *args: Any, **kwargs: Any) -> PendingDispatch:
        """Send ``task`` (or a job class's instance) through this connection, whatever broker it was declared on
        (await the result)."""
        pending = dispatch(task, *args, **kwargs)
        pending.use_connection(self)
        return pending

    async def send(self, pending: PendingDispatch) -> AsyncTaskiqTask[Any]:
        """Send a pending dispatch now, starting the connection on first use. An unreachable broker raises
        ``DispatchUnreachableError`` whether it failed at the start or at the send (TaskIQ's kicker wraps
        the latter in ``SendTaskError``). A unique job that is already queued or running is not sent: None."""
        self.check_queue(pending.queue)  # this driver's rule, before TaskIQ's kicker would wrap its refusal
        self._check_job_state(pending)
        try:
            if not self._started:
                await self.startup()
            unique = pending.unique_lock()
            if unique is not None:
                sent = await self._send_unique(pending, *unique)
            else:
                sent = await pending.kicker(self.broker).kiq(*pending.args, **pending.kwargs)
        except (SendTaskError, BrokerUnreachableError) as error:
            raise_if_unreachable(error)
            raise
        if sent is not None and self.events.listening(JobQueued):
            eta = pending.labels.get(labels.ETA)
            delay = max(0.0, float(eta) - time.time()) if eta is not None else None
            await self.events.fire(JobQueued(self.name, pending.queue, sent.task_id, pending.task.task_name, delay))
        return sent  # type: ignore[return-value]

    def _check_job_state(self, pending: PendingDispatch) -> None:
        """A job whose middleware keeps state (RateLimited, WithoutOverlapping, ThrottlesExceptions) is refused
        here, naming the STATE setting, by a connection that keeps none: it would fail when it ran."""
        if self.job_state is None:
            return
        retry = next((m for m in self.broker.middlewares if hasattr(m, "job_middleware")), None)
        if needing_state(pending, getattr(retry, "job_middleware", [])):
            self.job_state()

    async def _send_unique(self, pending: PendingDispatch, name: str, ttl: float) -> AsyncTaskiqTask[Any] | None:
        """Take the job's unique lock for the task id it is sent with, then send it; a send that fails frees the
        lock (Laravel keeps it: laravel/framework#48483), and only that task id ever frees it."""
        if self.job_state is None:
            raise QueueConfigurationError(f"Queue connection '{self.name}' keeps no job state for unique jobs.")
        state = self.job_state()
        task_id = self.broker.id_generator()
        try:
            taken = await state.lock(name, task_id, ttl)
        except JobStateUnsupported:
            raise QueueConfigurationError(
                f"Queue connection '{self.name}' (driver {self.driver}) keeps no job state, which a unique job "
                f"needs: set {self.spec.setting('state')}=<a Redis, NATS or memory connection>."
            ) from None
        if not taken:
            return None
        try:
            kicker = pending.kicker(self.broker).with_task_id(task_id).with_labels(**pending.unique_labels(name))
            return await kicker.kiq(*pending.args, **pending.kwargs)
        except BaseException:
            await asyncio.shield(state.unlock(name, task_id))
            raise

    async def send_named(
        self,
        task_name: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        labels: dict[str, Any],
        task_id: str | None = None,
    ) -> AsyncTaskiqTask[Any]:
        """Send a job by its task's name (``queue:retry`` does, for a task this process may never import),
        through TaskIQ's kicker like any dispatch; ``task_id`` keeps the one an earlier handle waits on."""
        if not self._started:
            await self.startup()
        kicker: AsyncKicker[Any, Any] = QueueKicker(task_name, self.broker, labels)
        if task_id:
            kicker = kicker.with_task_id(task_id)
        return await kicker.kiq(*args, **kwargs)

    async def send_raw(
        self, task_id: str, task_name: str, payload: bytes, labels: dict[str, Any]
    ) -> AsyncTaskiqTask[Any]:
        """Send bytes as they were received (a job no worker could decode, retried as it was)."""
        if not self._started:
            await self.startup()
        task_id = task_id or self.broker.id_generator()
        await self.broker.kick(BrokerMessage(task_id=task_id, task_name=task_name, message=payload, labels=labels))
        return AsyncTaskiqTask(task_id, self.broker.result_backend)

    async def bulk(
        self,
        task: AsyncTaskiqDecoratedTask[Any, Any] | Iterable[Any],
        jobs: Iterable[Sequence[Any]] | None = None,
        queue: str | None = None,
    ) -> list[AsyncTaskiqTask[Any]]:
        """Laravel's ``Queue::bulk``: one job per argument tuple (``bulk(task, [(1,), (2,)])``), or job class
        instances (``bulk([SendEmail(1), SendEmail(2)])``), in as few round trips as the driver allows.

        Each job goes through TaskIQ's ``kiq`` like a single dispatch (every middleware hook runs once per
        job); the driver sends up to 1,000 at a time (one Redis pipeline; concurrent publishes elsewhere).
        Returns the handles in order. If some jobs could not be sent, raises ``BulkDispatchError`` whose
        ``sent`` holds the handles of those that were, and ``failed`` the (index, error) of the others. A unique
        job (``unique_for``) is sent on its own, taking its lock; one already queued is left out of the handles.
        """
        if not self._started:
            await self.startup()
        if jobs is None:  # job class instances: each is its own pending dispatch
            pendings = [self.dispatch(job) for job in task]  # type: ignore[union-attr]
        else:
            pendings = [PendingDispatch(task, tuple(args), {}, connection=self) for args in jobs]  # type: ignore[arg-type]
        for pending in pendings:
            pending.close()  # sent below, through kiq_many (or send), never by being awaited
        checked: set[str] = set()
        for pending in pendings:
            if queue is not None:
                pending.on_queue(queue)
            self.check_queue(pending.queue)
            if pending.task.task_name not in checked:  # one of each task: its job middleware's job state
                checked.add(pending.task.task_name)
                self._check_job_state(pending)
        outcomes: list[Any] = [None] * len(pendings)
        groups: dict[tuple[str, str], list[int]] = {}
        for index, pending in enumerate(pendings):
            if pending.unique_lock() is not None:
                outcomes[index] = await _outcome(self.send(pending))
            else:
                groups.setdefault((pending.task.task_name, pending.queue), []).append(index)
        for indexes in groups.values():
            template = pendings[indexes[0]]
            calls = [pendings[i].call() for i in indexes]
            for index, outcome in zip(indexes, await kiq_many(template.kicker(self.broker), calls), strict=True):
                outcomes[index] = outcome
        sent = [outcome for outcome in outcomes if isinstance(outcome, AsyncTaskiqTask)]
        failed = [(index, outcome) for index, outcome in enumerate(outcomes) if isinstance(outcome, BaseException)]
        if failed:
            first = failed[0][1]
            cause = first.__cause__ or first
            raise BulkDispatchError(
                failed_count=len(failed),
                total=len(outcomes),
                first_error=f"{type(cause).__name__}: {cause}",
                sent=sent,
                failed=failed,
            ) from first
        return sent

    def __repr__(self) -> str:
        return (
            f"<Connection {self.name!r} driver={self.driver!r} url={self.spec.display_url!r} "
            f"queue={self.queue!r} started={self._started}>"
        )


async def _outcome(sending: Awaitable[Any]) -> Any:
    """A send's handle, or the exception it raised (as ``kiq_many`` reports each job)."""
    try:
        return await sending
    except Exception as error:
        return error


def throughput_key(queue: str, minute: int) -> str:
    """The counter of jobs finished on ``queue`` during ``minute`` (minutes since the epoch)."""
    return f"throughput:{queue}:{minute}"


class _Started(ControlState):
    """A connection's control state, starting the connection first (a script or a command may not have)."""

    def __init__(self, connection: Connection, control: ControlState) -> None:
        self.connection, self.control = connection, control

    async def get(self, name: str) -> str | None:
        await self.connection.startup()
        return await self.control.get(name)

    async def set(self, name: str, value: str) -> None:
        await self.connection.startup()
        await self.control.set(name, value)

    async def delete(self, name: str) -> None:
        await self.connection.startup()
        await self.control.delete(name)

    async def add(self, name: str, amount: int, ttl: int) -> None:
        await self.connection.startup()
        await self.control.add(name, amount, ttl)

    async def counters(self, names: list[str]) -> list[int] | None:
        await self.connection.startup()
        return await self.control.counters(names)
