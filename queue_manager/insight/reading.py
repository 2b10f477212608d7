"""The readers' side: metrics of the last minutes merged across workers, recent and failed jobs searched by task
and tag, one job's detail, and the live workers (a worker whose heartbeat is older than two of its beats is gone,
and is removed)."""

from __future__ import annotations

import json
import time
from typing import Any

from drivers.base.control import Entry
from queue_manager.insight import histogram
from queue_manager.insight.names import (
    failed_list,
    metrics_map,
    monitored_map,
    recent_list,
    tag_list,
    workers_map,
)
from queue_manager.insight.state import Insightful, insight_state
from queue_manager.insight.tags import clean

MAX_MINUTES = 60
MONITORED_TTL = 604_800  # a monitored tag is kept 7 days after the last tag was added (monitor it again to renew)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _summary(cell: dict[str, Any], minutes: int, series: list[int]) -> dict[str, Any]:
    jobs, failed = cell["n"], cell["f"]
    return {
        "jobs": jobs,
        "failed": failed,
        "jobs_per_minute": round(jobs / minutes, 3),
        "failures_per_minute": round(failed / minutes, 3),
        "runtime_ms": {
            "p50": histogram.percentile(cell["r"], 0.50, cell["rm"]),
            "p95": histogram.percentile(cell["r"], 0.95, cell["rm"]),
            "max": round(cell["rm"], 3) if jobs else None,
        },
        "wait_ms": {
            "p50": histogram.percentile(cell["w"], 0.50, cell["wm"]),
            "p95": histogram.percentile(cell["w"], 0.95, cell["wm"]),
            "max": round(cell["wm"], 3) if sum(cell["w"]) else None,
        },
        "per_minute": series,
    }


def _empty() -> dict[str, Any]:
    return {"n": 0, "f": 0, "r": histogram.empty(), "rm": 0.0, "w": histogram.empty(), "wm": 0.0}


def _merge(into: dict[str, Any], cell: dict[str, Any]) -> None:
    into["n"] += int(cell.get("n", 0))
    into["f"] += int(cell.get("f", 0))
    histogram.added(into["r"], cell.get("r", []))
    histogram.added(into["w"], cell.get("w", []))
    into["rm"] = max(into["rm"], float(cell.get("rm", 0.0)))
    into["wm"] = max(into["wm"], float(cell.get("wm", 0.0)))


