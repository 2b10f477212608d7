"""The dashboard page's HTML skeleton, CSS and JS, kept as files so they read, diff and lint as what they are."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def asset(name: str) -> str:
    """The text of ``name`` (``page.css``, ...), read once."""
    return files(__name__).joinpath(name).read_text(encoding="utf-8")
