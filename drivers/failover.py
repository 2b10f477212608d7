"""The ``failover`` driver (Laravel 12.34's failover queue connection): send to the first of several
connections that accepts the job.

A failover connection has no server of its own. Each dispatch tries its connections in order and goes
to the first that takes it; a connection that failed is skipped for ``cooldown`` seconds, then tried
again; each fall-over (and each recovery) is logged once, with the reason. Workers work the underlying
connections as usual; a job's result is read from whichever of them ran it. It is built over the other
connections (``build_over``): the manager hands it its ``connection(name)``, as Laravel's FailoverConnector is
handed the manager; the options are checked against the app's other connections at boot (``check``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

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


class Target:
    """One connection a failover connection may send to."""

    def __init__(self, name: str, connection: ConnectionLike) -> None:
        self.name = name
        self.broker = connection.broker
        self.start = connection.startup  # starts it once (the connection's own, idempotent, startup)
        self.failed_until = 0.0
        self.failed_because: str | None = None


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
    default_connection=False,
    builds_on_connections=True,
    check_connections=check,
)
