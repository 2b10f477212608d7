"""The ``failover`` driver (Laravel 12.34's failover queue connection): send to the first of several
connections that accepts the job.

A failover connection has no server of its own. Each dispatch tries its connections in order and goes
to the first that takes it; a connection that failed is skipped for ``cooldown`` seconds, then tried
again; each fall-over (and each recovery) is logged once, with the reason. Workers work the underlying
connections as usual (``queue:work primary``, ``queue:work redis``); a job's result is read from
whichever of them ran it. The manager builds it, because it needs the other connections; this module
only knows their brokers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from taskiq import AsyncBroker, AsyncResultBackend, BrokerMessage
from taskiq.result import TaskiqResult

from drivers.errors import BrokerUnreachableError, QueueConfigurationError
from drivers.options import FailoverOptions
from drivers.result_errors import ResultMissingError
from drivers.spec import BrokerSpec

logger = logging.getLogger("queue_manager.drivers.failover")

R = TypeVar("R")


@dataclass
class Target:
    """One connection a failover connection may send to."""

    name: str
    broker: AsyncBroker
    start: Callable[[], Awaitable[None]]  # starts it once (the connection's own, idempotent, startup)
    failed_until: float = 0.0
    failed_because: str | None = None


class FailoverResults(AsyncResultBackend[Any]):
    """A result is in the store of the connection that ran the job: ask each in turn."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = targets

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        raise QueueConfigurationError("A failover connection runs no jobs: its connections' workers store results.")

    async def is_result_ready(self, task_id: str) -> bool:
        for target in self.targets:
            try:
                if await target.broker.result_backend.is_result_ready(task_id):
                    return True
            except Exception:  # that connection is down or never started: look at the next
                continue
        return False

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        for target in self.targets:
            try:
                if await target.broker.result_backend.is_result_ready(task_id):
                    return await target.broker.result_backend.get_result(task_id, with_logs=with_logs)
            except Exception:
                continue
        raise ResultMissingError(task_id=task_id)


class FailoverBroker(AsyncBroker):
    def __init__(self, spec: BrokerSpec, options: FailoverOptions, targets: Sequence[Target]) -> None:
        super().__init__()
        self.spec = spec
        self.cooldown = options.cooldown
        self.targets = list(targets)
        self.result_backend = FailoverResults(self.targets)
        self._current: str | None = None  # where the last job went, to log each change once

    async def startup(self) -> None:
        """Nothing to start: each connection starts on the first job it is offered (a down one must not stop
        the others, or the app, from starting)."""
        await super().startup()

    async def kick(self, message: BrokerMessage) -> None:
        now = time.monotonic()
        reasons: list[str] = []
        cooling = [t for t in self.targets if t.failed_until > now]
        for target in [t for t in self.targets if t.failed_until <= now] + cooling:
            try:
                await target.start()
                await target.broker.kick(message)
            except Exception as error:
                cause = error.__cause__ or error
                reason = f"{type(cause).__name__}: {cause}"
                reasons.append(f"'{target.name}': {reason}")
                if target.failed_because is None:
                    logger.warning(
                        "Queue connection '%s': connection '%s' failed (%s); trying the next one, and '%s' "
                        "again after %.0f s",
                        self.spec.name,
                        target.name,
                        reason,
                        target.name,
                        self.cooldown,
                    )
                target.failed_until, target.failed_because = time.monotonic() + self.cooldown, reason
                continue
            self._sent_to(target)
            return
        raise BrokerUnreachableError(
            f"Queue connection '{self.spec.name}' could not send the job to any of its connections: "
            + "; ".join(reasons)
        )

    def _sent_to(self, target: Target) -> None:
        if target.failed_because is not None:
            logger.warning("Queue connection '%s': connection '%s' takes jobs again", self.spec.name, target.name)
            target.failed_because = None
        target.failed_until = 0.0
        if self._current not in (None, target.name):
            logger.warning("Queue connection '%s' now sends to '%s'", self.spec.name, target.name)
        self._current = target.name

    async def listen(self) -> AsyncGenerator[bytes, None]:
        raise QueueConfigurationError(
            f"Queue connection '{self.spec.name}' (failover) has no worker of its own: work the connections it "
            f"sends to ({', '.join(t.name for t in self.targets)}), e.g. `python artisan queue:work "
            f"{self.targets[0].name}`."
        )
        yield b""  # pragma: no cover (makes this an async generator)


def build(spec: BrokerSpec) -> AsyncBroker:
    raise QueueConfigurationError(
        f"Queue connection '{spec.name}' (failover) is built by the queue manager from the connections it names."
    )


async def ping(spec: BrokerSpec) -> None:
    """A failover connection has no server of its own."""
