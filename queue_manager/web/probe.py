"""Is a connection's server answering? Asked over the connection the web process already holds, at most once a
second per connection, however many requests ask (the health route and the dashboard share the answers).

Each request used to open a fresh connection to every broker (a short-lived ``ping``): 300 health requests, 300
new connections to each server, a cheap way to load them from outside. Here a started connection is asked over
its own client (a read of its control state: a GET on Redis, a key-value read on NATS, a passive declare on a
channel of RabbitMQ's open connection); one not started yet is started, as a dispatch would start it. Only on a
failure is the driver's own ping asked, for a message in our words (host:port, no password).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from drivers import DRIVERS, BrokerUnreachableError, QueueConfigurationError
from drivers.base.control import control_of
from drivers.base.reach import unreachable
from queue_manager.web.masking import passwords, scrub

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.manager import QueueManager

PING_TIMEOUT = 5.0  # a server that does not answer within this is down
FRESH_FOR = 1.0  # seconds an answer is reused
PROBE_KEY = "health"  # the control value read: never set, so the server answers "none" (one round trip)


def describe(error: BaseException) -> str:
    """An error as the web shows it: our own messages (written without secrets), else the class only."""
    if isinstance(error, TimeoutError):
        return f"the server did not answer within {PING_TIMEOUT:g} s"
    if isinstance(error, BrokerUnreachableError | QueueConfigurationError):
        return str(error) or type(error).__name__
    return type(error).__name__


async def explain(connection: Connection, error: Exception) -> str:
    """Why ``connection`` failed, in our words. A broker library's own error (the server went away from a started
    connection, or another service answers at its port) is asked again with the driver's ping, whose errors name
    host and port; one the ping does not explain shows its class only."""
    if isinstance(error, TimeoutError | BrokerUnreachableError | QueueConfigurationError):
        return describe(error)
    try:
        await asyncio.wait_for(connection.ping(), PING_TIMEOUT)
    except (BrokerUnreachableError, TimeoutError) as failed:
        return describe(failed)
    except Exception as failed:  # it answers, but not as the broker: say so with where it is
        known = DRIVERS.get(connection.driver)
        return str(unreachable(connection.spec, failed, known)) if known is not None else type(failed).__name__
    return describe(error)


async def reach(connection: Connection) -> None:
    """One round trip to the server over the connection's own client, starting it first if it is not."""
    if not connection.started:
        await connection.startup()
    control = control_of(connection.broker)
    if control is None:  # a custom driver's broker: its own ping, if it has one
        await connection.ping()
    else:
        await control.get(PROBE_KEY)


async def check(manager: QueueManager, name: str) -> dict[str, Any]:
    """``{"name", "driver", "ok", "latency_ms"}``, and ``"error"`` when it is down (no password, ever)."""
    started = time.perf_counter()
    entry: dict[str, Any] = {"name": name, "driver": manager.settings.connections[name].driver}
    connection: Connection | None = None
    try:
        connection = manager.connection(name)
        await asyncio.wait_for(reach(connection), PING_TIMEOUT)
    except Exception as error:  # unreachable, timed out, another service at its port, a custom driver's failure
        entry.update(ok=False, error=await explain(connection, error) if connection else describe(error))
    else:
        entry.update(ok=True)
    entry["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return entry


class Probe:
    """The answers of ``check``, each reused for ``FRESH_FOR`` seconds; requests that ask while a check runs wait
    for that check instead of starting their own."""

    def __init__(self, manager: QueueManager, fresh_for: float = FRESH_FOR) -> None:
        self.manager = manager
        self.fresh_for = fresh_for
        self._hidden = passwords(manager)
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}
        self._running: dict[str, asyncio.Task[dict[str, Any]]] = {}

    async def check(self, names: list[str]) -> list[dict[str, Any]]:
        """Each connection's answer, in the order of ``names``."""
        return list(await asyncio.gather(*(self._answer(name) for name in names)))

    async def _answer(self, name: str) -> dict[str, Any]:
        answered = self._answers.get(name)
        if answered is not None and time.monotonic() - answered[0] < self.fresh_for:
            return dict(answered[1])
        running = self._running.get(name)
        if running is None or running.get_loop() is not asyncio.get_running_loop():
            running = asyncio.get_running_loop().create_task(self._check(name))
            self._running[name] = running
            running.add_done_callback(lambda task: self._keep(name, task))
        # shield: a caller that goes away (a client that hung up) does not cancel the others' check
        return dict(await asyncio.shield(running))

    async def _check(self, name: str) -> dict[str, Any]:
        answer = await check(self.manager, name)
        if "error" in answer:
            answer["error"] = scrub(answer["error"], self._hidden)
        return answer

    def _keep(self, name: str, task: asyncio.Task[dict[str, Any]]) -> None:
        if self._running.get(name) is task:
            del self._running[name]
        if not task.cancelled() and task.exception() is None:
            self._answers[name] = (time.monotonic(), task.result())
