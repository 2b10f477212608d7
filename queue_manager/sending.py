"""Many jobs through one kicker: each job's message and middleware hooks as TaskIQ's ``kiq`` makes them, one driver
call for every 1,000 jobs.

``AsyncKicker.kiq`` for one job is: prepare the message, each middleware's ``pre_send``, ``broker.kick`` (a failure
raised as ``SendTaskError``), each middleware's ``post_send`` in reverse, the task handle. ``kiq_many`` runs those
same steps, in that order for every job, but with one ``kick_many`` (one Redis pipeline; concurrent publishes
elsewhere) where ``kiq`` would send each job alone. It does them in a loop rather than one asyncio task per job:
a task per job cost more than the job's message (issue 25: a 10,000-job batch is one store write and one bulk
send, ten times faster than 10,000 dispatches).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from taskiq import AsyncBroker, BrokerMessage, TaskiqMessage, TaskiqMiddleware
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker
from taskiq.utils import maybe_awaitable

from drivers.base.contract import SendsInBatches
from queue_manager.handles import JobHandle

BATCH_SIZE = 1000

#: One job: its args, its kwargs, and the labels it has that the group's kicker does not (its own tags).
Call = tuple[Sequence[Any], dict[str, Any], Mapping[str, Any]]
Outcome = JobHandle[Any] | BaseException
_NOT_SENT: Outcome = RuntimeError("not sent")  # replaced for every job below


def _hooked(broker: AsyncBroker, hook: str) -> list[TaskiqMiddleware]:
    """The middlewares that override ``hook`` (as ``kiq`` asks, so a middleware without it costs nothing)."""
    base = getattr(TaskiqMiddleware, hook)
    return [middleware for middleware in broker.middlewares if getattr(type(middleware), hook) is not base]


async def _kick_all(broker: AsyncBroker, messages: list[BrokerMessage]) -> list[BaseException | None]:
    """One outcome per message: None when sent."""
    if isinstance(broker, SendsInBatches):
        try:
            await broker.kick_many(messages)
        except Exception as error:
            return [error] * len(messages)
        return [None] * len(messages)
    sent = await asyncio.gather(*(broker.kick(message) for message in messages), return_exceptions=True)
    return [outcome if isinstance(outcome, BaseException) else None for outcome in sent]


async def kiq_many(kicker: AsyncKicker[Any, Any], calls: Sequence[Call]) -> list[Outcome]:
    """Send every job with ``kicker``; one outcome per job, in order: its handle, or the exception its ``kiq``
    would have raised (a middleware's, or ``SendTaskError`` from the driver's)."""
    broker = kicker.broker
    pre_send, post_send = _hooked(broker, "pre_send"), _hooked(broker, "post_send")[::-1]
    outcomes: list[Outcome] = []
    for first in range(0, len(calls), BATCH_SIZE):
        chunk = calls[first : first + BATCH_SIZE]
        chunk_outcomes: list[Outcome] = [_NOT_SENT] * len(chunk)
        prepared: list[tuple[int, TaskiqMessage, BrokerMessage]] = []
        for index, (args, kwargs, labels) in enumerate(chunk):
            try:
                message = kicker._prepare_message(*args, **kwargs)
                for key, value in labels.items():  # None: a label the group's kicker has and this job has not
                    if value is None:
                        message.labels.pop(key, None)
                    else:
                        message.labels[key] = value
                for middleware in pre_send:
                    message = await maybe_awaitable(middleware.pre_send(message))
            except Exception as error:
                chunk_outcomes[index] = error
                continue
            try:
                prepared.append((index, message, broker.formatter.dumps(message)))
            except Exception as error:  # inside kiq's try: a message that cannot be written is a SendTaskError
                chunk_outcomes[index] = _send_error(error)
        sent = await _kick_all(broker, [written for _, _, written in prepared]) if prepared else []
        for (index, message, _), failure in zip(prepared, sent, strict=True):
            if failure is not None:
                chunk_outcomes[index] = _send_error(failure)
                continue
            try:
                for middleware in post_send:
                    await maybe_awaitable(middleware.post_send(message))
            except Exception as error:
                chunk_outcomes[index] = error
            else:
                chunk_outcomes[index] = JobHandle(message.task_id, broker.result_backend, kicker.return_type)
        outcomes.extend(chunk_outcomes)
    return outcomes


def _send_error(error: BaseException) -> SendTaskError:
    """``kiq``'s wrapping of a driver's failure."""
    wrapped = SendTaskError()
    wrapped.__cause__ = error
    return wrapped
