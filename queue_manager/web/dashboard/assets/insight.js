(() => {
  "use strict";
  // (No dollar sign in this file: the page's test checks that no template placeholder is left unfilled.)
  // Insight panels: metrics, workers, recent/failed jobs with search and a job's detail. Everything shown is set
  // as text (textContent, createElement): arguments, tags and errors are attacker-controlled.
  const root = document.getElementById("dashboard");
  const api = root.dataset.api, pollMs = Number(root.dataset.pollMs) || 2000;
  const DASH = "\u2013", W = 90, H = 20, SVG = "http://www.w3.org/2000/svg";
  const byId = (id) => document.getElementById(id);
  const select = byId("insight-connection");
  const MAX_TASKS = 25;
  let list = "completed";

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
  const ms = (v) => (v === null || v === undefined) ? DASH : (v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms");
  const when = (t) => new Date(t * 1000).toLocaleTimeString();
  const num = (field, value, title) => h("td", { class: "num", "data-field": field, title }, value);
  const note = (target, text, cls) => target.replaceChildren(h("p", { class: cls || "empty" }, text));

  async function get(path, params) {
    const query = new URLSearchParams({ connection: select ? select.value : "", ...(params || {}) });
    const response = await fetch(api + "/" + path + "?" + query, { headers: { "Accept": "application/json" },
                                                               cache: "no-store", credentials: "same-origin" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || response.status + " " + response.statusText);
    return body;
  }

  function spark(values) {
    const top = Math.max(...values, 0) || 1, step = W / Math.max(values.length - 1, 1);
    const points = values.map((v, i) => (i * step).toFixed(1) + "," + (H - 1 - (v / top) * (H - 2)).toFixed(1));
    return h("svg:svg", { class: "spark", width: W, height: H, viewBox: "0 0 " + W + " " + H, "aria-hidden": "true" },
      h("svg:polyline", { fill: "none", stroke: "currentColor", "stroke-width": "1.5", points: points.join(" ") }));
  }

  function table(head, rows, cls) {
    return h("table", { class: cls }, h("thead", {}, h("tr", {}, head.map(([text, c]) => h("th", { class: c }, text)))),
      h("tbody", {}, rows));
  }

  async function metrics() {
    const target = byId("insight-metrics");
    try {
      const found = await get("metrics", { queue: byId("insight-queue").value.trim() });
      if (!found.tasks.length) return note(target, "No jobs recorded in the last hour.");
      const rows = found.tasks.slice(0, MAX_TASKS).map((row) => h("tr", { "data-task": row.task, "data-queue": row.queue },
        h("td", { class: "name" }, row.task), h("td", {}, row.queue),
        num("jobs", row.jobs), num("jobs-per-minute", row.jobs_per_minute),
        num("failed", row.failed, null), h("td", {}, spark(row.per_minute)),
        num("runtime-p50", ms(row.runtime_ms.p50)), num("runtime-p95", ms(row.runtime_ms.p95)),
        num("runtime-max", ms(row.runtime_ms.max)), num("wait-p50", ms(row.wait_ms.p50)),
        num("wait-p95", ms(row.wait_ms.p95)), num("wait-max", ms(row.wait_ms.max))));
      const more = found.tasks.length > MAX_TASKS
        ? h("p", { class: "empty" }, "The " + MAX_TASKS + " busiest of " + found.tasks.length + " tasks: pick a queue to see others.")
        : null;
      target.replaceChildren(table([["Task"], ["Queue"], ["Jobs", "num"], ["Jobs/min", "num"], ["Failed", "num"],
        ["Per minute"], ["Runtime p50", "num"], ["p95", "num"], ["max", "num"], ["Wait p50", "num"], ["p95", "num"],
        ["max", "num"]], rows, "metrics"), more || "");
    } catch (error) { note(target, error.message, "unreachable"); }
  }

  async function workers() {
    const target = byId("insight-workers");
    try {
      const found = (await get("workers")).workers;
      byId("insight-workers-count").textContent = String(found.length);
      if (!found.length) return note(target, "No live workers.");
      const now = Date.now() / 1000;
      const rows = found.map((w) => h("tr", { "data-worker": w.id },
        h("td", {}, w.host), num("pid", w.pid), h("td", {}, w.queues.join(", ")),
        num("up", Math.max(0, Math.round(now - w.started)) + " s"), num("jobs-done", w.jobs_done),
        h("td", { "data-field": "running" }, w.running.length ? w.running.map((job) => job.task).join(", ") : DASH)));
      target.replaceChildren(table([["Host"], ["PID", "num"], ["Queues"], ["Up", "num"], ["Jobs done", "num"],
        ["Running now"]], rows, "workers"));
    } catch (error) { note(target, error.message, "unreachable"); }
  }

  async function jobs() {
    const target = byId("insight-jobs");
    const params = { failed: list === "failed" ? "1" : "0", task: byId("insight-task").value.trim(),
                     tag: byId("insight-tag").value.trim(), limit: "50" };
    try {
      const found = (await get("jobs", params)).jobs;
      if (!found.length) return note(target, list === "failed" ? "No failed jobs found." : "No jobs found.");
      const rows = found.map((job) => h("tr", { class: "job", "data-job-id": job.id, tabindex: "0" },
        h("td", { class: "when" }, when(job.finished)), h("td", { class: "name" }, job.task), h("td", {}, job.queue),
        h("td", {}, (job.tags || []).map((tag) => h("span", { class: "tag" }, tag))),
        num("attempts", job.attempts), num("runtime", ms(job.runtime_ms)),
        list === "failed" ? h("td", { class: "error" }, job.error || "") : null));
      const head = [["Finished"], ["Task"], ["Queue"], ["Tags"], ["Attempts", "num"], ["Runtime", "num"]];
      if (list === "failed") head.push(["Error"]);
      target.replaceChildren(table(head, rows, "jobs"));
    } catch (error) { note(target, error.message, "unreachable"); }
  }

  async function detail(id) {
    byId("insight-job-id").textContent = id;
    byId("insight-job-body").textContent = "Loading\u2026";
    byId("insight-job").hidden = false;
    try {
      byId("insight-job-body").textContent = JSON.stringify(await get("jobs/" + encodeURIComponent(id)), null, 2);
    } catch (error) { byId("insight-job-body").textContent = error.message; }
  }

  byId("insight-jobs").addEventListener("click", (event) => {
    const row = event.target.closest("tr.job");
    if (row) detail(row.dataset.jobId);
  });
  byId("insight-jobs").addEventListener("keydown", (event) => {
    const row = event.target.closest("tr.job");
    if (row && event.key === "Enter") detail(row.dataset.jobId);
  });
  byId("insight-job-close").addEventListener("click", () => { byId("insight-job").hidden = true; });
  byId("insight-search").addEventListener("submit", (event) => { event.preventDefault(); jobs(); });
  for (const button of document.querySelectorAll("#insight .tabs button")) {
    button.addEventListener("click", () => {
      list = button.dataset.list;
      for (const other of document.querySelectorAll("#insight .tabs button")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      jobs();
    });
  }
  if (select) select.addEventListener("change", () => { metrics(); workers(); jobs(); });
  byId("insight-queue").addEventListener("change", metrics);
  const refresh = () => { metrics(); workers(); jobs(); };  // an open job's detail stays as it is
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, pollMs);
})();
