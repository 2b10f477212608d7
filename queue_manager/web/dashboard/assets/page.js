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
