"""Messages no worker can run: undecodable, for a task this worker does not know, or with labels that break it.

TaskIQ's receiver logs such a message (the whole payload, at WARNING) and acknowledges it, so the job is
gone; a label it cannot parse (``ack_type: bogus``) makes it raise before the acknowledgement, so the message
is held forever. Every broker of ours checks each message before the receiver sees it (``RejectsPoison``,
which the consume loop builds on): a poison message is handed to ``poison_handler`` (the manager records it
as a failed job, raw payload kept, and answers where it went) and then acknowledged.

That happens beside the fetch loop, in a task of its own, so a store that is slow or cut off never holds up
the good jobs behind a poison message (one undecodable message during a partition of the store used to stop
every job for minutes). Each attempt to record is bounded (``RECORD_TIMEOUT``) and tried a few times; if it
still fails, the message is logged (reason and a bounded excerpt) and acknowledged anyway, because holding a
message that cannot run would block the worker (RabbitMQ's prefetch) or keep it "in progress" forever. A
stopping worker waits up to ``SET_ASIDE_WAIT`` for those still being recorded; one it stops waiting for was
not acknowledged, and comes back to the next worker.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from taskiq import AckableMessage, BrokerMessage, TaskiqFormatter, TaskiqMessage, TaskiqResult
from taskiq.acks import parse_acknowledge_type
from taskiq.labels import parse_label
from taskiq.utils import maybe_awaitable

from drivers.base import labels
from drivers.base.delay import received_delay, received_eta
from drivers.base.errors import UnrunnableJobError

logger = logging.getLogger("queue_manager.drivers.poison")

ANSWER_TIMEOUT = 5.0  # seconds to store a poison message's error result
EXCERPT = 200  # characters of a bad payload worth a log line (the whole payload goes to the failed-jobs store)
RECORD_ATTEMPTS = (0.5, 1.0, 2.0)  # pauses between attempts to record a poison message
RECORD_TIMEOUT = 15.0  # seconds one attempt to record may take
SET_ASIDE_WAIT = 30.0  # seconds a stopping worker waits for poison messages still being recorded


@dataclass(frozen=True)
class PoisonMessage:
    """What a worker could tell about a message it cannot run."""

    payload: bytes
    reason: str  # undecodable | unknown task | bad label
    error: str
    task_name: str | None = None
    task_id: str | None = None
    message: TaskiqMessage | None = field(default=None, repr=False)

    def excerpt(self) -> str:
        """The first ``EXCERPT`` characters, control characters escaped (a log line, not the payload)."""
        text = self.payload[: EXCERPT * 4].decode("utf-8", errors="replace")[:EXCERPT]
        text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
        return text + (f"... ({len(self.payload)} bytes)" if len(self.payload) > EXCERPT else "")


#: Records a poison message; answers where it went ("It is recorded as failed job ..."), told to its caller.
PoisonHandler = Callable[[PoisonMessage], Awaitable[str]]


class RejectedDelivery(AckableMessage):
    """A delivery its broker already found unusable (e.g. an ``eta`` header that is not a time): ``listen``
    records it as poison and acknowledges it, like one the checks below reject."""

    reason: str
    error: str


def _number(value: Any, integer: bool = False, minimum: float | None = None) -> None:
    number = int(value) if integer else float(value)
    if not math.isfinite(number) or (minimum is not None and number < minimum):
        raise ValueError(f"{value!r} is out of range")


# label -> check that raises for a value the worker cannot use
LABEL_CHECKS: dict[str, Callable[[Any], Any]] = {
    "ack_type": parse_acknowledge_type,
    labels.RETRIES: lambda v: _number(v, integer=True, minimum=0),
    labels.ATTEMPT: lambda v: _number(v, integer=True, minimum=0),
    labels.TIMEOUT: lambda v: _number(v, minimum=0),
    labels.ETA: received_eta,  # a number, finite, no further ahead than a dispatch could set
    labels.DELAY: received_delay,
    labels.PRIORITY: lambda v: _number(v, integer=True, minimum=0),
}


def check_labels(message: TaskiqMessage) -> str | None:
    """The first label the worker could not use, as an error text; None if all are fine.

    The message is left as it was decoded (TaskIQ's receiver parses its labels itself)."""
    parsed = dict(message.labels)
    for name, label_type in (message.labels_types or {}).items():
        if name in parsed:
            try:
                parsed[name] = parse_label(parsed[name], label_type)
            except (TypeError, ValueError, AttributeError, OverflowError):
                return f"label {name!r} does not parse as its declared type"
    for name, check in LABEL_CHECKS.items():
        value = parsed.get(name)
        if value in (None, ""):
            continue
        try:
            check(value)
        except (TypeError, ValueError, OverflowError):
            return f"label {name!r} has an unusable value"
    return None


class ReusingFormatter(TaskiqFormatter):
    """The broker's formatter, handing TaskIQ's receiver the message the poison check already decoded
    (keyed by the very bytes object it was decoded from), instead of decoding every job twice."""

    def __init__(self, inner: TaskiqFormatter) -> None:
        self.inner = inner
        self.decoded: dict[int, tuple[bytes, TaskiqMessage]] = {}

    def keep(self, data: bytes, message: TaskiqMessage) -> None:
        self.decoded[id(data)] = (data, message)

    def dumps(self, message: TaskiqMessage) -> BrokerMessage:
        return self.inner.dumps(message)

    def loads(self, message: bytes) -> TaskiqMessage:
        kept = self.decoded.pop(id(message), None)
        if kept is not None and kept[0] is message:
            return kept[1]
        return self.inner.loads(message)


class RejectsPoison:
    """Mixin for brokers (before the TaskIQ broker in the bases): ``listen()`` yields only messages the receiver
    can run, from ``deliveries()`` (the consume loop's; the parent class's ``listen()`` by default)."""

    poison_handler: PoisonHandler | None = None

    def deliveries(self) -> AsyncGenerator[Any, None]:
        return super().listen()  # type: ignore[misc,no-any-return]

    def _reusing_formatter(self) -> ReusingFormatter:
        broker: Any = self
        if not isinstance(broker.formatter, ReusingFormatter):
            broker.formatter = ReusingFormatter(broker.formatter)
        return cast(ReusingFormatter, broker.formatter)

    def find_poison(self, data: bytes) -> PoisonMessage | None:
        broker: Any = self
        formatter = self._reusing_formatter()
        try:
            message: TaskiqMessage = formatter.inner.loads(data)
        except Exception as error:  # anything the formatter raises means it cannot be decoded
            return PoisonMessage(data, "undecodable", f"{type(error).__name__}: {str(error)[:EXCERPT]}")
        name, task_id = message.task_name, message.task_id
        if broker.find_task(name) is None:
            return PoisonMessage(
                data,
                "unknown task",
                f"task {name!r} is not known to this worker",
                name,
                task_id,
                message,
            )
        bad = check_labels(message)
        if bad is not None:
            return PoisonMessage(data, "bad label", bad, name, task_id, message)
        formatter.keep(data, message)
        return None

    async def listen(self) -> AsyncGenerator[Any, None]:
        deliveries = self.deliveries()
        aside: set[asyncio.Task[None]] = set()  # poison messages being recorded, beside the fetch loop
        try:
            async for delivery in deliveries:
                data = delivery.data if isinstance(delivery, AckableMessage) else delivery
                poison = self._rejected(delivery) if isinstance(delivery, RejectedDelivery) else self.find_poison(data)
                if poison is None:
                    yield delivery
                else:
                    task = asyncio.ensure_future(self._set_aside(poison, delivery))
                    aside.add(task)
                    task.add_done_callback(aside.discard)
        finally:
            try:
                if aside:
                    await asyncio.wait(set(aside), timeout=SET_ASIDE_WAIT)
            finally:
                self._reusing_formatter().decoded.clear()
                await deliveries.aclose()  # now, not when garbage-collected: it gives back what it holds

    def _rejected(self, delivery: RejectedDelivery) -> PoisonMessage:
        """What is known of a delivery the broker refused: its task, if the payload decodes."""
        try:
            message: TaskiqMessage | None = self._reusing_formatter().inner.loads(delivery.data)
        except Exception:  # undecodable as well: the raw payload is kept either way
            message = None
        name, task_id = (message.task_name, message.task_id) if message is not None else (None, None)
        return PoisonMessage(delivery.data, delivery.reason, delivery.error, name, task_id, message)

    async def _set_aside(self, poison: PoisonMessage, delivery: Any) -> None:
        """Record the message as a failed job (a few attempts), or at least log why it is dropped; tell whoever
        waits on its result; then acknowledge it."""
        try:
            where = await self._record(poison)
            await self._answer_the_caller(poison, where)
            if isinstance(delivery, AckableMessage):
                await maybe_awaitable(delivery.ack())
        except Exception:  # a task of its own: nobody else would see this
            logger.exception("Could not set aside a job that cannot run (%s)", poison.reason)

    async def _record(self, poison: PoisonMessage) -> str:
        """Where the message went, as the handler says; "It was dropped." if it could not be recorded."""
        handler = self.poison_handler
        for pause in (*RECORD_ATTEMPTS, None):
            if handler is None:
                break
            try:
                async with asyncio.timeout(RECORD_TIMEOUT):
                    return await handler(poison)
            except Exception:
                logger.exception("Could not record a job that cannot run (%s)", poison.reason)
            if pause is not None:
                await asyncio.sleep(pause)
        logger.error(
            "Dropped a job that cannot run and could not be recorded (%s: %s; task %s, id %s): %s",
            poison.reason,
            poison.error,
            poison.task_name,
            poison.task_id,
            poison.excerpt(),
        )
        return "It was dropped."

    async def _answer_the_caller(self, poison: PoisonMessage, where: str) -> None:
        """Store the reason as the job's result, when its id is known and it has no result yet (a worker that
        knew the task may have run it before this redelivery), within ``ANSWER_TIMEOUT``."""
        broker: Any = self
        if not poison.task_id:
            return
        error = UnrunnableJobError(f"Job {poison.task_id} cannot run ({poison.reason}): {poison.error}. {where}")
        result: TaskiqResult[None] = TaskiqResult(is_err=True, return_value=None, execution_time=0, error=error)
        backend = broker.result_backend
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                if not await backend.is_result_ready(poison.task_id):
                    await backend.set_result(poison.task_id, result)
        except Exception as problem:  # the result is a courtesy; the failed-jobs record is what counts
            logger.warning("Could not store the error result of job %s: %r", poison.task_id, problem)
