"""The ``failover`` driver (Laravel 12.34's failover queue connection): send to the first of several
connections that accepts the job.

A failover connection has no server of its own. Each dispatch tries its connections in order and goes
to the first that takes it; a connection that failed is skipped for ``cooldown`` seconds, then gets jobs
again once it answers a ping; each fall-over (and each recovery) is logged once, with the reason. A job goes
to one connection only: a send that got no answer (``maybe_sent``: the server may have stored it) is not
repeated elsewhere, where it would run a second time; the dispatch raises instead. Workers work the underlying
connections as usual; a job's result is read from whichever of them ran it, each read bounded by
``result_timeout`` so that ``wait_result`` keeps to its caller's timeout. It is built over the other
connections (``build_over``): the manager hands it its ``connection(name)``, as Laravel's FailoverConnector is
handed the manager; the options are checked against the app's other connections at boot (``check``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import Field, field_validator
from taskiq import AsyncBroker, AsyncResultBackend, BrokerMessage
from taskiq.result import TaskiqResult

from drivers.base.contract import ConnectionLike, DriverInfo
from drivers.base.errors import BrokerUnreachableError, QueueConfigurationError, ResultMissingError, unknown_name_error
from drivers.base.options import DriverOptions
from drivers.base.spec import BrokerSpec


class FailoverOptions(DriverOptions):
    connections: list[str] = Field(min_length=1, description="connections to try, in order")
    cooldown: float = Field(10.0, ge=0, le=3600, description="seconds a connection that failed is skipped")
    result_timeout: float = Field(2.0, gt=0, le=60, description="seconds a result read from one connection may take")

    @field_validator("connections", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``primary,redis`` from the environment, or a JSON list."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("connections must be a comma list (primary,redis) or a JSON list") from None
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value


logger = logging.getLogger("queue_manager.drivers.failover")
T = TypeVar("T")


class Target:
    """One connection a failover connection may send to."""

    def __init__(self, name: str, connection: ConnectionLike) -> None:
        self.name = name
        self.broker = connection.broker
        self.start = connection.startup  # starts it once (the connection's own, idempotent, startup)
        self.ping = connection.ping  # a short-lived connection: sends no job
        self.failed_until = 0.0
        self.failed_because: str | None = None
        self.reads_skipped_until = 0.0


class FailoverResults(AsyncResultBackend[Any]):
    """A result is in the store of the connection that ran the job: ask each in turn.

    TaskIQ's ``wait_result`` looks at its timeout only between reads, and a read from a partitioned server
    waits out the client's socket timeouts and retries (``wait_result(timeout=5)`` took 81.5 s): so each read
    gets ``timeout`` seconds, and a connection whose read failed is not asked again for ``cooldown`` seconds.
    """

    def __init__(self, targets: Sequence[Target], timeout: float, cooldown: float) -> None:
        self.targets = targets
        self.timeout = timeout
        self.cooldown = cooldown

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        raise QueueConfigurationError("A failover connection runs no jobs: its connections' workers store results.")

    async def _read(self, target: Target, read: Callable[[AsyncResultBackend[Any]], Awaitable[T]]) -> T | None:
        """``read`` of ``target``'s store within ``timeout``; None if it failed (then it is skipped a while)."""
        try:
            async with asyncio.timeout(self.timeout):
                return await read(target.broker.result_backend)
        except Exception:  # down, partitioned, not started, or it keeps no results: the job ran elsewhere
            target.reads_skipped_until = time.monotonic() + self.cooldown
            return None

    async def _holder(self, task_id: str) -> Target | None:
        """The first connection (not skipped) whose store has the job's result."""
        now = time.monotonic()
        for target in [t for t in self.targets if t.reads_skipped_until <= now]:
            if await self._read(target, lambda store: store.is_result_ready(task_id)):
                return target
        return None

    async def is_result_ready(self, task_id: str) -> bool:
        return await self._holder(task_id) is not None

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        target = await self._holder(task_id)
        if target is not None:
            result = await self._read(target, lambda store: store.get_result(task_id, with_logs=with_logs))
            if result is not None:
                return result
        raise ResultMissingError(task_id=task_id)


