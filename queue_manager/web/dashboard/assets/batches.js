(() => {
  "use strict";
  // The Batches panel: name, progress bar, counts, a cancel button. Names come from users: set as text only.
  const root = document.getElementById("dashboard");
  const api = root.dataset.api, pollMs = Number(root.dataset.pollMs) || 2000;
  const target = document.getElementById("batches"), count = document.getElementById("batches-count");

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const status = (b) => b.cancelled ? (b.finished ? "cancelled, finished" : "cancelled")
    : (b.finished ? "finished" : "running");

  async function cancel(id, button) {
    button.disabled = true;
    const response = await fetch(api + "/batches/cancel", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-Requested-With": "fetch" },
      body: JSON.stringify({ id }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      button.title = body.error || String(response.status);
    }
    await refresh();
  }

  function row(b) {
    const bar = h("span", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100,
                            "aria-valuenow": b.progress }, h("span", {}));
    bar.firstChild.style.width = b.progress + "%";
    const button = b.finished || b.cancelled ? ""
      : h("button", { type: "button", "data-action": "cancel-batch", "data-id": b.id }, "Cancel");
    if (button) button.addEventListener("click", () => cancel(b.id, button));
    return h("tr", { "data-batch-id": b.id, "data-failed": b.failed_jobs ? 1 : 0 },
      h("td", { class: "name" }, b.name || "(unnamed)"), h("td", {}, h("code", { title: b.id }, b.id.slice(0, 8))),
      h("td", {}, bar, " " + b.progress + "%"),
      h("td", { class: "num", "data-field": "total" }, b.total_jobs),
      h("td", { class: "num", "data-field": "pending" }, b.pending_jobs),
      h("td", { class: "num", "data-field": "processed" }, b.processed_jobs),
      h("td", { class: "num", "data-field": "failed" }, b.failed_jobs),
      h("td", { class: "status", "data-field": "status" }, status(b)), h("td", { class: "actions" }, button));
  }

  async function refresh() {
    try {
      const response = await fetch(api + "/batches", { headers: { "Accept": "application/json" },
                                                        cache: "no-store", credentials: "same-origin" });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || String(response.status));
      count.textContent = body.batches.length ? String(body.batches.length) : "";
      if (!body.batches.length) return target.replaceChildren(h("p", { class: "empty" }, "No batches."));
      const head = ["Name", "ID", "Progress", "Total", "Pending", "Processed", "Failed", "Status", ""];
      target.replaceChildren(h("table", { class: "batches" },
        h("thead", {}, h("tr", {}, head.map((text) => h("th", {}, text)))), h("tbody", {}, body.batches.map(row))));
    } catch (error) {
      target.replaceChildren(h("p", { class: "unreachable" }, "The batches could not be read: " + error.message));
    }
  }

  refresh();
  setInterval(refresh, pollMs);
})();
