"""The dashboard's HTML page: the rows and sparklines rendered here from the stats into ``assets/page.html``,
then kept fresh by its inline script (``assets/page.js``), which polls ``{path}/api/stats`` and redraws the same
markup: no build step, nothing loaded from elsewhere.

Everything shown comes from users' jobs and settings, so it is escaped here (``html.escape``) and set as text
(``textContent``, never ``innerHTML``) by the script; the page's Content-Security-Policy allows only its own
inline script and style (by nonce) and requests to its own origin.
"""

from __future__ import annotations

from html import escape
from string import Template
from typing import Any

from queue_manager.web.dashboard.assets import asset
from queue_manager.web.dashboard.batches_panel import batches_section
from queue_manager.web.dashboard.insight_panels import insight_section

POLL_MS = 2000
DASH = "\u2013"  # an en dash: a count the driver cannot tell
SPARK_WIDTH, SPARK_HEIGHT = 120, 24


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def count(value: int | None) -> str:
    return DASH if value is None else str(value)


def count_cell(field: str, value: int | None) -> str:
    title = ' title="this driver cannot tell"' if value is None else ""
    return f'<td class="num" data-field="{field}"{title}>{count(value)}</td>'


def spark_points(values: list[int]) -> str:
    """The polyline of a sparkline: oldest minute on the left, the busiest minute at the top."""
    if not values:
        return ""
    top = max(values) or 1
    step = SPARK_WIDTH / max(len(values) - 1, 1)
    usable = SPARK_HEIGHT - 2
    return " ".join(f"{i * step:.1f},{SPARK_HEIGHT - 1 - value / top * usable:.1f}" for i, value in enumerate(values))


def sparkline(values: list[int] | None, minutes: int) -> str:
    if values is None:
        return '<span class="na" title="this driver keeps no throughput counters">n/a</span>'
    total, last = sum(values), (values[-1] if values else 0)
    title = f"{total} jobs finished in the last {minutes} minutes; {last} in the current minute"
    return (
        f'<svg class="spark" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}"'
        f' role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>'
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{spark_points(values)}"/></svg>'
        f'<span class="total" data-field="throughput-total">{total}</span>'
    )


def queue_row(connection: str, queue: dict[str, Any], minutes: int) -> str:
    name = _e(queue["name"])
    error = f'<div class="error">{_e(queue["error"])}</div>' if queue.get("error") else ""
    paused = queue.get("paused")
    if paused is None:
        state, button = f'<span class="state">{DASH}</span>', ""
    else:
        action = "resume" if paused else "pause"
        state = f'<span class="state {"paused" if paused else "active"}">{"paused" if paused else "active"}</span>'
        button = (
            f'<button type="button" data-action="{action}" data-connection="{_e(connection)}" data-queue="{name}">'
            f"{action.capitalize()}</button>"
        )
    return (
        f'<tr data-queue="{name}"><td class="name">{name}{error}</td>'
        f"{count_cell('waiting', queue['waiting'])}{count_cell('delayed', queue['delayed'])}"
        f"{count_cell('running', queue['running'])}"
        f'<td data-field="state">{state}</td>'
        f'<td data-field="throughput">{sparkline(queue["throughput"], minutes)}</td>'
        f'<td class="actions">{button}</td></tr>'
    )


QUEUE_HEAD = (
    "<thead><tr><th>Queue</th><th>Waiting</th><th>Delayed</th><th>Running</th><th>State</th>"
    "<th>Throughput</th><th></th></tr></thead>"
)


def connection_card(entry: dict[str, Any], minutes: int) -> str:
    name = _e(entry["name"])
    badges = f'<span class="driver">{_e(entry["driver"])}</span>'
    if entry["default"]:
        badges += '<span class="badge">default</span>'
    if entry["status"] != "ok":
        badges += f'<span class="badge down">{_e(entry["status"])}</span>'
    head = f'<h2><span class="conn-name">{name}</span>{badges}<code class="url">{_e(entry["url"])}</code></h2>'
    if entry["status"] != "ok":
        body = f'<p class="unreachable">{_e(entry["error"] or "")}</p>'
    elif not entry["queues"]:
        body = '<p class="empty">No queues.</p>'
    else:
        rows = "".join(queue_row(entry["name"], queue, minutes) for queue in entry["queues"])
        body = f'<table class="queues">{QUEUE_HEAD}<tbody>{rows}</tbody></table>'
    status = _e(entry["status"])
    return f'<article class="connection" data-connection="{name}" data-status="{status}">{head}{body}</article>'


FAILED_HEAD = (
    "<thead><tr><th>ID</th><th>Connection</th><th>Queue</th><th>Task</th><th>Failed at</th><th>Error</th>"
    "<th></th></tr></thead>"
)


def failed_row(job: dict[str, Any]) -> str:
    ident = _e(job["id"])
    return (
        f'<tr data-failed-id="{ident}"><td><code title="{ident}">{_e(job["short_id"])}</code></td>'
        f"<td>{_e(job['connection'])}</td><td>{_e(job['queue'])}</td><td>{_e(job['task'])}</td>"
        f'<td class="when">{_e(job["failed_at"])}</td><td class="error">{_e(job["error"])}</td>'
        f'<td class="actions"><button type="button" data-action="retry" data-id="{ident}">Retry</button>'
        f'<button type="button" data-action="forget" data-id="{ident}">Forget</button></td></tr>'
    )


def failed_table(failed: dict[str, Any]) -> str:
    if failed["error"]:
        return f'<p class="unreachable">The failed jobs could not be read: {_e(failed["error"])}</p>'
    if not failed["jobs"]:
        return '<p class="empty">No failed jobs.</p>'
    rows = "".join(failed_row(job) for job in failed["jobs"])
    return f'<table class="failed">{FAILED_HEAD}<tbody>{rows}</tbody></table>'


def failed_total(failed: dict[str, Any]) -> str:
    total, shown = failed["total"], len(failed["jobs"])
    if total is None:
        return ""
    return f"{total}" if total == shown else f"newest {shown} of {total}"


def render_page(stats: dict[str, Any], api: str, nonce: str) -> str:
    failed = stats["failed"]
    minutes = stats["throughput_minutes"]
    return Template(asset("page.html")).substitute(
        nonce=_e(nonce),
        css=asset("page.css"),
        script=asset("page.js"),
        api=_e(api),
        poll_ms=POLL_MS,
        poll_seconds=POLL_MS // 1000,
        minutes=minutes,
        generated_at=_e(stats["generated_at"]),
        cards="".join(connection_card(entry, minutes) for entry in stats["connections"]),
        failed_total=_e(failed_total(failed)),
        failed_table=failed_table(failed),
        insight=insight_section(stats, nonce),
        batches=batches_section(nonce),
    )
