"""What a running job can do about itself: Laravel's ``InteractsWithQueue``.

``attempts()``, ``job_id``, ``release(delay)`` (back on its queue, to run again after ``delay``), ``fail(error)``
(failed for good, no more retries) and ``delete()`` (done, no result). As in Laravel, calling one marks the job
and the code goes on; what was asked happens when the job's code has returned (``retries.RetryMiddleware`` does
it), so a released job never runs beside itself. A job class reaches them as ``self.release(30)``; a ``@task``
function as ``job_of(context).release(30)`` (TaskIQ's ``Context``) or ``current_job().release(30)``.

Three counts are kept apart on the job's labels: attempts (runs of its code, what ``tries`` bounds), releases
(times it went back on its queue, by itself or by a job middleware before it ran) and exceptions (attempts that
raised, what ``max_exceptions`` bounds).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from taskiq import Context, TaskiqMessage

from drivers.base import labels
from drivers.base.control import ControlState
from drivers.base.delay import MAX_DELAY
from drivers.base.errors import QueueConfigurationError

_CURRENT: contextvars.ContextVar[Interactions | None] = contextvars.ContextVar("queue_manager_job", default=None)


def count(message: TaskiqMessage, label: str) -> int:
    try:
        return max(0, int(message.labels.get(label, 0) or 0))
    except (TypeError, ValueError):
        return 0


class Interactions:
    """One delivery of one job: what its code asked for, and the counts it arrived with."""

    def __init__(self, message: TaskiqMessage) -> None:
        self.message = message
        self.ran = False  # its code started (a job middleware may release it before)
        self.released: float | None = None  # seconds until it runs again
        self.failure: BaseException | None = None
        self.deleted = False
        self.middleware: list[Any] = []  # the job middleware every job of the connection runs through
        #: where the job's connection keeps job state (locks, rate limits) for job middleware; set by the retry
        #: middleware (raises QueueConfigurationError naming the fix when the connection keeps none)
        self.job_state: Callable[[], ControlState] | None = None

    def outcome(self, returned: Any) -> Any:
        """What the job's code returned, once it has: its result, or the release or failure it asked for."""
        if self.failure is not None:
            raise self.failure
        if self.released is not None:
            raise JobReleased(self.released)
        return None if self.deleted else returned

    @classmethod
    def standalone(cls, task_name: str) -> Interactions:
        """For a job run outside the retry middleware (a broker made without QueueManager): counts start at 0."""
        return cls(TaskiqMessage(task_id="", task_name=task_name, labels={}, args=[], kwargs={}))

    @property
    def job_id(self) -> str:
        return self.message.task_id

    def attempts(self) -> int:
        """How many times the job's code has run, this run included (Laravel's ``attempts()``)."""
        return count(self.message, labels.ATTEMPT) + (1 if self.ran else 0)

    def releases(self) -> int:
        return count(self.message, labels.RELEASES)

    def exceptions(self) -> int:
        return count(self.message, labels.EXCEPTIONS)

    def release(self, delay: float | timedelta = 0) -> None:
        """Put the job back on its queue, to run again in ``delay`` seconds, once its code has returned."""
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise QueueConfigurationError(f"release() takes seconds or a timedelta, got {delay!r}.")
        if not 0 <= seconds <= MAX_DELAY:
            raise QueueConfigurationError(f"release() takes 0 to {MAX_DELAY:g} seconds, got {seconds:g}.")
        self.released = float(seconds)

    def fail(self, error: BaseException | str | None = None) -> None:
        """Fail the job for good once its code has returned: no more retries, its ``failed()`` hook runs."""
        if error is None:
            error = JobFailedError(f"Job {self.message.task_name} was failed by its own code.")
        elif isinstance(error, str):
            error = JobFailedError(error)
        self.failure = error

    def delete(self) -> None:
        """The job is done: nothing more happens to it, and its result is None."""
        self.deleted = True


class JobFailedError(Exception):
    """The error of a job that called ``fail()`` without one."""


class JobReleased(Exception):
    """Raised when a released job's code has returned, so TaskIQ stores no result and the retry middleware puts
    the job back on its queue."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"released, to run again in {delay:g} s")
        self.delay = delay


class MaxAttemptsExceededError(Exception):
    """A released job that has used every attempt its ``tries`` allows (Laravel's MaxAttemptsExceededException)."""


def running(message: TaskiqMessage) -> Interactions:
    """Start tracking a delivery (the retry middleware does, before the job's code runs)."""
    interactions = Interactions(message)
    _CURRENT.set(interactions)
    return interactions


def current_job() -> Interactions:
    """The job whose code is running here (a ``@task`` function asks for itself this way)."""
    found = _CURRENT.get()
    if found is None:
        raise QueueConfigurationError(
            "current_job() is for the code of a running job (a @task function or a Job class's handle()); none "
            "runs here."
        )
    return found


def job_of(context: Context) -> Interactions:
    """The running job TaskIQ's ``Context`` is about (``context: Context = TaskiqDepends()``)."""
    found = _CURRENT.get()
    if found is None or found.message.task_id != context.message.task_id:
        raise QueueConfigurationError(
            f"Job {context.message.task_id} is not running through the queue's retry middleware (a broker made "
            "outside QueueManager?), so release/fail/delete are not available to it."
        )
    return found


def labels_after(message: TaskiqMessage, ran: bool, raised: bool, released: bool) -> dict[str, Any]:
    """The labels of the next delivery of this job: its counts moved on."""
    updated = dict(message.labels)
    if ran:
        updated[labels.ATTEMPT] = count(message, labels.ATTEMPT) + 1
    if raised:
        updated[labels.EXCEPTIONS] = count(message, labels.EXCEPTIONS) + 1
    if released:
        updated[labels.RELEASES] = count(message, labels.RELEASES) + 1
    return updated
