"""``manager.failed``: Laravel's failed jobs. A job that fails for good is recorded; it can be listed,
retried on its own connection and queue, forgotten or flushed.

A job "fails for good" when it raised and has no retries left (``retries=0`` included), or when no worker
can run it at all (undecodable, unknown task, unusable labels: ``drivers.common.poison``). Recording happens
in the process that ran (or refused) the job: a worker, or the dispatching process on the memory driver.
The store is built from the ``failed`` settings when first used; ``check()`` builds it at boot so a bad
setting or a missing library fails there. What it needs of the manager (its settings, its connections, for
a retry) it is handed (``Connections``), so the failed jobs sit below the manager.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from taskiq import AsyncTaskiqTask, TaskiqMessage
from taskiq.utils import maybe_awaitable

from drivers import DRIVERS, QueueConfigurationError
from drivers.base import labels
from drivers.common.poison import PoisonMessage
from queue_manager.errors import RetryError
from queue_manager.failed.record import FailedJob
from queue_manager.failed.store import FailedJobStore, hours_ago
from queue_manager.failed.stores import make_store
from queue_manager.settings.failed import FailedSettings
from queue_manager.tasks import failure_hook

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.settings import QueueSettings

logger = logging.getLogger("queue_manager.failed")

UNKNOWN_TASK_FIX = (
    "Add its module to `queue:work --tasks=...` (or to the module list of `taskiq worker`), then retry the job."
)


class Connections(Protocol):
    """What the failed jobs need of the manager (which hands itself over)."""

    @property
    def settings(self) -> QueueSettings: ...

    def connection(self, name: str | None = None) -> Connection: ...

    def get_default_driver(self) -> str: ...

    def check_connection_name(self, name: str) -> None: ...


# Labels that described one attempt: a retried job starts afresh.
ATTEMPT_LABELS = (labels.ATTEMPT, labels.ETA, labels.DELAY)


class PoisonError(Exception):
    """Why a worker could not run a job at all (the ``exception`` of its failed-job record)."""


@dataclass(frozen=True)
class Retried:
    """One failed job sent again: its id in the store, and the new handle (same task id as before)."""

    id: str
    connection: str
    queue: str
    handle: AsyncTaskiqTask[Any]


class FailedJobs:
    def __init__(self, manager: Connections, settings: FailedSettings, base_path: Path | None = None) -> None:
        self.manager = manager
        self.settings = settings
        self.base_path = base_path or Path.cwd()
        self._store: FailedJobStore | None = None

    # -- the store -------------------------------------------------------------------------------
    @property
    def store(self) -> FailedJobStore:
        if self._store is None:
            self._store = make_store(self.settings, self.base_path, self._redis_url)
        return self._store

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

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()

    # -- Laravel's FailedJobProvider --------------------------------------------------------------
    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        return await self.store.all(connection, queue, limit)

    async def find(self, id: str) -> FailedJob | None:
        return await self.store.find(id)

    async def forget(self, id: str) -> bool:
        return await self.store.forget(id)

    async def flush(self, hours: float | None = None) -> int:
        """Forget every failed job, or those that failed more than ``hours`` ago."""
        return await self.store.flush(hours)

    async def prune(self, hours: float) -> int:
        """Laravel's ``queue:prune-failed --hours=N``: forget failed jobs older than ``hours``."""
        return await self.store.prune(hours_ago(hours))

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        return await self.store.count(connection, queue)

    # -- recording ---------------------------------------------------------------------------------
    async def record(
        self, connection: str, message: TaskiqMessage, exception: BaseException, attempts: int
    ) -> FailedJob:
        """A job that raised with no retries left: store it, then run its task's ``on_failure`` hook once."""
        queue = str(message.labels.get(labels.QUEUE) or self.manager.settings.connections[connection].queue)
        job = FailedJob.from_message(message, exception, connection=connection, queue=queue, attempts=attempts)
        await self.store.log(job)
        logger.error(
            "Job %s (%s) failed after %d attempt%s: %s: %s. Recorded as failed job %s (python artisan queue:retry %s).",
            job.task_id,
            job.task_name,
            attempts,
            "" if attempts == 1 else "s",
            type(exception).__name__,
            job.message.splitlines()[0] if job.message else "",
            job.id,
            job.id,
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
            queue = str(poison.message.labels.get(labels.QUEUE) or default_queue)
            attempts = _attempts(poison.message)
            job = FailedJob.from_message(poison.message, error, connection=connection, queue=queue, attempts=attempts)
        await self.store.log(job)
        logger.error(
            "Job %s (%s) cannot run: %s. Recorded as failed job %s: %s",
            job.task_id or "?",
            job.task_name,
            poison.reason,
            job.id,
            poison.error + fix if poison.message is not None else poison.excerpt(),
        )
        advice = UNKNOWN_TASK_FIX + " " if fix else ""
        return f"{advice}It is recorded as failed job {job.id} (python artisan queue:failed)."

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

        ``ids``: ids, or ``"all"``; ``queue`` keeps only the failed jobs of that queue. An unknown id is a
        ``QueueConfigurationError`` before anything is sent.
        """
        if isinstance(ids, str) and ids == "all":
            jobs = await self.store.all(queue=queue)
        else:
            wanted = [ids] if isinstance(ids, str) else list(ids)
            found = {given: await self.store.find(given) for given in wanted}  # a full id or a short prefix
            missing = [given for given, job in found.items() if job is None]
            if missing:
                raise QueueConfigurationError(
                    f"No failed job with id {', '.join(missing)}. `python artisan queue:failed` lists them."
                )
            jobs = [job for job in found.values() if job is not None and (queue is None or job.queue == queue)]
        retried: list[Retried] = []
        for job in reversed(jobs):  # oldest first, as they failed
            try:
                handle = await self._send_again(job)
            except Exception as error:
                cause = error.__cause__ or error
                raise RetryError(
                    f"Failed job {job.id} ({job.task_name}) could not be sent back to connection "
                    f"'{job.connection}': {type(cause).__name__}: {cause}. It stays in the failed jobs"
                    + (f"; the {len(retried)} before it were retried." if retried else ".")
                ) from error
            await self.store.forget(job.id)
            retried.append(Retried(job.id, job.connection, job.queue, handle))
        return retried

    async def _send_again(self, job: FailedJob) -> AsyncTaskiqTask[Any]:
        connection = self.manager.connection(job.connection)
        job_labels = {k: v for k, v in job.labels.items() if k not in ATTEMPT_LABELS}
        job_labels[labels.QUEUE] = job.queue
        raw = job.raw_payload()
        if raw is not None:  # it could not be decoded: send the same bytes again
            return await connection.send_raw(job.task_id, job.task_name, raw, job_labels)
        return await connection.send_named(job.task_name, job.args, job.kwargs, job_labels, job.task_id or None)


def _attempts(message: TaskiqMessage) -> int:
    try:
        return int(message.labels.get(labels.ATTEMPT, 0)) + 1
    except (TypeError, ValueError):
        return 1
