"""What the dashboard shows, as plain JSON data: each connection's queues and the recent failed jobs.

Connections shown: a fixed set chosen at boot (``web.connections.dashboard_connections``). Whether each one's
server answers comes from the probe the health route shares (``web.probe``: over the connection the web process
holds, once a second at most); one that does not shows as "unreachable" with the reason, and its queues are not
asked.

Nothing secret leaves here: URLs go through ``spec.display_url`` (masked), errors are our own
(``BrokerUnreachableError``, ``QueueConfigurationError``: both written without passwords) or only the name of
the exception's class, and every text is scrubbed of the connections' passwords once more.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from drivers import QueueConfigurationError
from queue_manager.text import first_line
from queue_manager.web.masking import passwords, scrub
from queue_manager.web.probe import Probe, describe, explain

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.failed import FailedJobSummary
    from queue_manager.manager import QueueManager

CONNECTION_TIMEOUT = 10.0  # everything one connection's card needs
THROUGHPUT_MINUTES = 30
FAILED_SHOWN = 20
ERROR_WIDTH = 300


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


async def connection_stats(manager: QueueManager, probe: Probe, name: str) -> dict[str, Any]:
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
    [answer] = await probe.check([name])
    if not answer["ok"]:
        entry.update(status="unreachable", error=answer["error"])
        return entry
    connection = manager.connection(name)  # resolved and started by the probe
    entry["url"] = connection.spec.display_url
    try:
        entry["queues"] = [await queue_stats(connection, queue) for queue in manager.queues(name)]
    except Exception as error:  # the server went away since the probe answered
        entry.update(status="unreachable", error=await explain(connection, error), queues=[])
    return entry


def failed_entry(job: FailedJobSummary) -> dict[str, Any]:
    return {
        "id": job.id,
        "short_id": job.id[:8],
        "connection": job.connection,
        "queue": job.queue,
        "task": job.task_name,
        "failed_at": job.failed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "error": first_line(job.summary, ERROR_WIDTH),
        "attempts": job.attempts,
    }


async def failed_stats(manager: QueueManager) -> dict[str, Any]:
    try:
        jobs = await manager.failed.summaries(limit=FAILED_SHOWN)  # newest first, no args/payloads/tracebacks
        total = await manager.failed.count()
    except Exception as error:
        return {"total": None, "jobs": [], "error": describe(error)}
    return {"total": total, "jobs": [failed_entry(job) for job in jobs], "error": None}


async def _bounded(manager: QueueManager, probe: Probe, name: str) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(connection_stats(manager, probe, name), CONNECTION_TIMEOUT)
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


async def collect(manager: QueueManager, probe: Probe, names: list[str]) -> dict[str, Any]:
    """The body of ``GET {path}/api/stats`` (and the data the page is first rendered from): ``names`` shown."""
    *connections, failed = await asyncio.gather(
        *(_bounded(manager, probe, name) for name in names), failed_stats(manager)
    )
    hidden = passwords(manager)
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
