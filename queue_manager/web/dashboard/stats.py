"""What the dashboard shows, as plain JSON data: each connection's queues and the recent failed jobs.

Connections shown: the default one, and every connection in the settings whose driver is not ``memory`` (a
memory connection lives in one process: another process's dashboard would show nothing of it). One that is
not resolved yet is pinged first, without resolving it, so a server that is down shows as "unreachable"
(and does not become one of the connections the health route checks); one that answers is resolved and
started like any connection the web process uses.

Nothing secret leaves here: URLs go through ``spec.display_url`` (masked), errors are our own
(``BrokerUnreachableError``, ``QueueConfigurationError``: both written without passwords) or only the name of
the exception's class, and every text is scrubbed of the connections' passwords once more.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from drivers import DRIVERS, BrokerUnreachableError, QueueConfigurationError, load_driver

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.failed import FailedJob
    from queue_manager.manager import QueueManager

logger = logging.getLogger("queue_manager.dashboard")

PING_TIMEOUT = 5.0  # a server that does not answer a ping within this is "unreachable"
CONNECTION_TIMEOUT = 10.0  # everything one connection's card needs
THROUGHPUT_MINUTES = 30
FAILED_SHOWN = 20
ERROR_WIDTH = 300
MASK = "***"


def dashboard_connections(manager: QueueManager) -> list[str]:
    """The connections the dashboard shows, the default first, then the settings' order."""
    default = manager.get_default_driver()
    others = [name for name, settings in manager.settings.connections.items() if not _in_process(settings.driver)]
    return [default, *(name for name in others if name != default)]


def _in_process(driver: str) -> bool:
    """A memory connection lives in one process: another process's dashboard would show nothing of it."""
    known = DRIVERS.get(driver)
    return known is not None and known.in_process


def secrets(manager: QueueManager) -> list[str]:
    """Every connection's URL password (and user-only token), raw and percent-encoded: never to be shown."""
    found: set[str] = set()
    for settings in manager.settings.connections.values():
        url = settings.url_value or ""
        try:
            parts = urlsplit(url)
            userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
        except ValueError:
            continue
        user, colon, password = userinfo.partition(":")
        secret = password if colon else user
        if len(secret) >= 3:
            found.update({secret, unquote(secret)})
    return sorted(found, key=len, reverse=True)


def scrub(text: str, hidden: list[str]) -> str:
    for secret in hidden:
        text = text.replace(secret, MASK)
    return text


def describe(error: BaseException) -> str:
    """An error as the dashboard shows it: our own messages (written without secrets), else the class only."""
    if isinstance(error, TimeoutError):
        return "the server did not answer in time"
    if isinstance(error, BrokerUnreachableError | QueueConfigurationError):
        return str(error) or type(error).__name__
    return type(error).__name__


def first_line(text: str, width: int = ERROR_WIDTH) -> str:
    stripped = text.strip()
    line = stripped.splitlines()[0] if stripped else ""
    return line if len(line) <= width else line[: width - 1] + "…"


async def ping_unresolved(manager: QueueManager, name: str) -> None:
    """Ping a connection not resolved yet with its driver's own ping, so an unreachable one stays unresolved."""
    settings = manager.settings.connections[name]
    if manager.connected(name) or settings.driver not in DRIVERS:
        return  # resolved already, or a custom/failover driver: its own startup tells
    module = load_driver(settings.driver)
    await asyncio.wait_for(module.ping(manager.settings.spec(name)), PING_TIMEOUT)


async def queue_stats(connection: Connection, queue: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": queue}
    try:
        counts = await connection.counts(queue)
    except Exception as error:
        entry.update(waiting=None, delayed=None, running=None, error=describe(error))
    else:
        entry.update(waiting=counts.waiting, delayed=counts.delayed, running=counts.reserved, error=None)
    try:
        entry["paused"] = await connection.paused(queue)
    except QueueConfigurationError:  # a custom driver keeps no shared state: it cannot be paused
        entry["paused"] = None
    entry["throughput"] = await connection.throughput(queue, minutes=THROUGHPUT_MINUTES)
    return entry


async def connection_stats(manager: QueueManager, name: str) -> dict[str, Any]:
    settings = manager.settings.connections[name]
    entry: dict[str, Any] = {
        "name": name,
        "driver": settings.driver,
        "url": manager.settings.spec(name).display_url,
        "default": name == manager.get_default_driver(),
        "status": "ok",
        "error": None,
        "queues": [],
    }
    connection: Connection | None = None
    try:
        await ping_unresolved(manager, name)
        connection = manager.connection(name)
        entry["url"] = connection.spec.display_url
        if not connection.started:
            await connection.startup()
        entry["queues"] = [await queue_stats(connection, queue) for queue in manager.queues(name)]
    except Exception as error:
        entry.update(status="unreachable", error=await _explain(connection, error), queues=[])
    return entry


async def _explain(connection: Connection | None, error: Exception) -> str:
    """A started connection whose server went away fails with the broker library's own error: its ping says
    the same in our words (host:port, no password)."""
    if connection is not None and not isinstance(error, BrokerUnreachableError | QueueConfigurationError):
        try:
            await asyncio.wait_for(connection.ping(), PING_TIMEOUT)
        except Exception as unreachable:
            return describe(unreachable)
    return describe(error)


def failed_entry(job: FailedJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "short_id": job.id[:8],
        "connection": job.connection,
        "queue": job.queue,
        "task": job.task_name,
        "failed_at": job.failed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "error": first_line(job.summary),
        "attempts": job.attempts,
    }


async def failed_stats(manager: QueueManager) -> dict[str, Any]:
    try:
        jobs = await manager.failed.all(limit=FAILED_SHOWN)  # newest first; not all of a large store each poll
        total = await manager.failed.store.count()
    except Exception as error:
        return {"total": None, "jobs": [], "error": describe(error)}
    return {"total": total, "jobs": [failed_entry(job) for job in jobs], "error": None}


async def _bounded(manager: QueueManager, name: str) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(connection_stats(manager, name), CONNECTION_TIMEOUT)
    except TimeoutError:
        settings = manager.settings.connections[name]
        return {
            "name": name,
            "driver": settings.driver,
            "url": manager.settings.spec(name).display_url,
            "default": name == manager.get_default_driver(),
            "status": "unreachable",
            "error": f"the server did not answer within {CONNECTION_TIMEOUT:g} s",
            "queues": [],
        }


async def collect(manager: QueueManager) -> dict[str, Any]:
    """The body of ``GET {path}/api/stats`` (and the data the page is first rendered from)."""
    names = dashboard_connections(manager)
    *connections, failed = await asyncio.gather(*(_bounded(manager, name) for name in names), failed_stats(manager))
    hidden = secrets(manager)
    for entry in connections:
        entry["url"] = scrub(entry["url"], hidden)
        if entry["error"]:
            entry["error"] = scrub(entry["error"], hidden)
        for queue in entry["queues"]:
            if queue["error"]:
                queue["error"] = scrub(queue["error"], hidden)
    if failed["error"]:
        failed["error"] = scrub(failed["error"], hidden)
    for job in failed["jobs"]:
        job["error"] = scrub(job["error"], hidden)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "throughput_minutes": THROUGHPUT_MINUTES,
        "connections": connections,
        "failed": failed,
    }