class FailoverBroker(AsyncBroker):
    def __init__(self, spec: BrokerSpec, options: FailoverOptions, targets: Sequence[Target]) -> None:
        super().__init__()
        self.spec = spec
        self.cooldown = options.cooldown
        self.targets = list(targets)
        self.result_backend = FailoverResults(self.targets, options.result_timeout, options.cooldown)
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
                await self._ready(target)
            except Exception as error:  # nothing was sent: the next connection may have the job
                reasons.append(f"'{target.name}': {self._failed(target, error)}")
                continue
            try:
                await target.broker.kick(message)
            except Exception as error:
                reason = self._failed(target, error)
                if getattr(error, "maybe_sent", False):
                    raise self._maybe_sent(message, target, reason) from error
                reasons.append(f"'{target.name}': {reason}")
                continue
            self._sent_to(target)
            return
        raise BrokerUnreachableError(
            f"Queue connection '{self.spec.name}' could not send the job to any of its connections: "
            + "; ".join(reasons)
        )

    async def _ready(self, target: Target) -> None:
        """Start ``target``; one that failed before must answer a ping first, so that a job is not sent into a
        partition that lasts longer than the cool-down (where it could neither be taken nor sent elsewhere)."""
        await target.start()
        if target.failed_because is not None:
            target.failed_until = time.monotonic() + self.cooldown  # other sends pass it by while it is pinged
            await target.ping()

    def _failed(self, target: Target, error: Exception) -> str:
        """Skip ``target`` for the cool-down (logged once per outage); the reason, for the error."""
        cause = error.__cause__ or error
        reason = f"{type(cause).__name__}: {cause}"
        if target.failed_because is None:
            logger.warning(
                "Queue connection '%s': connection '%s' failed (%s); trying the next one, and '%s' again after %.0f s",
                self.spec.name,
                target.name,
                reason,
                target.name,
                self.cooldown,
            )
        target.failed_until, target.failed_because = time.monotonic() + self.cooldown, reason
        return reason

    def _maybe_sent(self, message: BrokerMessage, target: Target, reason: str) -> BrokerUnreachableError:
        others = ", ".join(f"'{other.name}'" for other in self.targets if other is not target)
        error = BrokerUnreachableError(
            f"Queue connection '{self.spec.name}': job {message.task_id} may or may not have reached "
            f"'{target.name}' ({reason}). It was not sent to {others or 'another connection'} as well, where it "
            f"would run a second time if '{target.name}' stored it: check before sending it again. The next jobs "
            f"skip '{target.name}' for {self.cooldown:g} s."
        )
        error.maybe_sent = True
        return error

    def _sent_to(self, target: Target) -> None:
        if target.failed_because is not None:
            logger.warning("Queue connection '%s': connection '%s' takes jobs again", self.spec.name, target.name)
            target.failed_because = None
        target.failed_until = 0.0
        if self._current not in (None, target.name):
            logger.warning("Queue connection '%s' now sends to '%s'", self.spec.name, target.name)
        self._current = target.name

    def why_no_worker(self) -> str:
        names = ", ".join(target.name for target in self.targets)
        return f"it sends its jobs to other connections ({names}) and has no worker of its own: work those"

    async def listen(self) -> AsyncGenerator[bytes, None]:
        raise QueueConfigurationError(f"Queue connection '{self.spec.name}' (failover): {self.why_no_worker()}.")
        yield b""  # pragma: no cover (makes this an async generator)


def build(spec: BrokerSpec) -> AsyncBroker:
    raise QueueConfigurationError(
        f"Queue connection '{spec.name}' (failover) is built over the connections it names (build_over)."
    )


def build_over(spec: BrokerSpec, connection: Callable[[str], ConnectionLike]) -> AsyncBroker:
    """A failover broker over the connections its options name, each resolved (and started) as usual."""
    options = FailoverOptions.model_validate(dict(spec.options))
    return FailoverBroker(spec, options, [Target(name, connection(name)) for name in options.connections])


def check(spec: BrokerSpec, drivers: Mapping[str, str]) -> None:
    """At boot: the connections to try exist (``drivers``: each connection's driver), and none is this one or
    another failover connection."""
    setting = spec.setting("options", "connections")
    if "connections" not in spec.options:
        raise QueueConfigurationError(
            f"Queue connection '{spec.name}' (failover) needs the connections to try, in order: {setting}=primary,redis"
        )
    for target in FailoverOptions.model_validate(dict(spec.options)).connections:
        if target not in drivers:
            error = unknown_name_error("connection", target, drivers, f"Fix {setting}.")
            raise QueueConfigurationError(f"Queue connection '{spec.name}' (failover): {error}") from None
        if target == spec.name or drivers[target] == spec.driver:
            raise QueueConfigurationError(
                f"Queue connection '{spec.name}' (failover) cannot fail over to '{target}', "
                + ("itself" if target == spec.name else "another failover connection")
                + f": name connections with a server in {setting}."
            )


async def ping(spec: BrokerSpec) -> None:
    """A failover connection has no server of its own."""


DRIVER = DriverInfo(
    "drivers.failover",
    FailoverOptions,
    shares_results=False,
    keeps_job_state=False,
    default_connection=False,
    builds_on_connections=True,
    check_connections=check,
    uses=lambda options: FailoverOptions.model_validate(dict(options)).connections,
)
