"""``@task``: a job that belongs to no broker, so any connection can send it and any worker can run it.

It is registered in TaskIQ's shared (global) task registry; ``.kiq()`` sends
it through the default connection, ``dispatch(t).on_connection(...)`` or
``manager.connection(name).dispatch(t)`` through any other.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from taskiq import AsyncTaskiqDecoratedTask, AsyncTaskiqTask, BrokerMessage
from taskiq.brokers.shared_broker import AsyncSharedBroker
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker

from drivers import QueueConfigurationError
from drivers.base.delay import parse_backoff
from drivers.base.labels import BACKOFF, QUEUE, RETRIES, TIMEOUT, UNIQUE_FOR
from drivers.base.names import check_queue_name
from queue_manager.context import current, has_manager
from queue_manager.dispatch import PendingDispatch
from queue_manager.errors import raise_if_unreachable
from queue_manager.handles import QueueKicker
from queue_manager.running.pipeline import check_middleware, piped

if TYPE_CHECKING:
    from queue_manager.failed.record import FailedJob

MAX_LOCK = 86_400 * 30  # the longest a unique lock may be asked to last
P = ParamSpec("P")
R = TypeVar("R")

FailureHook = Callable[["FailedJob", BaseException], Any]
#: task name -> ``on_failure`` hook (``@task(on_failure=...)``), Laravel's ``failed()`` method.
_FAILURE_HOOKS: dict[str, FailureHook] = {}


def register_failure_hook(task_name: str, hook: FailureHook) -> None:
    """Run ``hook(failed_job, error)`` once when a job of ``task_name`` fails for good (a job class's failed())."""
    _FAILURE_HOOKS[task_name] = hook


def failure_hook(task_name: str) -> FailureHook | None:
    """The ``on_failure`` hook of a task, if it declared one (the failed jobs call it once, for good)."""
    return _FAILURE_HOOKS.get(task_name)


class QueueTask(AsyncTaskiqDecoratedTask[P, R]):
    """A shared task whose default broker is the default queue connection, looked up when sent."""

    def kicker(self) -> AsyncKicker[P, R]:
        """TaskIQ's kicker on the default connection's broker; ``.with_broker(b)`` works with no manager set
        up (the registry stands in until then, and sends through the manager if one exists by then)."""
        broker = current().connection().broker if has_manager() else registry
        return QueueKicker(self.task_name, broker, dict(self.labels), self.return_type)

    async def kiq(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskiqTask[R]:  # type: ignore[override]
        return await PendingDispatch(self, args, kwargs)

    def dispatch(self, *args: P.args, **kwargs: P.kwargs) -> PendingDispatch:
        """Laravel's ``SendEmail::dispatch(...)``: chain options, then await."""
        return PendingDispatch(self, args, kwargs)


class BrokerTask(AsyncTaskiqDecoratedTask[P, R]):
    """What the guide's ``@broker.task`` makes on a connection's broker: TaskIQ's task, except that an
    unreachable broker raises ``DispatchUnreachableError`` (also TaskIQ's ``SendTaskError``), as ``dispatch``
    does, instead of a bare ``SendTaskError`` that ``except BrokerUnreachableError`` misses; and that it runs
    through the connection's job middleware, and can release, fail or delete itself (``running``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.original_func = piped(self.original_func)

    def kicker(self) -> AsyncKicker[P, R]:
        return QueueKicker(self.task_name, self.broker, dict(self.labels), self.return_type)

    async def kiq(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskiqTask[R]:
        try:
            return await self.kicker().kiq(*args, **kwargs)
        except SendTaskError as error:
            raise_if_unreachable(error)
            raise


class _TaskRegistry(AsyncSharedBroker):
    def __init__(self) -> None:
        super().__init__()
        self.decorator_class = QueueTask

    async def kick(self, message: BrokerMessage) -> None:
        """A kicker made before any manager existed: send through the default connection (or say how to
        set one up), instead of TaskIQ's "shared tasks cannot be sent"."""
        connection = current().connection()
        await connection.startup()
        await connection.broker.kick(message)


registry = _TaskRegistry()


def task_labels(
    queue: str | None,
    retries: int | None,
    backoff: float | Sequence[float] | None,
    timeout: float | None,
    unique_for: float | None = None,
    where: str = "@task",
) -> dict[str, Any]:
    """Check the decorator's arguments when the module is imported, not when a job fails."""
    labels: dict[str, Any] = {}
    if unique_for is not None:
        if isinstance(unique_for, bool) or not isinstance(unique_for, int | float) or not 0 < unique_for <= MAX_LOCK:
            raise QueueConfigurationError(
                f"{where}(unique_for=...) must be seconds > 0 (at most {MAX_LOCK}: a lock always expires), "
                f"got {unique_for!r}."
            )
        labels[UNIQUE_FOR] = unique_for
    if queue is not None:
        labels[QUEUE] = check_queue_name(queue)
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise QueueConfigurationError(f"{where}(retries=...) must be a whole number >= 0, got {retries!r}.")
        labels[RETRIES] = retries
    if backoff is not None:
        parse_backoff(backoff)
        labels[BACKOFF] = list(backoff) if isinstance(backoff, Sequence) else backoff
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise QueueConfigurationError(f"{where}(timeout=...) must be seconds > 0, got {timeout!r}.")
        labels[TIMEOUT] = timeout
    return labels


@overload
def task(func: Callable[P, R], /) -> QueueTask[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    queue: str | None = None,
    retries: int | None = None,
    backoff: float | Sequence[float] | None = None,
    timeout: float | None = None,
    on_failure: FailureHook | None = None,
    middleware: Sequence[Any] = (),
    unique_for: float | None = None,
    **labels: Any,
) -> Callable[[Callable[P, R]], QueueTask[P, R]]: ...


def task(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str | None = None,
    retries: int | None = None,
    backoff: float | Sequence[float] | None = None,
    timeout: float | None = None,
    on_failure: FailureHook | None = None,
    middleware: Sequence[Any] = (),
    unique_for: float | None = None,
    **labels: Any,
) -> Any:
    """Declare a job. ``retries``: retries after the first attempt; ``backoff``: seconds, or one per retry;
    ``timeout``: seconds an async job may run; ``queue``: its default queue; ``on_failure``: Laravel's
    ``failed()``, called once (sync or async) with the failed job and the exception when it fails for good;
    ``middleware``: job middleware it runs through (``queue_manager.middleware``); ``unique_for``: seconds during
    which a second dispatch with the same arguments, while one is queued or running, queues nothing."""
    if on_failure is not None and not callable(on_failure):
        raise QueueConfigurationError(f"@task(on_failure=...) must be a function, got {on_failure!r}.")
    own = check_middleware(middleware, "@task(middleware=...)")
    all_labels = {**labels, **task_labels(queue, retries, backoff, timeout, unique_for)}
    decorator = registry.task(task_name=name, **all_labels)

    def declare(function: Callable[..., Any]) -> Any:
        if own and not inspect.iscoroutinefunction(function):
            raise QueueConfigurationError(
                f"@task(middleware=...) on {getattr(function, '__qualname__', function)!r}: job middleware runs "
                "around `async def` tasks only (TaskIQ runs a sync function in a thread). Make the task `async def`."
            )
        if timeout is not None and not inspect.iscoroutinefunction(function):
            raise QueueConfigurationError(
                f"@task(timeout=...) on {getattr(function, '__qualname__', function)!r}: only an `async def` task "
                "can be stopped. TaskIQ runs a sync function in a thread, which would keep running after the "
                "timeout (and a retry would start beside it). Make the task `async def`, or drop `timeout` and "
                "bound the work inside the function."
            )
        declared = decorator(function)
        declared.original_func = piped(declared.original_func, own)
        if on_failure is not None:
            _FAILURE_HOOKS[declared.task_name] = on_failure
        return declared

    return declare(func) if func is not None else declare
