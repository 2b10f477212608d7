"""A named queue connection: one TaskIQ broker plus what the manager knows about it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, AsyncTaskiqTask, TaskiqEvents, TaskiqMiddleware, TaskiqState
from taskiq.utils import maybe_awaitable

from drivers import BrokerSpec, QueueConfigurationError
from queue_manager.dispatch import PendingDispatch, check_queue_name

if TYPE_CHECKING:
    from queue_manager.testing.fake import QueueFake

Pinger = Callable[[BrokerSpec], Awaitable[None]]
BULK_CHUNK = 1000


async def _no_ping(spec: BrokerSpec) -> None:
    """Custom drivers have no ping of their own."""


class Connection:
    """Laravel's queue connection: a name, a driver and the broker that carries its jobs.

    Whether the broker is started is read from the broker's own startup and
    shutdown events, so a seed-style ``await broker.startup()`` counts too and
    a broker is never started twice.
    """

    def __init__(self, spec: BrokerSpec, broker: AsyncBroker, pinger: Pinger | None = None) -> None:
        self.spec = spec
        self.broker = broker
        self._pinger = pinger or _no_ping
        self._started = False
        self._lock = asyncio.Lock()
        self.faked_by: QueueFake | None = None
        for event in (TaskiqEvents.CLIENT_STARTUP, TaskiqEvents.WORKER_STARTUP):
            broker.add_event_handler(event, self._mark(True))
        for event in (TaskiqEvents.CLIENT_SHUTDOWN, TaskiqEvents.WORKER_SHUTDOWN):
            broker.add_event_handler(event, self._mark(False))

    def _mark(self, started: bool) -> Callable[[TaskiqState], None]:
        def handler(_state: TaskiqState) -> None:
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

    async def startup(self) -> None:
        """Start the broker once (idempotent); an unreachable server raises BrokerUnreachableError."""
        async with self._lock:
            if not self._started:
                try:
                    await self.broker.startup()
                except BaseException:
                    self._started = False  # the startup event fired before the failure
                    raise

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

    async def _counted(self, operation: str, queue: str | None) -> int:
        name = check_queue_name(queue or self.queue)
        if self.faked_by is not None and self.faked_by.tasks is None:  # every job is recorded, none sent
            return self.faked_by.count_queue(self.name, name, clear=operation == "clear")
        method = getattr(self.broker, operation, None)
        if method is None:
            raise QueueConfigurationError(
                f"Queue connection '{self.name}' (driver {self.driver}) cannot {operation} a queue: its broker "
                f"({type(self.broker).__name__}) has no `async def {operation}(queue) -> int`. Add one to the "
                "custom driver's broker to support it."
            )
        if not self._started:
            await self.startup()
        return int(await method(name))

    def dispatch(self, task: AsyncTaskiqDecoratedTask[Any, Any], *args: Any, **kwargs: Any) -> PendingDispatch:
        """Send ``task`` through this connection, whatever broker it was declared on (await the result)."""
        return PendingDispatch(task, args, kwargs, connection=self)

    async def send(self, pending: PendingDispatch) -> AsyncTaskiqTask[Any]:
        """Send a pending dispatch now, starting the connection on first use."""
        faked = self.faked_by is not None and self.faked_by.covers(self.name, pending.task.task_name)
        if not self._started and not faked:
            await self.startup()
        return await pending.kicker(self).kiq(*pending.args, **pending.kwargs)

    async def bulk(
        self,
        task: AsyncTaskiqDecoratedTask[Any, Any],
        jobs: Iterable[Sequence[Any]],
        queue: str | None = None,
    ) -> list[AsyncTaskiqTask[Any]]:
        """Laravel's ``Queue::bulk``: send one job per argument tuple in as few round trips as the broker
        allows (one Redis pipeline per 1,000 jobs; concurrent sends elsewhere). Returns their handles."""
        if not self._started and self.faked_by is None:
            await self.startup()
        pending = PendingDispatch(task, (), {}, connection=self)
        if queue is not None:
            pending.on_queue(queue)
        kicker = pending.kicker(self)
        messages = []
        for args in jobs:
            message = kicker._prepare_message(*args)
            for middleware in self.broker.middlewares:
                if middleware.__class__.pre_send is not TaskiqMiddleware.pre_send:
                    message = await maybe_awaitable(middleware.pre_send(message))
            messages.append(self.broker.formatter.dumps(message))
        kick_many = getattr(self.broker, "kick_many", None)
        for first in range(0, len(messages), BULK_CHUNK):
            chunk = messages[first : first + BULK_CHUNK]
            if kick_many is not None and self.faked_by is None:
                await kick_many(chunk)
            else:
                await asyncio.gather(*(self.broker.kick(message) for message in chunk))
        return [AsyncTaskiqTask(m.task_id, self.broker.result_backend) for m in messages]

    def __repr__(self) -> str:
        return (
            f"<Connection {self.name!r} driver={self.driver!r} url={self.spec.display_url!r} "
            f"queue={self.queue!r} started={self._started}>"
        )
