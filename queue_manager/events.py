"""The queue's events, Laravel's names, fired through the app's event dispatcher (fastapi-startkit's ``events``
binding: ``Event.listen(JobFailed, notify_team)``, or an ``EventServiceProvider``'s ``listen`` map).

``JobQueued`` when a dispatch was sent; in the worker ``JobProcessing`` before a job's code runs, then
``JobProcessed`` (it succeeded), ``JobReleased`` (back on its queue), ``JobExceptionOccurred`` (an attempt raised)
or ``JobFailed`` (failed for good); ``WorkerStopping`` when a ``queue:work`` worker stops. Each carries the
connection, queue, job id and task name, and where it applies the attempt, the exception or the delay.
``queue:monitor`` fires ``QueueBusy`` (a queue reached ``--max``) and ``LongWaitDetected`` (its wait crossed its
``QUEUE_WAITS`` threshold). An app without the ``events`` binding pays nothing: no event is made unless someone
listens to its class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("queue_manager.events")


@dataclass(frozen=True)
class JobEvent:
    connection: str
    queue: str
    job_id: str
    task_name: str


@dataclass(frozen=True)
class JobQueued(JobEvent):
    delay: float | None = None  # seconds until it is due, when it was dispatched with one


@dataclass(frozen=True)
class JobProcessing(JobEvent):
    attempt: int = 1


@dataclass(frozen=True)
class JobProcessed(JobEvent):
    attempt: int = 1


@dataclass(frozen=True)
class JobReleased(JobEvent):
    attempt: int = 1
    delay: float = 0.0


@dataclass(frozen=True)
class JobExceptionOccurred(JobEvent):
    exception: BaseException | None = None
    attempt: int = 1
    will_retry: bool = False


@dataclass(frozen=True)
class JobFailed(JobEvent):
    exception: BaseException | None = None
    attempt: int = 1


@dataclass(frozen=True)
class WorkerStopping:
    connection: str
    reason: str  # signal, max-jobs, max-time, memory, stop-when-empty, restart, credentials
    exit_code: int


@dataclass(frozen=True)
class QueueBusy:
    """``queue:monitor``: a queue holds more jobs than its ``--max``."""

    connection: str
    queue: str
    size: int
    limit: int


@dataclass(frozen=True)
class LongWaitDetected:
    """``queue:monitor``: a queue's wait went over its ``QUEUE_WAITS`` threshold (once per crossing; Horizon's)."""

    connection: str
    queue: str
    seconds: float  # the estimated wait (see "Alerts" in the README)
    threshold: float


class Events:
    """The app's dispatcher as the queue uses it (set by the provider at boot; None: no events)."""

    def __init__(self) -> None:
        self.dispatcher: Any = None

    def listening(self, kind: type[Any]) -> bool:
        """Does anyone listen to ``kind``? (Checked before an event is made.)"""
        return self.dispatcher is not None and bool(self.dispatcher.has_listeners(kind))

    async def fire(self, event: Any) -> None:
        """Tell the listeners; one that raises is logged, never the job's failure."""
        try:
            await self.dispatcher.dispatch(event)
        except Exception:
            logger.exception("A listener of %s raised", type(event).__name__)
