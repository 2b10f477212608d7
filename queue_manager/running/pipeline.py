"""Job middleware, Laravel's way: each is an object whose ``async def handle(job, next)`` decides whether and how
the job runs (``await next(job)``), e.g. ``RateLimited``, ``WithoutOverlapping`` (``queue_manager.middleware``).

A job runs through the connection's middleware (``QUEUE_MIDDLEWARES``), then its own (``@task(middleware=[...])``,
a job class's ``middleware()``). A middleware that does not call ``next`` keeps the job's code from running: it
releases the job (``job.release(delay)``: back on its queue, not an attempt), fails or deletes it. The job a
middleware sees is a job class's instance, or for a ``@task`` function a ``FunctionJob`` whose attributes are
the function's arguments by name (``job.user_id``), so a limit is written once for both.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from queue_manager.running.interactions import _CURRENT, Interactions

Next = Callable[[Any], Awaitable[Any]]


@runtime_checkable
class JobMiddleware(Protocol):
    async def handle(self, job: Any, next: Next) -> Any: ...


class FunctionJob:
    """A ``@task`` function's job as middleware sees it: its arguments by name, and what a job can do."""

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], job: Interactions):
        self._arguments: dict[str, Any] = {}
        try:
            self._arguments = dict(inspect.signature(func).bind_partial(*args, **kwargs).arguments)
        except TypeError:
            self._arguments = dict(kwargs)
        self._interactions = job
        self.task_name = job.message.task_name
        self.args, self.kwargs = args, kwargs

    def __getattr__(self, name: str) -> Any:
        arguments = self.__dict__.get("_arguments", {})
        if name in arguments:
            return arguments[name]
        raise AttributeError(f"job {self.__dict__.get('task_name')!r} has no argument {name!r}")

    @property
    def job_id(self) -> str:
        return self._interactions.job_id

    def attempts(self) -> int:
        return self._interactions.attempts()

    def release(self, delay: float = 0) -> None:
        self._interactions.release(delay)

    def fail(self, error: BaseException | str | None = None) -> None:
        self._interactions.fail(error)

    def delete(self) -> None:
        self._interactions.delete()

    def __repr__(self) -> str:
        return f"<FunctionJob {self.task_name} {self._arguments!r}>"


def check_middleware(middleware: Sequence[Any], where: str) -> list[Any]:
    """Every entry has ``async def handle(job, next)``: refused where it is declared, not when a job runs."""
    checked = list(middleware)
    for entry in checked:
        handle = getattr(entry, "handle", None)
        if isinstance(entry, type) or not inspect.iscoroutinefunction(handle):
            from drivers.base.errors import QueueConfigurationError

            raise QueueConfigurationError(
                f"{where}: {entry!r} is not a job middleware: it needs an `async def handle(self, job, next)` "
                "method (an instance, e.g. RateLimited('emails'), not the class)."
            )
    return checked


async def through(middleware: Sequence[JobMiddleware], job: Any, interactions: Interactions, code: Next) -> Any:
    """Run ``code(job)`` through ``middleware``, in order; what the job asked for is then its outcome."""

    async def step(index: int, current: Any) -> Any:
        if index == len(middleware):
            interactions.ran = True
            return await code(current)
        return await middleware[index].handle(current, lambda passed: step(index + 1, passed))

    return interactions.outcome(await step(0, job))


def piped(func: Callable[..., Any], own: Sequence[JobMiddleware] = ()) -> Callable[..., Any]:
    """``func`` (a ``@task`` function) as its task runs it: through the job middleware, then what the job asked
    for (release, fail, delete). A plain call outside a worker (no running job) is the function itself."""
    if not inspect.iscoroutinefunction(func):
        return _piped_sync(func)

    @functools.wraps(func)
    async def run(*args: Any, **kwargs: Any) -> Any:
        interactions = _CURRENT.get()
        if interactions is None:
            return await func(*args, **kwargs)
        middleware = [*interactions.middleware, *own]
        if not middleware:
            interactions.ran = True
            return interactions.outcome(await func(*args, **kwargs))
        job = FunctionJob(func, args, kwargs, interactions)
        return await through(middleware, job, interactions, lambda _job: func(*args, **kwargs))

    run.job_middleware = list(own)  # type: ignore[attr-defined]  # what a dispatch checks (needing_state)
    return run


def needing_state(pending: Any, connection_middleware: Sequence[Any]) -> list[Any]:
    """The job middleware of a dispatch that keeps state on the server (``needs_job_state``: RateLimited,
    WithoutOverlapping, ThrottlesExceptions): the connection's, the ``@task``'s, a job class instance's. A dispatch
    to a connection that keeps no job state is refused with the fix named, rather than queue a job that cannot
    run guarded."""
    task = getattr(pending, "task", None)  # None: the connection's middleware alone (a worker's boot)
    found = [*connection_middleware, *getattr(getattr(task, "original_func", None), "job_middleware", ())]
    job = getattr(pending, "job", None)
    if job is not None and callable(getattr(job, "middleware", None)):
        with contextlib.suppress(Exception):  # a middleware() that fails here fails the job when it runs, saying why
            found.extend(job.middleware())
    return [entry for entry in found if getattr(entry, "needs_job_state", False)]


def _piped_sync(func: Callable[..., Any]) -> Callable[..., Any]:
    """A sync function runs in TaskIQ's thread, where async middleware cannot: it takes no job middleware (its
    ``@task`` refuses them), and if the connection has some the job fails, saying why, rather than run unguarded."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        interactions = _CURRENT.get()
        if interactions is None:
            return func(*args, **kwargs)
        if interactions.middleware:
            from drivers.base.errors import QueueConfigurationError

            raise QueueConfigurationError(
                f"Task {interactions.message.task_name} is a sync function, and this connection's job middleware "
                "(QUEUE_MIDDLEWARES) runs only around `async def` tasks: make it `async def`, so it does not run "
                "without them."
            )
        interactions.ran = True
        return interactions.outcome(func(*args, **kwargs))

    return run
