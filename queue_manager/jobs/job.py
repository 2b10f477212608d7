"""Job classes, Laravel's way: the state an instance holds is its payload, ``handle()`` is the work.

Each subclass is a TaskIQ task named after it (``app.jobs:SendWelcomeEmail``), so a worker that imported its
module runs it, the failed-jobs store, ``queue:failed`` and ``queue:retry`` treat it like any job, and its class
attributes are its task's labels (``queue``, ``tries``, ``backoff``, ``timeout``, ...). ``SendWelcomeEmail.dispatch(
42)`` makes the instance and returns the same ``PendingDispatch`` as a function's dispatch (``.on_queue()``,
``.on_connection()``, ``.delay()``); awaiting it sends it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from taskiq.utils import maybe_awaitable

from drivers.base import labels as wire
from drivers.base.errors import QueueConfigurationError
from queue_manager.bus import Batch, Bus
from queue_manager.bus.wire import BATCH
from queue_manager.dispatch import PendingDispatch
from queue_manager.errors import JobPayloadError
from queue_manager.jobs.encryption import opened, sealed
from queue_manager.jobs.payload import payload_of, restore
from queue_manager.running.interactions import _CURRENT, Interactions
from queue_manager.running.pipeline import check_middleware, through
from queue_manager.tasks import QueueTask, register_failure_hook, registry, task_labels

logger = logging.getLogger("queue_manager.jobs")

#: task name -> job class: what the fake and the failed jobs rebuild a job from
JOB_CLASSES: dict[str, type[Job]] = {}


def job_from(task_name: str, state: dict[str, Any]) -> Job | None:
    """The job class instance a message of ``task_name`` carries (None for a function's job)."""
    cls = JOB_CLASSES.get(task_name)
    if cls is None:
        return None
    return restore(cls, opened(state, cls.__qualname__) if cls.encrypted else state)  # type: ignore[no-any-return]


class Job:
    """Subclass it, set what ``__init__`` receives on ``self``, and write ``handle()`` (async or sync)."""

    queue: ClassVar[str | None] = None  #: its default queue (else its connection's)
    connection: ClassVar[str | None] = None  #: its default connection (else the default one)
    tries: ClassVar[int | None] = None  #: total attempts (Laravel's $tries); None: one, or queue:work --tries
    max_exceptions: ClassVar[int | None] = None  #: fail for good after this many attempts raised
    backoff: ClassVar[float | Sequence[float] | None] = None  #: seconds before each retry, or one per retry
    timeout: ClassVar[float | None] = None  #: seconds an async handle() may run
    fail_on_timeout: ClassVar[bool] = False  #: a timed-out attempt fails the job for good
    unique_for: ClassVar[float | None] = None  #: seconds a unique job's lock lasts at most (ShouldBeUnique)
    unique_until_processing: ClassVar[bool] = False  #: the lock goes when it starts (ShouldBeUniqueUntilProcessing)
    encrypted: ClassVar[bool] = False  #: its payload is encrypted with APP_KEY (ShouldBeEncrypted)

    #: the TaskIQ task that runs this class's jobs (made when the class is defined)
    task: ClassVar[QueueTask[..., Any]]
    _interactions: Interactions | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.handle is not Job.handle:  # an abstract base of the app's own jobs declares no task
            cls.task = _declare(cls)

    # -- sending --------------------------------------------------------------------------------------------
    @classmethod
    def dispatch(cls, *args: Any, **kwargs: Any) -> PendingJob:
        """Laravel's ``SendWelcomeEmail::dispatch(42)``: the job made with these arguments, ready to send."""
        return cls(*args, **kwargs).pending()

    def pending(self) -> PendingJob:
        """This job, ready to send (``dispatch(job)`` and ``Queue.push(job)`` take this way)."""
        return PendingJob(self)

    # -- what a job class writes ----------------------------------------------------------------------------
    def handle(self) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} needs a handle() method: the job's work.")

    def failed(self, error: BaseException) -> Any:
        """Called once when the job has failed for good (its retries spent, or ``fail()``): Laravel's failed()."""

    def middleware(self) -> list[Any]:
        """Job middleware this job runs through (``queue_manager.middleware``), after the connection's."""
        return []

    def retry_until(self) -> datetime | None:
        """A deadline after which the job is not tried again (instead of, or with, ``tries``)."""
        return None

    def unique_id(self) -> str:
        """What makes two jobs of this class the same job, for ``unique_for`` (default: one per class)."""
        return ""

    def tags(self) -> list[str]:
        return []

    # -- inside a running job (Laravel's InteractsWithQueue) ------------------------------------------------
    @property
    def job_id(self) -> str | None:
        return self._interactions.job_id if self._interactions is not None else None

    def attempts(self) -> int:
        """How many times this job's code has run, this run included (1 outside a worker)."""
        return self._interactions.attempts() if self._interactions is not None else 1

    def release(self, delay: float = 0) -> None:
        """Back on its queue once handle() has returned, to run again in ``delay`` seconds (an attempt)."""
        self._running().release(delay)

    def fail(self, error: BaseException | str | None = None) -> None:
        """Failed for good once handle() has returned: no more retries, ``failed()`` runs."""
        self._running().fail(error)

    def delete(self) -> None:
        """Done once handle() has returned, with no result."""
        self._running().delete()

    async def batch(self) -> Batch | None:
        """The batch this job belongs to, as its store has it now (``.cancelled``, ``.add([...])``), or None."""
        batch_id = self._interactions.message.labels.get(BATCH) if self._interactions is not None else None
        return await Bus.find_batch(str(batch_id)) if batch_id else None

    # -- testing a job's own code (Laravel's withFakeQueueInteractions and its assertions) -------------------
    def with_fake_queue_interactions(self) -> Job:
        """Run ``handle()`` yourself in a test, then assert what it asked for (``assert_released(30)``)."""
        self._interactions = Interactions.standalone(type(self).task.task_name)
        self._interactions.ran = True
        return self

    def assert_released(self, delay: float | None = None) -> None:
        released = self._running().released
        assert released is not None, f"{type(self).__qualname__} was not released."
        assert delay is None or released == delay, (
            f"{type(self).__qualname__} was released for {released:g} s, not {delay:g} s."
        )

    def assert_not_released(self) -> None:
        assert self._running().released is None, f"{type(self).__qualname__} was released."

    def assert_deleted(self) -> None:
        assert self._running().deleted, f"{type(self).__qualname__} was not deleted."

    def assert_not_deleted(self) -> None:
        assert not self._running().deleted, f"{type(self).__qualname__} was deleted."

    def assert_failed(self) -> None:
        assert self._running().failure is not None, f"{type(self).__qualname__} was not failed."

    def assert_failed_with(self, error: type[BaseException] | str) -> None:
        failure = self._running().failure
        assert failure is not None, f"{type(self).__qualname__} was not failed."
        if isinstance(error, str):
            assert str(failure) == error, f"{type(self).__qualname__} failed with {failure!r}, not {error!r}."
        else:
            assert isinstance(failure, error), (
                f"{type(self).__qualname__} failed with {failure!r}, not a {error.__name__}."
            )

    def assert_not_failed(self) -> None:
        failure = self._running().failure
        assert failure is None, f"{type(self).__qualname__} was failed: {failure!r}."

    def _running(self) -> Interactions:
        if self._interactions is None:
            raise QueueConfigurationError(
                f"{type(self).__qualname__}: release(), fail() and delete() are for a job a worker runs. In a test, "
                "call with_fake_queue_interactions() on the job first."
            )
        return self._interactions

    def __repr__(self) -> str:
        state = ", ".join(f"{name}={value!r}" for name, value in vars(self).items() if not name.startswith("_"))
        return f"{type(self).__qualname__}({state})"