async def metrics(
    connection: Insightful, queue: str | None = None, task: str | None = None, minutes: int = MAX_MINUTES
) -> dict[str, Any]:
    """Jobs and failures per minute, runtime and wait (p50/p95/max, ms) per task and per queue over the last
    ``minutes`` (at most 60), as ``queue:work`` workers recorded them; ``per_minute`` counts jobs, oldest first."""
    minutes = max(1, min(int(minutes), MAX_MINUTES))
    state = insight_state(connection)
    await connection.startup()
    now = int(time.time() // 60)
    span = list(range(now - minutes + 1, now + 1))
    maps = await state.entries([metrics_map(connection.name, minute) for minute in span])
    tasks: dict[tuple[str, str], dict[str, Any]] = {}
    queues: dict[str, dict[str, Any]] = {}
    series: dict[tuple[str, str], list[int]] = {}
    queue_series: dict[str, list[int]] = {}
    for index, fields in enumerate(maps):
        for value in fields.values():
            cells = _loads(value)
            if not isinstance(cells, dict):
                continue
            for key, cell in cells.items():
                on, _, name = str(key).partition("\t")
                if (queue is not None and on != queue) or (task is not None and task not in name):
                    continue
                _merge(tasks.setdefault((on, name), _empty()), cell)
                _merge(queues.setdefault(on, _empty()), cell)
                series.setdefault((on, name), [0] * minutes)[index] += int(cell.get("n", 0))
                queue_series.setdefault(on, [0] * minutes)[index] += int(cell.get("n", 0))
    return {
        "connection": connection.name,
        "minutes": minutes,
        "until": (now + 1) * 60,
        "tasks": [
            {"task": name, "queue": on, **_summary(cell, minutes, series[(on, name)])}
            for (on, name), cell in sorted(tasks.items(), key=lambda item: (-item[1]["n"], item[0]))
        ],
        "queues": [{"queue": on, **_summary(cell, minutes, queue_series[on])} for on, cell in sorted(queues.items())],
    }


def _matches(job: dict[str, Any], task: str | None, tag: str | None) -> bool:
    if task and task.lower() not in str(job.get("task", "")).lower():
        return False
    return not tag or tag in (job.get("tags") or [])


async def recent_jobs(
    connection: Insightful,
    failed: bool = False,
    task: str | None = None,
    tag: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The newest completed (or failed) jobs, newest first, those of a task (its name contains ``task``) and/or a
    tag; a monitored tag's own longer list is searched too."""
    state = insight_state(connection)
    await connection.startup()
    name = failed_list(connection.name) if failed else recent_list(connection.name)
    found = [_loads(value) for value in await state.listed(name, 100_000)]
    if tag:
        wanted = "failed" if failed else "completed"
        tagged = [_loads(value) for value in await state.listed(tag_list(connection.name, tag), 100_000)]
        seen = {job.get("id") for job in found if isinstance(job, dict)}
        found += [
            job for job in tagged if isinstance(job, dict) and job.get("status") == wanted and job.get("id") not in seen
        ]
        found.sort(key=lambda job: job.get("finished", 0) if isinstance(job, dict) else 0, reverse=True)
    jobs = [job for job in found if isinstance(job, dict) and _matches(job, task, tag)]
    return jobs[: max(0, limit)]


async def job_detail(connection: Insightful, job_id: str) -> dict[str, Any] | None:
    """A recorded job by its id (completed or failed), or None once it has left both lists."""
    for failed in (True, False):
        for job in await recent_jobs(connection, failed=failed, limit=100_000):
            if job.get("id") == job_id:
                return job
    return None


async def workers(connection: Insightful) -> list[dict[str, Any]]:
    """The ``queue:work`` processes of this connection whose last heartbeat is within two of their beats, oldest
    first; the others are gone, and are removed."""
    state = insight_state(connection)
    await connection.startup()
    name = workers_map(connection.name)
    (fields,) = await state.entries([name])
    now, live, dead = time.time(), [], []
    for field, value in fields.items():
        beat = _loads(value)
        if isinstance(beat, dict) and now - float(beat.get("seen", 0)) <= 2 * float(beat.get("every", 5.0)) + 1:
            live.append(beat)
        else:
            dead.append(field)
    if dead:
        await state.forget(name, dead)
    return sorted(live, key=lambda beat: (beat.get("started", 0), beat.get("id", "")))


async def monitor_tag(connection: Insightful, tag: str) -> str:
    """Horizon's "monitor a tag", at run time: workers keep this tag's jobs in a list of their own, longer (they
    read the monitored tags once a minute). Returns the tag as kept."""
    kept = clean(tag)
    if not kept:
        raise ValueError(f"Cannot monitor the tag {tag!r}: a tag needs a printable character other than a comma.")
    state = insight_state(connection)
    await connection.startup()
    await state.write([Entry(monitored_map(connection.name), kept, str(round(time.time(), 3)), MONITORED_TTL)])
    return kept


async def stop_monitoring_tag(connection: Insightful, tag: str) -> None:
    state = insight_state(connection)
    await connection.startup()
    await state.forget(monitored_map(connection.name), [clean(tag)])


async def monitored_tags(connection: Insightful) -> list[str]:
    """The tags monitored at run time (those of ``QUEUE_INSIGHT__MONITORED_TAGS`` are monitored besides)."""
    state = insight_state(connection)
    await connection.startup()
    (fields,) = await state.entries([monitored_map(connection.name)])
    return sorted(fields)
