"""The worker behind ``queue:work``: TaskIQ's receiver plus Laravel's lifecycle flags and ``queue:restart``.

``queue:work`` passes its flags as ``QUEUE_WORKER_*`` variables (``Lifecycle.from_env``). The receiver
counts the jobs it runs, and one watch loop, once a second, ends the worker the way a signal does (no new
jobs; running ones finish within ``--shutdown-timeout``) when ``--max-time`` has passed, the process's
memory is over ``--memory``, its queues are empty (``--stop-when-empty``) or ``queue:restart`` was run
after it started. ``--max-jobs``/``--once`` use TaskIQ's own limit on fetched jobs, and the broker is told
not to fetch beyond it. The reason it stopped decides the exit code (``EXIT_CODES``). A server that refuses the
credentials, at the start or later, stops the worker at once (exit 2, one line): trying again cannot fix them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any

from taskiq import AsyncBroker
from taskiq.receiver import Receiver

from drivers import BrokerAuthenticationError, BrokerUnreachableError
from drivers.base.contract import CountsQueues, HoldsJobs
from drivers.base.control import ControlState, control_of, restart_key
from queue_manager.events import WorkerStopping
from queue_manager.running.retries import RetryMiddleware
from queue_manager.worker.entry import stop_taskiq_worker
from queue_manager.worker.insight import insight_recorder
from queue_manager.worker.middlewares import Throughput, WorkerDefaults, env_number, worker_defaults
from queue_manager.worker.output import JobLines

logger = logging.getLogger("queue_manager.worker")

WATCH_EVERY = 1.0
STARTUP_RETRY = (1.0, 30.0)  # seconds between attempts to reach the broker at start: first, most
EXIT_CODES = {
    **{"signal": 0, "max-jobs": 0, "max-time": 0, "stop-when-empty": 0, "restart": 0, "memory": 12},
    "credentials": 2,  # the server refused them: bad settings, as queue:work's exit code for refused input
}


@dataclass
class Lifecycle:
    """When a ``queue:work`` process stops by itself (all optional)."""

    max_jobs: int | None = None
    max_time: float | None = None
    memory_mb: float | None = None
    stop_when_empty: bool = False
    queues: list[str] = field(default_factory=list)
    output: str = "text"
    restart_key: str = restart_key("app")  # queue:restart's value for this app (queue:work passes the app's)
    stopped_because: str = "signal"

    @classmethod
    def from_env(cls) -> Lifecycle:
        max_jobs = env_number("QUEUE_WORKER_MAX_JOBS")
        return cls(
            max_jobs=int(max_jobs) if max_jobs is not None else None,
            max_time=env_number("QUEUE_WORKER_MAX_TIME"),
            memory_mb=env_number("QUEUE_WORKER_MEMORY"),
            stop_when_empty=os.environ.get("QUEUE_WORKER_STOP_WHEN_EMPTY") == "1",
            queues=[q for q in os.environ.get("QUEUE_WORKER_QUEUES", "").split(",") if q],
            output=os.environ.get("QUEUE_WORKER_OUTPUT", "text"),
            restart_key=os.environ.get("QUEUE_WORKER_RESTART_KEY") or restart_key("app"),
        )

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.stopped_because, 0)


def resident_mb() -> float:
    """This process's resident memory now (Linux's /proc), else its peak."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class QueueReceiver(Receiver):
    #: The lifecycle of the receiver made last in this process (``queue_manager.work`` reads its exit code).
    last: Lifecycle | None = None

    def __init__(self, broker: AsyncBroker, *args: Any, **kwargs: Any) -> None:
        lifecycle = Lifecycle.from_env()
        if lifecycle.max_jobs is not None:
            kwargs["max_tasks_to_execute"] = lifecycle.max_jobs
        super().__init__(broker, *args, **kwargs)
        self.lifecycle = QueueReceiver.last = lifecycle
        self.running = 0
        self._tell_broker_its_slots(kwargs.get("max_async_tasks"), kwargs.get("max_prefetch", 0))
        defaults = worker_defaults()
        if defaults:
            broker.add_middlewares(WorkerDefaults(defaults))
        default_queue = getattr(getattr(broker, "spec", None), "queue", "default")
        broker.add_middlewares(JobLines(lifecycle.output, default_queue=default_queue), Throughput(default_queue))
        recorder = insight_recorder(broker, lifecycle.queues, default_queue)
        if recorder is not None:
            broker.add_middlewares(recorder)
        if lifecycle.output != "quiet" and not logging.getLogger("taskiq").isEnabledFor(logging.INFO):
            # the job line says a failed attempt will be retried; the INFO record would say it twice (-v shows it)
            logging.getLogger("queue_manager.retry").setLevel(logging.WARNING)

    def _tell_broker_its_slots(self, max_async_tasks: int | None, max_prefetch: int) -> None:
        if not isinstance(self.broker, HoldsJobs):
            return
        slots = max_async_tasks + max(0, max_prefetch) if max_async_tasks is not None else None
        self.broker.hold_at_most(slots, self.lifecycle.max_jobs)

    async def callback(self, message: Any, raise_err: bool = False) -> None:
        self.running += 1
        try:
            await super().callback(message, raise_err)
        finally:
            self.running -= 1

    async def listen(self, finish_event: asyncio.Event) -> None:
        if self.run_startup:
            if not await self._start_broker(finish_event):
                return  # stopped before the broker ever answered
            self.run_startup = False
        watch = asyncio.ensure_future(self._watch(finish_event))
        try:
            await super().listen(finish_event)
        except* BrokerAuthenticationError as refused:  # the consume loop's: the credentials changed meanwhile
            self._refused(refused.exceptions[0])
        finally:
            watch.cancel()
        if not finish_event.is_set() and self.lifecycle.max_jobs is not None:
            self._stop("max-jobs", finish_event)
        await self._announce_stopping()

    async def _announce_stopping(self) -> None:
        """``WorkerStopping`` through the app's events (the retry middleware holds them), when anyone listens."""
        retries = next((m for m in self.broker.middlewares if isinstance(m, RetryMiddleware)), None)
        if retries is not None and retries.events.listening(WorkerStopping):
            reason = self.lifecycle.stopped_because
            await retries.events.fire(WorkerStopping(retries.connection, reason, self.lifecycle.exit_code))

    async def _start_broker(self, finish_event: asyncio.Event) -> bool:
        """Start the broker, trying again while its server is unreachable (a deploy, a restart), as TaskIQ's
        process manager does by starting the worker again; False if told to stop meanwhile."""
        pause = STARTUP_RETRY[0]
        while True:
            try:
                await self.broker.startup()
                return True
            except BrokerAuthenticationError as error:
                self._refused(error)
                return False
            except BrokerUnreachableError as error:
                logger.error("%s Trying again in %.0f s.", error, pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finish_event.wait(), pause)
                return False
            pause = min(pause * 2, STARTUP_RETRY[1])

    def _refused(self, error: Exception) -> None:
        """Stop, with one line saying why: wrong credentials stay wrong, however often the worker tries again."""
        self.lifecycle.stopped_because = "credentials"
        stop_taskiq_worker(error)  # a child of TaskIQ's process manager (--workers=N): the whole worker stops
        logger.critical("Stopping the worker: %s", error)

    def _stop(self, reason: str, finish_event: asyncio.Event) -> None:
        if finish_event.is_set():
            return
        self.lifecycle.stopped_because = reason
        logger.info("Stopping the worker (%s): finishing running jobs, taking no new ones", reason)
        finish_event.set()

    async def _watch(self, finish_event: asyncio.Event) -> None:
        lifecycle, started = self.lifecycle, time.monotonic()
        control = control_of(self.broker)
        restart_at = await self._read_restart(control, None)
        empty_checks = 0
        while not finish_event.is_set():
            await asyncio.sleep(WATCH_EVERY)
            if lifecycle.max_time is not None and time.monotonic() - started >= lifecycle.max_time:
                self._stop("max-time", finish_event)
            elif lifecycle.memory_mb is not None and resident_mb() > lifecycle.memory_mb:
                self._stop("memory", finish_event)
            elif control is not None and await self._read_restart(control, restart_at) != restart_at:
                self._stop("restart", finish_event)
            elif lifecycle.stop_when_empty:
                empty_checks = empty_checks + 1 if await self._idle() else 0
                if empty_checks >= 2:  # twice in a row: nothing was in flight between two looks
                    self._stop("stop-when-empty", finish_event)

    async def _read_restart(self, control: ControlState | None, previous: str | None) -> str | None:
        """The restart signal's value; ``previous`` when it cannot be read (the broker is away)."""
        if control is None:
            return previous
        try:
            return await control.get(self.lifecycle.restart_key)
        except Exception as error:
            logger.debug("Could not read the restart signal: %s", error)
            return previous

    async def _idle(self) -> bool:
        if self.running or (isinstance(self.broker, HoldsJobs) and self.broker.jobs_held()):
            return False
        if not isinstance(self.broker, CountsQueues):
            return False
        try:
            sizes = [await self.broker.size(queue) for queue in self.lifecycle.queues]
        except Exception as error:
            logger.debug("Could not count the queues: %s", error)
            return False
        return not any(sizes)