class PendingJob(PendingDispatch):
    """A job class's dispatch: its payload checked now (JobPayloadError names what cannot travel), its class's
    connection and queue by default; awaiting it sends it, or returns None for a unique job already queued."""

    def __init__(self, job: Job) -> None:
        cls = type(job)
        state = payload_of(job)
        super().__init__(cls.task, (), sealed(state) if cls.encrypted else state)
        self.job = job
        if cls.connection:
            self.on_connection(cls.connection)
        deadline = job.retry_until()
        if deadline is not None:
            self.labels[wire.RETRY_UNTIL] = deadline.timestamp()

    def unique_id(self) -> str:
        return str(self.job.unique_id())

    def unique_labels(self, lock: str) -> dict[str, Any]:
        until_processing = {wire.UNIQUE_UNTIL_PROCESSING: 1} if type(self.job).unique_until_processing else {}
        return {**super().unique_labels(lock), **until_processing}

    def __await__(self) -> Any:  # AsyncTaskiqTask, or None for a unique job already queued or running
        return super().__await__()


async def _perform(cls: type[Job], state: dict[str, Any], is_async: bool = True) -> Any:
    """Run one job of ``cls`` in the worker: rebuild it from its payload, then its middleware and handle()."""
    interactions = _CURRENT.get()
    if interactions is None:  # called outside the retry middleware (a broker made elsewhere): run it plainly
        interactions = Interactions.standalone(cls.task.task_name)
    try:
        job = restore(cls, opened(state, cls.__qualname__) if cls.encrypted else state)
    except JobPayloadError as error:  # it would not fit the next time either: fail it for good
        interactions.fail(error)
        raise
    job._interactions = interactions
    own = (
        []
        if cls.middleware is Job.middleware
        else check_middleware(job.middleware(), f"{cls.__qualname__}.middleware()")
    )
    if is_async and not own and not interactions.middleware:  # no middleware: straight to handle(), as piped() does
        interactions.ran = True
        return interactions.outcome(await job.handle())

    async def code(passed: Job) -> Any:
        if is_async:
            return await passed.handle()
        return await asyncio.to_thread(passed.handle)  # a sync handle() runs in a thread, as a sync task does

    return await through([*interactions.middleware, *own], job, interactions, code)


