"""Sending failed jobs back (``queue:retry``, the dashboard's Retry). Each record is claimed before its job is
sent, so of several retries at once (two ``queue:retry all``, Retry pressed in several tabs) one sends it; it
is forgotten once sent. A send that fails gives the claim back, so the record stays for the next retry; a
retry that dies mid-way leaves a claim that lapses after ``CLAIM_LEASE``.

A job that cannot be sent (its connection was removed from the settings, its queue is one the connection's
driver refuses, its broker is down) is reported with why, and the others are sent all the same:
``RetryIncompleteError`` at the end names what stayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from taskiq import AsyncTaskiqTask
from taskiq.exceptions import SendTaskError

from drivers import BrokerUnreachableError, QueueConfigurationError
from drivers.base import labels
from drivers.base.reach import scrub
from queue_manager.failed.connections import Connections
from queue_manager.failed.errors import NotRetried, RetryIncompleteError
from queue_manager.failed.record import FailedJob
from queue_manager.failed.store import FailedJobStore

logger = logging.getLogger("queue_manager.failed")

T = TypeVar("T")
Ask = Callable[[Awaitable[T]], Awaitable[T]]  # one store call, bounded, a store that is away made one clear error

CLAIM_LEASE = 120.0  # seconds a claim holds when its retry dies before it ends; then the next retry may send it
SEND_TIMEOUT = 60.0  # seconds one send may take (well within the lease)
# Labels that described one attempt: a retried job starts afresh.
ATTEMPT_LABELS = (labels.ATTEMPT, labels.ETA, labels.DELAY)


@dataclass(frozen=True)
class Retried:
    """One failed job sent again: its id in the store, and the new handle (same task id as before)."""

    id: str
    connection: str
    queue: str
    handle: AsyncTaskiqTask[Any]


class Retrying:
    def __init__(self, manager: Connections, store: FailedJobStore, ask: Ask[Any]) -> None:
        self.manager = manager
        self.store = store
        self.ask = ask
        self.down: dict[str, str] = {}  # connection -> why its broker did not answer (not tried again)

    async def ids(self, ids: Iterable[str] | str, queue: str | None) -> list[str]:
        """The full ids to retry, oldest first; an unknown id is an error before anything is sent."""
        if isinstance(ids, str) and ids == "all":
            return [job.id for job in reversed(await self.ask(self.store.summaries(queue=queue)))]
        wanted = [ids] if isinstance(ids, str) else list(ids)
        found = {given: await self.ask(self.store.resolve(given)) for given in wanted}
        missing = [given for given, id in found.items() if id is None]
        if missing:
            raise QueueConfigurationError(
                f"No failed job with id {', '.join(missing)}. `python artisan queue:failed` lists them."
            )
        return list(dict.fromkeys(id for id in found.values() if id is not None))

    async def run(self, ids: Iterable[str] | str, queue: str | None = None) -> list[Retried]:
        retried: list[Retried] = []
        not_retried: list[NotRetried] = []
        for id in await self.ids(ids, queue):
            token = uuid.uuid4().hex
            job = await self.ask(self.store.claim(id, token, CLAIM_LEASE))
            if job is None:  # another retry has it, or has sent it already
                continue
            if queue is not None and job.queue != queue:
                await self._release(job, token)
                continue
            handle, reason = await self._send(job)
            if handle is None:
                await self._release(job, token)
                not_retried.append(NotRetried(job.id, job.task_name, job.connection, job.queue, reason))
                continue
            await self.ask(self.store.remove(job.id))
            retried.append(Retried(job.id, job.connection, job.queue, handle))
        if not_retried:
            raise RetryIncompleteError(retried, not_retried)
        return retried

    async def _send(self, job: FailedJob) -> tuple[AsyncTaskiqTask[Any] | None, str]:
        """The new handle, or None and why the job could not be sent."""
        if job.connection in self.down:
            return None, self.down[job.connection]
        try:
            self.manager.check_connection_name(job.connection)
            connection = self.manager.connection(job.connection)
            connection.check_queue(job.queue)
        except QueueConfigurationError as error:
            return None, str(error)
        job_labels = {k: v for k, v in job.labels.items() if k not in ATTEMPT_LABELS}
        job_labels[labels.QUEUE] = job.queue
        raw = job.raw_payload()
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                if raw is not None:  # it could not be decoded: send the same bytes again
                    return await connection.send_raw(job.task_id, job.task_name, raw, job_labels), ""
                return await connection.send_named(
                    job.task_name, job.args, job.kwargs, job_labels, job.task_id or None
                ), ""
        except Exception as error:
            cause = error.__cause__ if isinstance(error, SendTaskError) and error.__cause__ else error
            text = str(cause) or f"no answer within {SEND_TIMEOUT:g} s"
            reason = scrub(
                f"{type(cause).__name__}: {text}", self.manager.settings.connections[job.connection].url_value
            )
            if isinstance(cause, BrokerUnreachableError | TimeoutError):
                self.down[job.connection] = reason
            return None, reason

    async def _release(self, job: FailedJob, token: str) -> None:
        """Give the claim back; if the store does not answer, it lapses after its lease."""
        with contextlib.suppress(Exception):
            await self.ask(self.store.release(job.id, token))
            return
        logger.warning("Could not give back the claim on failed job %s; it lapses in %g s", job.id, CLAIM_LEASE)
