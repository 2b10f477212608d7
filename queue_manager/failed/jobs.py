"""``manager.failed``: Laravel's failed jobs. A job that fails for good is recorded; it can be listed,
retried on its own connection and queue, forgotten or flushed.

A job "fails for good" when it raised and has no retries left (``retries=0`` included), or when no worker
can run it at all (undecodable, unknown task, unusable labels: ``drivers.common.poison``). Recording happens
in the process that ran (or refused) the job: a worker, or the dispatching process on the memory driver; it
never waits long on the store, and a store that is away gets its records later (``recording``). The store is
built from the ``failed`` settings when first used; ``check()`` builds it at boot so a bad setting or a
missing library fails there. Every call a person makes (list, find, retry, forget, flush) is bounded by
``STORE_TIMEOUT`` and a store that does not answer raises ``FailedStoreUnreachableError`` naming it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from taskiq import TaskiqMessage
from taskiq.utils import maybe_awaitable

from drivers import DRIVERS, QueueConfigurationError
from drivers.base import labels
from drivers.common.poison import PoisonMessage
from queue_manager.failed.connections import Connections
from queue_manager.failed.errors import FailedStoreUnreachableError
from queue_manager.failed.memory import MemoryStore
from queue_manager.failed.record import FailedJob
from queue_manager.failed.recording import Recorder
from queue_manager.failed.retrying import Retried, Retrying
from queue_manager.failed.store import FailedJobStore, hours_ago
from queue_manager.failed.stores import make_store
from queue_manager.failed.summary import FailedJobSummary
from queue_manager.settings.failed import FailedSettings
from queue_manager.tasks import failure_hook
from queue_manager.text import error_line

logger = logging.getLogger("queue_manager.failed")

T = TypeVar("T")
STORE_TIMEOUT = 30.0  # seconds one call of a command (or the dashboard) may wait for the store
UNKNOWN_TASK_FIX = (
    "Add its module to `queue:work --tasks=...` (or to the module list of `taskiq worker`), then retry the job."
)


class PoisonError(Exception):
    """Why a worker could not run a job at all (the ``exception`` of its failed-job record)."""


class FailedJobs:
    def __init__(self, manager: Connections, settings: FailedSettings, base_path: Path | None = None) -> None:
        self.manager = manager
        self.settings = settings
        self.base_path = base_path or Path.cwd()
        self._store: FailedJobStore | None = None
        self.recorder = Recorder(lambda: self.store, lambda: self.base_path)

    # -- the store -------------------------------------------------------------------------------
    @property
    def store(self) -> FailedJobStore:
        if self._store is None:
            self._store = make_store(self.settings, self.base_path, self._redis_url)
        return self._store

    @contextmanager
    def isolated(self) -> Iterator[MemoryStore]:
        """Keep failed jobs in this process only while inside (the pytest plugin does, for each test that uses
        the app), then go back to the configured store. Yields the store, to look at what failed."""
        kept = (self._store, self.recorder)
        self._store = store = MemoryStore()
        self.recorder = Recorder(lambda: store, lambda: self.base_path)
        try:
            yield store
        finally:
            self._store, self.recorder = kept

    def check(self, base_path: Path | None = None) -> None:
        """Build the store now (at boot), so a bad setting or a missing library fails here."""
        if base_path is not None and self._store is None:
            self.base_path = base_path
        _ = self.store

    def _redis_url(self, connection: str | None) -> str:
        """QUEUE_FAILED__DRIVER=redis keeps them in the Redis of QUEUE_FAILED__CONNECTION (default: the default)."""
        name = connection or self.manager.get_default_driver()
        self.manager.check_connection_name(name)
        settings = self.manager.settings.connections[name]
        known = DRIVERS.get(settings.driver)
        if known is None or known.redis_store_url is None:
            lending = ", ".join(driver for driver, info in DRIVERS.items() if info.redis_store_url is not None)
            raise QueueConfigurationError(
                f"QUEUE_FAILED__DRIVER=redis keeps failed jobs in the Redis of a queue connection, but connection "
                f"'{name}' uses the {settings.driver} driver. Set QUEUE_FAILED__CONNECTION to a connection on "
                f"{lending}, or use QUEUE_FAILED__DRIVER=database."
            )
        return known.redis_store_url(settings.url_value or "", settings.options)

    async def worker_started(self) -> None:
        """Write to the store, in the background, what earlier processes left in the spool."""
        self.recorder.resume()

    async def worker_stopped(self) -> None:
        """Stop writing the spool (what is left waits for the next worker)."""
        await self.recorder.close()

    async def close(self) -> None:
        await self.recorder.close()
        if self._store is not None:
            await self._store.close()

    async def _ask(self, work: Awaitable[T]) -> T:
        """One store call, within ``STORE_TIMEOUT``; a store that does not answer is one clear error."""
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                return await work
        except Exception as error:
            store = self.store
            if not (isinstance(error, TimeoutError) or store.unreachable(error)):
                raise
            reason = store.describe(error) if str(error) else f"no answer within {STORE_TIMEOUT:g} s"
            raise FailedStoreUnreachableError(
                f"Cannot reach the failed-jobs store, {store.where}: {reason}. Check the QUEUE_FAILED__* settings "
                "and that its server is running."
            ) from error

    # -- Laravel's FailedJobProvider --------------------------------------------------------------
    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        """Whole records (args, payloads, tracebacks): a listing wants ``summaries``."""
        return await self._ask(self.store.all(connection, queue, limit))

    async def summaries(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJobSummary]:
        """What a listing shows of each failed job (newest first), without reading the whole records."""
        return await self._ask(self.store.summaries(connection, queue, limit))

    async def find(self, id: str) -> FailedJob | None:
        return await self._ask(self.store.find(id))

    async def forget(self, id: str) -> bool:
        return await self._ask(self.store.forget(id))

    async def flush(self, hours: float | None = None) -> int:
        """Forget every failed job, or those that failed more than ``hours`` ago."""
        return await self._ask(self.store.flush(hours))

    async def prune(self, hours: float) -> int:
        """Laravel's ``queue:prune-failed --hours=N``: forget failed jobs older than ``hours``."""
        return await self._ask(self.store.prune(hours_ago(hours)))

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        return await self._ask(self.store.count(connection, queue))

    # -- recording ---------------------------------------------------------------------------------
    async def record(
        self, connection: str, message: TaskiqMessage, exception: BaseException, attempts: int
    ) -> FailedJob:
        """A job that raised with no retries left: store it, then run its task's ``on_failure`` hook once."""
        queue = self._queue_of(connection, message)
        job = FailedJob.from_message(message, exception, connection=connection, queue=queue, attempts=attempts)
        kept = await self.recorder.write(job)
        logger.error(
            "Job %s (%s) failed after %d attempt%s: %s. %s",
            job.task_id,
            job.task_name,
            attempts,
            "" if attempts == 1 else "s",
            error_line(exception, message.labels).rstrip("."),  # "...them).. Recorded" otherwise
            self._recorded(job, kept),
            exc_info=exception,  # the traceback, once per job that failed for good
        )
        await self._run_hook(job, exception)
        return job

    async def record_poison(self, connection: str, poison: PoisonMessage) -> str:
        """A message no worker can run: kept whole (raw payload if it cannot be decoded). Returns what its caller
        is told (``drivers.common.poison``): how to fix it, and where it is kept."""
        default_queue = self.manager.settings.connections[connection].queue
        fix = f". {UNKNOWN_TASK_FIX}" if poison.reason == "unknown task" else ""
        error = PoisonError(f"{poison.reason}: {poison.error}{fix}")
        if poison.message is None:
            job = FailedJob.undecodable(poison.payload, error, connection=connection, queue=default_queue)
        else:
            queue = self._queue_of(connection, poison.message)
            attempts = _attempts(poison.message)
            job = FailedJob.from_message(poison.message, error, connection=connection, queue=queue, attempts=attempts)
        kept = await self.recorder.write(job)
        logger.error(
            "Job %s (%s) cannot run: %s. %s: %s",
            job.task_id or "?",
            job.task_name,
            poison.reason.rstrip("."),
            self._recorded(job, kept).rstrip("."),
            poison.error + fix if poison.message is not None else poison.excerpt(),
        )
        advice = UNKNOWN_TASK_FIX + " " if fix else ""
        return f"{advice}It is recorded as failed job {job.id} (python artisan queue:failed)."

    def _recorded(self, job: FailedJob, kept: str | None) -> str:
        """Where the record went, for the log line."""
        if self.settings.driver == "null":
            return "Not kept: QUEUE_FAILED__DRIVER=null keeps no failed jobs."
        if kept is None:
            return f"Recorded as failed job {job.id} (python artisan queue:retry {job.id})."
        return f"Recorded as failed job {job.id}, {kept}."

    def _queue_of(self, connection: str, message: TaskiqMessage) -> str:
        """The queue a job is recorded under, so a retry sends it back there: its queue label if the connection
        can use that name (a foreign producer may set any), else the connection's queue."""
        default = self.manager.settings.connections[connection].queue
        label = message.labels.get(labels.QUEUE)
        if not label:
            return default
        try:
            return self.manager.connection(connection).check_queue(str(label))
        except QueueConfigurationError as refused:
            logger.warning("Job %s is recorded under queue '%s': %s", message.task_id, default, refused)
            return default

    async def _run_hook(self, job: FailedJob, exception: BaseException) -> None:
        hook = failure_hook(job.task_name)
        if hook is None:
            return
        try:
            await maybe_awaitable(hook(job, exception))
        except Exception:
            logger.exception("The on_failure hook of %s raised", job.task_name)

    # -- retrying ----------------------------------------------------------------------------------
    async def retry(self, ids: Iterable[str] | str, queue: str | None = None) -> list[Retried]:
        """Send failed jobs back to their own connection and queue (same args and task id), and forget them.

        ``ids``: ids (or unique prefixes), or ``"all"``; ``queue`` keeps only the failed jobs of that queue. An
        unknown id is a ``QueueConfigurationError`` before anything is sent. Each job is claimed first: one
        that another retry is sending meanwhile is left to it (and not in the list returned). Jobs that could
        not be sent stay recorded, and ``RetryIncompleteError`` (a ``RetryError``) names each with why, after
        the others were sent.
        """
        return await Retrying(self.manager, self.store, self._ask).run(ids, queue)


def _attempts(message: TaskiqMessage) -> int:
    try:
        return int(message.labels.get(labels.ATTEMPT, 0)) + 1
    except (TypeError, ValueError):
        return 1
