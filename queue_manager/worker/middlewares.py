"""The middlewares ``queue:work`` adds to its broker: ``--tries/--backoff/--timeout`` defaults, and the
throughput counters the dashboard draws."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware

from drivers.base import labels
from drivers.base.control import control_of
from queue_manager.connection import throughput_key

logger = logging.getLogger("queue_manager.worker")


def env_number(name: str) -> float | None:
    """A number ``queue:work`` passed as a ``QUEUE_WORKER_*`` variable; None when unset."""
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else None


def worker_defaults() -> dict[str, Any]:
    """``--tries``/``--backoff``/``--timeout`` as labels (Laravel's tries count attempts: retries = tries - 1)."""
    defaults: dict[str, Any] = {}
    tries = env_number("QUEUE_WORKER_TRIES")
    if tries is not None:
        defaults[labels.RETRIES] = max(0, int(tries) - 1)
    if os.environ.get("QUEUE_WORKER_BACKOFF"):
        defaults[labels.BACKOFF] = os.environ["QUEUE_WORKER_BACKOFF"]
    timeout = env_number("QUEUE_WORKER_TIMEOUT")
    if timeout is not None:
        defaults[labels.TIMEOUT] = timeout
    return defaults


class WorkerDefaults(TaskiqMiddleware):
    """``--tries/--backoff/--timeout``: applied to jobs whose task and dispatch set none."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        super().__init__()
        self.defaults = defaults

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        task = self.broker.find_task(message.task_name)
        declared = task.labels if task is not None else {}
        for name, value in self.defaults.items():
            if name not in message.labels and name not in declared:
                if name == "timeout" and task is not None and not asyncio.iscoroutinefunction(task.original_func):
                    continue  # a sync function cannot be stopped: no default timeout for it
                message.labels[name] = value
        return message


class Throughput(TaskiqMiddleware):
    """Counts finished jobs per queue and adds them, every few seconds, to the connection's per-minute counters
    (the dashboard's sparkline); a connection that keeps no counters (RabbitMQ) is left alone."""

    FLUSH_EVERY = 5.0
    TTL = 3600

    def __init__(self, default_queue: str) -> None:
        super().__init__()
        self.default_queue = default_queue
        self.finished: dict[tuple[str, int], int] = {}
        self._flushing: asyncio.Task[None] | None = None

    def post_execute(self, message: TaskiqMessage, result: Any) -> None:
        queue = str(message.labels.get(labels.QUEUE) or self.default_queue)
        key = (queue, int(time.time() // 60))
        self.finished[key] = self.finished.get(key, 0) + 1
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.FLUSH_EVERY)
        await self.flush()

    async def flush(self) -> None:
        finished, self.finished = self.finished, {}
        control = control_of(self.broker)
        if control is None or not finished:
            return
        try:
            for (queue, minute), count in finished.items():
                await control.add(throughput_key(queue, minute), count, self.TTL)
        except NotImplementedError:
            return
        except Exception as error:  # the broker is away: these counts are lost, the jobs are not
            logger.debug("Could not record throughput: %s", error)

    async def shutdown(self) -> None:
        if self._flushing is not None:
            self._flushing.cancel()
        await self.flush()
