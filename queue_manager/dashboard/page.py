"""The dashboard's HTML page: rendered here from the stats, then kept fresh by a few lines of inline JS that
poll ``{path}/api/stats`` and redraw the same markup (no build step, nothing loaded from elsewhere).

Everything shown comes from users' jobs and settings, so it is escaped here (``html.escape``) and set
as text (``textContent``, never ``innerHTML``) by the script; the page's Content-Security-Policy allows only
its own inline script and style (by nonce) and requests to its own origin.
"""

from __future__ import annotations

from html import escape
from typing import Any

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
    minutes = stats["throughput_minutes"]
    cards = "".join(connection_card(entry, minutes) for entry in stats["connections"])
    failed = stats["failed"]
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Queues</title>
<style nonce="{_e(nonce)}">{CSS}</style>
</head>
<body>
<main id="dashboard" data-api="{_e(api)}" data-poll-ms="{POLL_MS}" data-minutes="{minutes}">
<header>
<h1>Queues</h1>
<p class="meta"><span id="updated" data-at="{_e(stats["generated_at"])}">updated {_e(stats["generated_at"])}</span>
<span id="live" class="live">refreshes every {POLL_MS // 1000} s</span></p>
</header>
<p id="notice" role="status" hidden></p>
<section id="connections">{cards}</section>
<section id="failed-jobs">
<h2>Recent failed jobs <span id="failed-total" class="count">{_e(failed_total(failed))}</span></h2>
<div id="failed">{failed_table(failed)}</div>
</section>
</main>
<script nonce="{_e(nonce)}">{SCRIPT}</script>
</body>
</html>
"""


CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --card: #fff; --bg: #f6f8fa;
  --accent: #0969da; --warn: #9a6700; --bad: #cf222e; --good: #1a7f37; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #8d96a0; --line: #30363d; --card: #161b22;
  --bg: #0d1117; --accent: #4493f8; --warn: #d29922; --bad: #f85149; --good: #3fb950; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 20px; }
header { display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
h1 { font-size: 22px; margin: 0 0 12px; }
h2 { font-size: 15px; margin: 0 0 10px; display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.meta { color: var(--muted); margin: 0; display: flex; gap: 12px; }
.live::before { content: "\\25CF "; color: var(--good); }
.live.offline::before { color: var(--bad); }
#notice { padding: 8px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--card); }
#notice.bad { border-color: var(--bad); color: var(--bad); }
.connection, #failed-jobs { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 14px 16px; margin: 0 0 14px; overflow-x: auto; }
.driver, .badge { font-size: 12px; font-weight: 500; border: 1px solid var(--line); border-radius: 10px;
  padding: 0 8px; color: var(--muted); }
.badge { color: var(--accent); border-color: var(--accent); }
.badge.down { color: var(--bad); border-color: var(--bad); }
.url { font-weight: 400; color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-top: 1px solid var(--line); vertical-align: middle; }
th { font-size: 12px; font-weight: 600; color: var(--muted); border-top: 0; }
td.num { font-variant-numeric: tabular-nums; text-align: right; width: 80px; }
table.queues { table-layout: fixed; }
table.queues th:nth-child(2), table.queues th:nth-child(3), table.queues th:nth-child(4) { text-align: right;
  width: 90px; }
table.queues th:nth-child(5) { width: 110px; }
table.queues th:nth-child(6) { width: 190px; }
table.queues th:nth-child(7) { width: 110px; }
.name { word-break: break-all; }
.state { font-size: 12px; padding: 1px 8px; border-radius: 10px; }
.state.active { color: var(--good); border: 1px solid var(--good); }
.state.paused { color: var(--warn); border: 1px solid var(--warn); font-weight: 600; }
.spark { color: var(--accent); vertical-align: middle; }
.total { margin-left: 8px; color: var(--muted); font-variant-numeric: tabular-nums; }
.na, .empty { color: var(--muted); }
.error { color: var(--bad); font-size: 12px; word-break: break-word; }
.unreachable { color: var(--bad); margin: 0; word-break: break-word; }
.when { white-space: nowrap; }
.actions { white-space: nowrap; text-align: right; }
button { font: inherit; font-size: 12px; padding: 3px 10px; margin-left: 4px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--line); background: var(--bg); color: var(--fg); }
button:hover { border-color: var(--accent); }
button:disabled { opacity: .5; cursor: wait; }
.count { color: var(--muted); font-weight: 400; }
"""

# The same markup as the Python above, built with DOM calls from the JSON of GET {api}/stats.
SCRIPT = r"""
(() => {
  "use strict";
  const root = document.getElementById("dashboard");
  const api = root.dataset.api, pollMs = Number(root.dataset.pollMs) || 2000;
  const DASH = "\u2013", W = 120, H = 24, SVG = "http://www.w3.org/2000/svg";
  const HEADERS = { "Accept": "application/json", "X-Requested-With": "queue-dashboard" };

  function h(tag, attrs, ...children) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const unknown = (value) => value === null || value === undefined;
  const countCell = (field, value) => h("td", { class: "num", "data-field": field,
                                               title: unknown(value) ? "this driver cannot tell" : null },
                                        unknown(value) ? DASH : String(value));

  function sparkline(values, minutes) {
    if (values === null || values === undefined) {
      return h("span", { class: "na", title: "this driver keeps no throughput counters" }, "n/a");
    }
    const total = values.reduce((a, b) => a + b, 0), last = values.length ? values[values.length - 1] : 0;
    const top = Math.max(...values, 0) || 1, step = W / Math.max(values.length - 1, 1);
    const points = values.map((v, i) => `${(i * step).toFixed(1)},${(H - 1 - (v / top) * (H - 2)).toFixed(1)}`);
    const title = `${total} jobs finished in the last ${minutes} minutes; ${last} in the current minute`;
    const svg = h("svg:svg", { class: "spark", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img",
                               "aria-label": title },
      h("svg:title", {}, title),
      h("svg:polyline", { fill: "none", stroke: "currentColor", "stroke-width": "1.5", points: points.join(" ") }));
    return [svg, h("span", { class: "total", "data-field": "throughput-total" }, String(total))];
  }

  function queueRow(connection, queue, minutes) {
    let state = h("span", { class: "state" }, DASH), button = null;
    if (queue.paused !== null && queue.paused !== undefined) {
      const action = queue.paused ? "resume" : "pause";
      state = h("span", { class: "state " + (queue.paused ? "paused" : "active") }, queue.paused ? "paused" : "active");
      button = h("button", { type: "button", "data-action": action, "data-connection": connection,
                             "data-queue": queue.name }, action[0].toUpperCase() + action.slice(1));
    }
    return h("tr", { "data-queue": queue.name },
      h("td", { class: "name" }, queue.name, queue.error ? h("div", { class: "error" }, queue.error) : null),
      countCell("waiting", queue.waiting), countCell("delayed", queue.delayed), countCell("running", queue.running),
      h("td", { "data-field": "state" }, state),
      h("td", { "data-field": "throughput" }, sparkline(queue.throughput, minutes)),
      h("td", { class: "actions" }, button));
  }

  function head(...names) { return h("thead", {}, h("tr", {}, names.map((name) => h("th", {}, name)))); }

  function card(entry, minutes) {
    const title = h("h2", {}, h("span", { class: "conn-name" }, entry.name),
      h("span", { class: "driver" }, entry.driver),
      entry.default ? h("span", { class: "badge" }, "default") : null,
      entry.status !== "ok" ? h("span", { class: "badge down" }, entry.status) : null,
      h("code", { class: "url" }, entry.url));
    let body;
    if (entry.status !== "ok") body = h("p", { class: "unreachable" }, entry.error || "");
    else if (!entry.queues.length) body = h("p", { class: "empty" }, "No queues.");
    else body = h("table", { class: "queues" },
      head("Queue", "Waiting", "Delayed", "Running", "State", "Throughput", ""),
      h("tbody", {}, entry.queues.map((queue) => queueRow(entry.name, queue, minutes))));
    const attrs = { class: "connection", "data-connection": entry.name, "data-status": entry.status };
    return h("article", attrs, title, body);
  }

  function failedTable(failed) {
    if (failed.error) return h("p", { class: "unreachable" }, "The failed jobs could not be read: " + failed.error);
    if (!failed.jobs.length) return h("p", { class: "empty" }, "No failed jobs.");
    return h("table", { class: "failed" }, head("ID", "Connection", "Queue", "Task", "Failed at", "Error", ""),
      h("tbody", {}, failed.jobs.map((job) => h("tr", { "data-failed-id": job.id },
        h("td", {}, h("code", { title: job.id }, job.short_id)), h("td", {}, job.connection), h("td", {}, job.queue),
        h("td", {}, job.task), h("td", { class: "when" }, job.failed_at), h("td", { class: "error" }, job.error),
        h("td", { class: "actions" },
          h("button", { type: "button", "data-action": "retry", "data-id": job.id }, "Retry"),
          h("button", { type: "button", "data-action": "forget", "data-id": job.id }, "Forget"))))));
  }

  function failedTotal(failed) {
    if (failed.total === null || failed.total === undefined) return "";
    const listed = failed.jobs.length;
    return failed.total === listed ? String(failed.total) : `newest ${listed} of ${failed.total}`;
  }

  let shown = null;
  function render(stats) {
    const updated = document.getElementById("updated");
    updated.dataset.at = stats.generated_at;
    updated.textContent = "updated " + new Date(stats.generated_at).toLocaleTimeString();
    const { generated_at, ...content } = stats;
    const key = JSON.stringify(content);
    if (key === shown) return;  // nothing changed: keep the DOM (and the focus) as it is
    shown = key;
    document.getElementById("connections").replaceChildren(
      ...stats.connections.map((entry) => card(entry, stats.throughput_minutes)));
    document.getElementById("failed").replaceChildren(failedTable(stats.failed));
    document.getElementById("failed-total").textContent = failedTotal(stats.failed);
  }

  function notice(text, bad) {
    const node = document.getElementById("notice");
    node.textContent = text;
    node.className = bad ? "bad" : "";
    node.hidden = !text;
  }

  function live(ok, why) {
    const node = document.getElementById("live");
    node.classList.toggle("offline", !ok);
    node.textContent = ok ? `refreshes every ${pollMs / 1000} s` : "cannot reach the server: " + why;
  }

  let timer = null, running = false, again = false;
  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    clearTimeout(timer);
    try {
      const response = await fetch(api + "/stats", { headers: HEADERS, cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      live(true);
    } catch (error) {
      live(false, error.message);
    } finally {
      running = false;
      if (again) { again = false; refresh(); } else { timer = setTimeout(refresh, pollMs); }
    }
  }

  const DONE = { pause: "paused", resume: "resumed", retry: "sent back to its queue", forget: "forgotten" };
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action, queueAction = action === "pause" || action === "resume";
    if (action === "forget" && !window.confirm(`Forget failed job ${button.dataset.id.slice(0, 8)}?`)) return;
    const url = api + (queueAction ? "/queues/" : "/failed/") + action;
    const body = queueAction ? { connection: button.dataset.connection, queue: button.dataset.queue }
                             : { id: button.dataset.id };
    const what = queueAction ? `${body.connection}:${body.queue}` : `Failed job ${body.id.slice(0, 8)}`;
    button.disabled = true;
    try {
      const response = await fetch(url, { method: "POST", credentials: "same-origin", body: JSON.stringify(body),
                                           headers: { ...HEADERS, "Content-Type": "application/json" } });
      const data = await response.json().catch(() => ({}));
      if (response.ok) notice(`${what} ${DONE[action]}.`, false);
      else notice(data.error || `${action} failed: HTTP ${response.status}`, true);
    } catch (error) {
      notice(`${action} failed: ${error.message}`, true);
    } finally {
      button.disabled = false;
      shown = null;
      refresh();
    }
  });

  timer = setTimeout(refresh, pollMs);
})();
"""
