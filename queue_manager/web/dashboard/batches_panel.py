"""The dashboard page's "Batches" panel: a block of its own (``assets/batches.html``, ``.css``, ``.js``) that
``page.render_page`` places on the page. Its script fills it from ``{path}/api/batches`` (as text) and cancels a
batch with ``POST {path}/api/batches/cancel``."""

from __future__ import annotations

from html import escape
from string import Template

from queue_manager.web.dashboard.assets import asset


def batches_section(nonce: str) -> str:
    return Template(asset("batches.html")).substitute(
        nonce=escape(nonce, quote=True), css=asset("batches.css"), script=asset("batches.js")
    )
