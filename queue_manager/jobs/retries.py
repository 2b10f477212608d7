"""Retries that really wait: ``retries=3`` means up to three retries after the first attempt.

TaskIQ's retry middlewares re-send at once on Redis and NATS (their delay only
works where the broker honours a ``delay`` label) and count ``max_retries``
as total attempts. Here a failed job is sent again, with the same task id,
carrying an ``eta`` label that every driver honours, so the backoff is waited
on every broker and ``wait_result`` on the original handle sees the final
outcome. A job that exhausts its retries is logged with its id, task name and
last error, and its error becomes the result. The keeper of those give-ups (the
failed jobs) is told when a worker starts and stops (``WorkerHooks``), to write
what it could not store meanwhile.
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
from drivers.base.delay import backoff_for, parse_backoff
from queue_manager.text import error_line

logger = logging.getLogger("queue_manager.retry")


GiveUp = Callable[[TaskiqMessage, BaseException, int], Awaitable[Any]]  # message, last error, attempts


class WorkerHooks(Protocol):
    """What the keeper of the give-ups (the failed jobs) does when a worker starts and stops: write, in the
    background, the records an earlier worker kept on disk while the store was away; stop doing so."""

    async def worker_started(self) -> None: ...

    async def worker_stopped(self) -> None: ...


class RetryMiddleware(TaskiqMiddleware):
    """Retries with backoff; a job with no retries left goes to ``give_up`` (the failed-jobs store)."""

    def __init__(self, give_up: GiveUp | None = None, hooks: WorkerHooks | None = None) -> None:
        super().__init__()
        self.give_up = give_up
        self.hooks = hooks
        self._warned_sync_timeout: set[str] = set()

    async def startup(self) -> None:
        if self.hooks is not None and self.broker.is_worker_process:
            await self.hooks.worker_started()

    async def shutdown(self) -> None:
        if self.hooks is not None and self.broker.is_worker_process:
            await self.hooks.worker_stopped()

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        """A ``timeout`` label on a sync task (set by ``with_labels`` or a foreign producer) is dropped: TaskIQ
        would report a TimeoutError while the function goes on in its thread, and the retry would run beside it."""
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
        return message

    def _policy(self, message: TaskiqMessage) -> tuple[int, list[float]]:
        task = self.broker.find_task(message.task_name)
        declared = task.labels if task is not None else {}
        retries = message.labels.get(labels.RETRIES, declared.get(labels.RETRIES, 0))
        backoff = declared.get(labels.BACKOFF, message.labels.get(labels.BACKOFF, 0))
        return int(retries or 0), parse_backoff(backoff if backoff is not None else 0)

    async def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        retries, backoff = self._policy(message)
        done = int(message.labels.get(labels.ATTEMPT, 0))
        if done >= retries:
            await self._give_up(message, exception, done + 1)
            return
        wait = backoff_for(backoff, done)
        retry_labels = {**message.labels, labels.ATTEMPT: done + 1, labels.ETA: time.time() + wait}
        retry = message.model_copy(update={"labels": retry_labels})
        await self.broker.kick(self.broker.formatter.dumps(retry))
        logger.info(  # the job line says it too; its traceback with -vvv (DEBUG)
            "Job %s (%s) failed (attempt %d of %d): %s; retrying in %.1fs",
            message.task_id,
            message.task_name,
            done + 1,
            retries + 1,
            error_line(exception, message.labels),
            wait,
            exc_info=exception if logger.isEnabledFor(logging.DEBUG) else None,
        )
        result.error = NoResultError()  # the handle waits for the retry's result instead

    async def _give_up(self, message: TaskiqMessage, exception: BaseException, attempts: int) -> None:
        """No retries left: record it (a store that is down must not keep the job coming back forever)."""
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
