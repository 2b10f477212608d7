"""Text that came from a job, made safe to show: a job's error message and arguments are attacker-controlled.

Control characters (a terminal's escape sequences, a carriage return that rewrites a line) are shown escaped
(``\\x1b``), never interpreted, in job lines, logs, commands and the dashboard; what a command prints is also
kept from cleo's markup (``<fg=red>`` stays text). Tabs and newlines are kept where a text may span lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drivers.base import labels

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with its control characters escaped (newlines and tabs kept)."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def first_line(text: str, width: int | None = None) -> str:
    """The first non-blank line of ``text``, printable, cut to ``width`` characters (with an ellipsis)."""
    stripped = text.strip()
    line = printable(stripped.splitlines()[0]) if stripped else ""
    return line if width is None or len(line) <= width else line[: width - 1] + "…"


def error_line(error: BaseException | None, job_labels: Mapping[str, Any] | None = None) -> str:
    """``ValueError: job 7 is broken``; a bare ``TimeoutError`` says what timed out (the job's ``timeout`` label)."""
    if error is None:
        return ""
    timeout = _number((job_labels or {}).get(labels.TIMEOUT))
    name = type(error).__name__
    try:
        line = first_line(str(error))
    except Exception:  # a broken __str__ must not hide the failure
        line = "<unprintable message>"
    if not line and isinstance(error, TimeoutError) and timeout is not None:
        line = f"the job ran longer than its timeout ({timeout:g} s)"
    return f"{name}: {line}" if line else name


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
