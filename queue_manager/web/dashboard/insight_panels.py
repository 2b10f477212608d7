"""The dashboard page's insight panels (metrics, workers, recent and failed jobs with search, a job's detail): a
block of its own (``assets/insight.html``, ``.css``, ``.js``) that ``page.render_page`` places under the failed
jobs. Its script fills the panels from ``{path}/api/metrics``, ``/api/workers`` and ``/api/jobs`` (as text)."""

from __future__ import annotations

from html import escape
from string import Template
from typing import Any

from queue_manager.web.dashboard.assets import asset


def insight_section(stats: dict[str, Any], nonce: str) -> str:
    """The panels' HTML, style and script (both under the page's nonce), with a choice of the shown connections."""
    names = [str(entry["name"]) for entry in stats.get("connections", [])]
    options = "".join(f'<option value="{escape(name, quote=True)}">{escape(name)}</option>' for name in names)
    return Template(asset("insight.html")).substitute(
        nonce=escape(nonce, quote=True), css=asset("insight.css"), script=asset("insight.js"), options=options
    )
