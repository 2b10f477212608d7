"""Retries that really wait, releases, and when a job has failed for good: ``retries=3`` means up to three retries
after the first attempt.

TaskIQ's retry middlewares re-send at once on Redis and NATS (their delay only
works where the broker honours a ``delay`` label) and count ``max_retries``
as total attempts. Here a failed job is sent again, with the same task id,
carrying an ``eta`` label that every driver honours, so the backoff is waited
on every broker and ``wait_result`` on the original handle sees the final
outcome. A job that exhausts its retries is logged with its id, task name and
last error, and its error becomes the result. The keeper of those give-ups (the
failed jobs) is told when a worker starts and stops (``WorkerHooks``), to write
what it could not store meanwhile.

It also carries out what a running job asked for (``interactions``): a release puts it back on its queue with the
same task id (an attempt if its code ran, none if a job middleware released it first), a ``fail()`` gives up at
once. A job fails for good when its attempts reach ``retries + 1`` (Laravel's ``tries``), its exceptions reach
``max_exceptions``, its ``retry_until`` deadline has passed, or it timed out and says ``fail_on_timeout``. A unique
job's lock is freed when it starts (``unique_until_processing``) or when it ends for good, by its own task id only.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError

from drivers.base import labels
from drivers.base.control import ControlState
from drivers.base.delay import backoff_for, parse_backoff
from queue_manager import events
from queue_manager.events import Events
from queue_manager.running.interactions import (
    Interactions,
    JobReleased,
    MaxAttemptsExceededError,
    count,
    labels_after,
    running,
)
from queue_manager.running.pipeline import needing_state
from queue_manager.text import error_line

logger = logging.getLogger("queue_manager.retry")


GiveUp = Callable[[TaskiqMessage, BaseException, int], Awaitable[Any]]  # message, last error, attempts


class WorkerHooks(Protocol):
    """What the keeper of the give-ups (the failed jobs) does when a worker starts and stops: write, in the
    background, the records an earlier worker kept on disk while the store was away; stop doing so."""

    async def worker_started(self) -> None: ...

    async def worker_stopped(self) -> None: ...


class RetryMiddleware(TaskiqMiddleware):
    """Retries with backoff, releases, and give-ups (to ``give_up``: the failed-jobs store)."""

    def __init__(
        self,
        give_up: GiveUp | None = None,
        hooks: WorkerHooks | None = None,
        job_middleware: list[Any] | None = None,
        events: Events | None = None,
        connection: str = "",
    ) -> None:
        super().__init__()
        self.give_up = give_up
        self.hooks = hooks
        self.job_middleware = job_middleware if job_middleware is not None else []
        self.events = events or Events()
        self.connection = connection
        #: where the connection keeps job state (a unique job's lock); set by the manager
        self.job_state: Callable[[], ControlState] | None = None
        #: the connection's own queue, what a job's events name when its message carries none (the memory
        #: driver's); set by the manager
        self.default_queue = ""
        self._warned_sync_timeout: set[str] = set()
        self._running: dict[int, Interactions] = {}

    async def startup(self) -> None:
        if self.broker.is_worker_process and self.job_state is not None and needing_state(None, self.job_middleware):
            self.job_state()  # QUEUE_MIDDLEWARES keeping state on a connection that keeps none: no worker starts
        if self.hooks is not None and self.broker.is_worker_process:
            await self.hooks.worker_started()

    async def shutdown(self) -> None:
        if self.hooks is not None and self.broker.is_worker_process:
            await self.hooks.worker_stopped()

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        """Track the delivery (what its code may ask for), free an until-processing unique lock, and drop a
        ``timeout`` label on a sync task (set by ``with_labels`` or a foreign producer): TaskIQ would report a
        TimeoutError while the function goes on in its thread, and the retry would run beside it."""
        interactions = running(message)
        interactions.middleware = self.job_middleware
        interactions.job_state = self.job_state
        self._running[id(message)] = interactions
        if labels.TIMEOUT in message.labels:
            task = self.broker.find_task(message.task_name)
            if task is not None and not inspect.iscoroutinefunction(task.original_func):
                del message.labels[labels.TIMEOUT]
                if message.task_name not in self._warned_sync_timeout:
                    self._warned_sync_timeout.add(message.task_name)
                    logger.warning(
                        "Ignoring the timeout of sync task %s: a thread cannot be stopped (make it `async def` to "
                        "have a timeout)",
                        message.task_name,
                    )
        if message.labels.get(labels.UNIQUE_UNTIL_PROCESSING) in ("1", 1, True, "true"):
            await self._unlock(message)
        if self.events.listening(events.JobProcessing):
            await self.events.fire(events.JobProcessing(*self._about(message), attempt=interactions.attempts() + 1))
        return message

    def _about(self, message: TaskiqMessage) -> tuple[str, str, str, str]:
        """(connection, queue, job id, task name): what every job event carries."""
        spec_queue = getattr(getattr(self.broker, "spec", None), "queue", "")
        queue = str(message.labels.get(labels.QUEUE) or spec_queue or self.default_queue)
        return self.connection, queue, message.task_id, message.task_name

    def _policy(self, message: TaskiqMessage) -> tuple[int, list[float]]:
        task = self.broker.find_task(message.task_name)
        declared = task.labels if task is not None else {}
        retries = message.labels.get(labels.RETRIES, declared.get(labels.RETRIES, 0))
        backoff = declared.get(labels.BACKOFF, message.labels.get(labels.BACKOFF, 0))
        return int(retries or 0), parse_backoff(backoff if backoff is not None else 0)

    def _declared(self, message: TaskiqMessage, label: str) -> Any:
        task = self.broker.find_task(message.task_name)
        return message.labels.get(label, task.labels.get(label) if task is not None else None)

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        """A job that succeeded (or deleted itself) frees its unique lock."""
        interactions = self._running.pop(id(message), None)
        if not result.is_err and not isinstance(result.error, NoResultError):
            await self._unlock(message)
            if self.events.listening(events.JobProcessed):
                attempt = interactions.attempts() if interactions is not None else 1
                await self.events.fire(events.JobProcessed(*self._about(message), attempt=attempt))

    async def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        interactions = self._running.get(id(message)) or Interactions(message)
        retries, backoff = self._policy(message)
        if isinstance(exception, JobReleased):
            await self._release(message, result, interactions, exception.delay, retries)
            return
        exceptions = count(message, labels.EXCEPTIONS) + 1
        # what counts against `tries`: runs of its code, or exceptions raised before it ran (a failing middleware)
        attempts = max(interactions.attempts(), exceptions)
        max_exceptions = _number(self._declared(message, labels.MAX_EXCEPTIONS))
        why = self._why_stop(message, exception, interactions, attempts, retries)
        if why is None and max_exceptions is not None and exceptions >= max_exceptions:
            why = f"it raised {exceptions} times (max_exceptions={max_exceptions:g})"
        if self.events.listening(events.JobExceptionOccurred):
            event = events.JobExceptionOccurred(*self._about(message), exception, attempts, why is None)
            await self.events.fire(event)
        if why is not None:
            await self._give_up(message, exception, attempts)
            return
        wait = backoff_for(backoff, max(0, attempts - 1))
        retry_labels = {**labels_after(message, interactions.ran, True, False), labels.ETA: time.time() + wait}
        retry = message.model_copy(update={"labels": retry_labels})
        await self.broker.kick(self.broker.formatter.dumps(retry))
        logger.info(  # the job line says it too; its traceback with -vvv (DEBUG)
            "Job %s (%s) failed (attempt %d of %d): %s; retrying in %.1fs",
            message.task_id,
            message.task_name,
            attempts,
            retries + 1,
            error_line(exception, message.labels),
            wait,
            exc_info=exception if logger.isEnabledFor(logging.DEBUG) else None,
        )
        result.error = NoResultError()  # the handle waits for the retry's result instead

    def _why_stop(
        self, message: TaskiqMessage, exception: BaseException, interactions: Interactions, attempts: int, retries: int
    ) -> str | None:
        """Why this job gets no other attempt, or None."""
        if interactions.failure is exception:
            return "it failed itself"
        if attempts >= retries + 1:
            return "no retries left"
        deadline = _number(message.labels.get(labels.RETRY_UNTIL))
        if deadline is not None and time.time() >= deadline:
            return "its retry_until deadline has passed"
        if isinstance(exception, TimeoutError) and self._declared(message, labels.FAIL_ON_TIMEOUT) in (True, "1", 1):
            return "it timed out (fail_on_timeout)"
        return None

    async def _release(
        self, message: TaskiqMessage, result: TaskiqResult[Any], job: Interactions, delay: float, retries: int
    ) -> None:
        """Back on its queue (same task id), unless its code has run as often as ``tries`` allows."""
        deadline = _number(message.labels.get(labels.RETRY_UNTIL))
        out_of_time = deadline is not None and time.time() + delay >= deadline
        if (job.ran and job.attempts() >= retries + 1) or out_of_time:
            reason = (
                f"released after its retry_until deadline ({delay:g} s past it)"
                if out_of_time
                else f"released after its last attempt ({job.attempts()} of {retries + 1})"
            )
            error = MaxAttemptsExceededError(f"Job {message.task_name} was {reason}")
            result.error = error
            await self._give_up(message, error, job.attempts())
            return
        again = {**labels_after(message, job.ran, False, True), labels.ETA: time.time() + delay}
        await self.broker.kick(self.broker.formatter.dumps(message.model_copy(update={"labels": again})))
        result.error = NoResultError()  # the handle waits for the job's next run
        if self.events.listening(events.JobReleased):
            await self.events.fire(events.JobReleased(*self._about(message), attempt=job.attempts(), delay=delay))

    async def _unlock(self, message: TaskiqMessage) -> None:
        """Free the unique lock this job holds (only its own: the lock's owner is its task id)."""
        name = message.labels.get(labels.UNIQUE)
        if not name or self.job_state is None:
            return
        try:
            await self.job_state().unlock(str(name), message.task_id)
        except Exception as error:  # the lock expires by itself (unique_for)
            logger.warning("Could not free the unique lock of job %s (%s): %s", message.task_id, name, error)

    async def _give_up(self, message: TaskiqMessage, exception: BaseException, attempts: int) -> None:
        """No retries left: record it (a store that is down must not keep the job coming back forever)."""
        self._running.pop(id(message), None)
        await self._unlock(message)
        if self.events.listening(events.JobFailed):
            await self.events.fire(events.JobFailed(*self._about(message), exception, attempts))
        if self.give_up is not None:
            try:
                await self.give_up(message, exception, attempts)
                return
            except Exception:
                logger.exception("Could not record job %s (%s) as failed", message.task_id, message.task_name)
        logger.error(
            "Job %s (%s) failed after %d attempt%s; giving up. Last error: %s",
            message.task_id,
            message.task_name,
            attempts,
            "" if attempts == 1 else "s",
            error_line(exception, message.labels),
            exc_info=exception,
        )


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
