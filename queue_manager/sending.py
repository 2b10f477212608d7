"""Many jobs through the one send path: TaskIQ's ``kiq`` for each, one driver call for all.

``Connection.bulk`` runs TaskIQ's own ``AsyncKicker.kiq`` for every job, so each
middleware's ``pre_send`` and ``post_send`` run once per job and a failed send is
TaskIQ's ``SendTaskError``, exactly as for a single dispatch. Only the last step
differs: the kickers are handed a ``BatchingBroker`` that stands in for the real
one, holds each ``kick`` until every job of the batch has reached it (or failed
before it), then sends them all with the driver's ``kick_many`` (one Redis
pipeline, concurrent publishes elsewhere).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from taskiq import AsyncBroker, AsyncTaskiqTask, BrokerMessage
from taskiq.kicker import AsyncKicker

from drivers.base.contract import SendsInBatches

BATCH_SIZE = 1000


@dataclass
class _Job:
    reached_kick: bool = False


_JOB: contextvars.ContextVar[_Job] = contextvars.ContextVar("queue_manager_bulk_job")


class BatchingBroker:
    """The broker as one batch of kickers sees it: ``kick`` waits for the batch; the rest is the real broker."""

    def __init__(self, broker: AsyncBroker, jobs: int) -> None:
        self._broker = broker
        self._waiting_for = jobs
        self._held: list[tuple[BrokerMessage, asyncio.Future[None]]] = []
        self._sending: asyncio.Future[None] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    async def kick(self, message: BrokerMessage) -> None:
        _JOB.get().reached_kick = True
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held.append((message, sent))
        self._arrived()
        await sent

    def left_early(self) -> None:
        """A job failed before its kick (in a middleware's pre_send): the batch must not wait for it."""
        self._arrived()

    def _arrived(self) -> None:
        self._waiting_for -= 1
        if self._waiting_for == 0 and self._held:
            held, self._held = self._held, []
            self._sending = asyncio.ensure_future(self._send(held))

    async def _send(self, held: list[tuple[BrokerMessage, asyncio.Future[None]]]) -> None:
        messages = [message for message, _ in held]
        broker = self._broker
        if isinstance(broker, SendsInBatches):
            try:
                await broker.kick_many(messages)
            except asyncio.CancelledError:
                for _, sent in held:
                    sent.cancel()
                raise
            except Exception as error:
                outcomes: list[BaseException | None] = [error] * len(held)
            else:
                outcomes = [None] * len(held)
        else:
            outcomes = list(await asyncio.gather(*(broker.kick(m) for m in messages), return_exceptions=True))
        for (_, sent), outcome in zip(held, outcomes, strict=True):
            if outcome is None:
                sent.set_result(None)
            else:
                sent.set_exception(outcome)


Call = tuple[Sequence[Any], dict[str, Any]]  # one job's args and kwargs


async def _kiq(kicker: AsyncKicker[Any, Any], batch: BatchingBroker, call: Call) -> AsyncTaskiqTask[Any]:
    job = _Job()
    _JOB.set(job)  # each job runs in its own task, so this is its own context
    try:
        return await kicker.kiq(*call[0], **call[1])
    except BaseException:
        if not job.reached_kick:
            batch.left_early()
        raise


async def kiq_many(
    make_kicker: Any, broker: AsyncBroker, calls: Sequence[Call]
) -> list[AsyncTaskiqTask[Any] | BaseException]:
    """``kiq`` every job (``make_kicker(broker)`` gives a kicker), ``BATCH_SIZE`` per driver call; one outcome per
    job, in order: its handle, or the exception its ``kiq`` raised."""
    outcomes: list[AsyncTaskiqTask[Any] | BaseException] = []
    for first in range(0, len(calls), BATCH_SIZE):
        chunk = calls[first : first + BATCH_SIZE]
        batch = BatchingBroker(broker, len(chunk))
        kicker = make_kicker(batch)
        outcomes.extend(await asyncio.gather(*(_kiq(kicker, batch, call) for call in chunk), return_exceptions=True))
    return outcomes