def _declare(cls: type[Job]) -> QueueTask[..., Any]:
    """The task of a job class: its name, its class attributes as labels, its failed() as the failure hook."""
    where = cls.__qualname__
    tries = cls.tries
    if tries is not None and (isinstance(tries, bool) or not isinstance(tries, int) or tries < 1):
        raise QueueConfigurationError(f"{where}.tries must be a whole number >= 1 (total attempts), got {tries!r}.")
    declared = task_labels(
        cls.queue, None if tries is None else tries - 1, cls.backoff, cls.timeout, cls.unique_for, where
    )
    if cls.max_exceptions is not None:
        if isinstance(cls.max_exceptions, bool) or not isinstance(cls.max_exceptions, int) or cls.max_exceptions < 1:
            raise QueueConfigurationError(
                f"{where}.max_exceptions must be a whole number >= 1, got {cls.max_exceptions!r}."
            )
        declared[wire.MAX_EXCEPTIONS] = cls.max_exceptions
    if cls.fail_on_timeout:
        declared[wire.FAIL_ON_TIMEOUT] = 1
    if cls.timeout is not None and not inspect.iscoroutinefunction(cls.handle):
        raise QueueConfigurationError(
            f"{where}.timeout: only an `async def handle()` can be stopped (a sync one runs in a thread, which would "
            "go on after the timeout). Make handle() async, or drop timeout."
        )
    name = f"{cls.__module__}:{cls.__qualname__}"
    JOB_CLASSES[name] = cls

    is_async = inspect.iscoroutinefunction(cls.handle)

    async def run(**state: Any) -> Any:
        return await _perform(cls, state, is_async)

    run.__name__ = f"{cls.__name__}__job"
    run.__qualname__ = f"{cls.__qualname__}.__job__"
    run.__module__ = cls.__module__
    made: QueueTask[..., Any] = registry.task(task_name=name, **declared)(run)  # type: ignore[assignment]

    async def on_failure(record: Any, error: BaseException) -> None:
        state = dict(record.kwargs or {})
        try:
            job = restore(cls, opened(state, cls.__qualname__) if cls.encrypted else state)
        except JobPayloadError as unreadable:  # no key, another key, a payload the class no longer takes
            if cls.failed is not Job.failed:  # it was recorded as failed with that reason; one line, no traceback
                logger.warning("%s.failed() was not called for job %s: %s", where, record.task_id, unreadable)
            return
        await maybe_awaitable(job.failed(error))

    register_failure_hook(name, on_failure)
    return made
