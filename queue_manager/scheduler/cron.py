"""Cron expressions and offsets as TaskIQ runs them, checked when ``queue:schedule`` starts.

TaskIQ matches cron expressions with pycron at every tick: an expression it cannot read is a warning at each
tick, and some it reads never match (``5-1 * * * *``, ``* * 31 2 *``, ``5/15 * * * *``), so the schedule is
accepted and never runs. Here each is refused at start with what is wrong and how to write it; pycron itself is
the last word on whether anything matches, so this check and TaskIQ's loop never disagree.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycron  # type: ignore[import-untyped]  # TaskIQ's cron matcher: no type hints
from taskiq.scheduler.scheduled_task.validators import discriminate_offset

# minute, hour, day of month, month, day of week: the ranges pycron understands
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]  # pycron knows day names, not month names
_PART = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")
_MATCHES = "is not a number, range, list or */step"
# Every (day of month, month, day of week) falls within 28 years of the Gregorian calendar (1901-2099).
_FIRST_DAY, _DAYS = datetime(2024, 1, 1), 28 * 366
_WEEK = datetime(2024, 1, 7)  # a Sunday


def _value(text: str, field: int) -> int:
    if field == 4 and text.lower() in DAY_NAMES:
        return DAY_NAMES.index(text.lower())
    return int(text)


def _part_problem(part: str, field: int) -> str | None:
    """What is wrong with one comma-separated part of field number ``field``, or None."""
    _, low, high = FIELDS[field]
    match = _PART.match(part)
    if match is None:
        return _MATCHES
    start, end, step = match.groups()
    if start == "*" and end is not None:
        return _MATCHES
    try:
        first = low if start == "*" else _value(start, field)
        last = high if start == "*" else _value(end, field) if end is not None else first
    except ValueError:
        return _MATCHES
    if not (low <= first <= high and low <= last <= high):
        return f"is outside {low}-{high}"
    if first > last:
        return f"is a range that runs backwards: write {end}-{start}, or {start}-{high},{low}-{end} to wrap round"
    if step is None:
        return None
    if int(step) == 0:
        return "has a step of 0"
    if start != "*" and end is None:
        return f"steps from a single value, which never matches: write {start}-{high}/{step}"
    if int(step) > last - first:
        whole = "field" if start == "*" else "range"
        return f"has a step of {step}, longer than the {whole}: it runs only at {first} (write {first} if so meant)"
    return None


def _never_matches(fields: list[str]) -> str | None:
    """Ask pycron (TaskIQ's matcher) whether each field, and the day fields together, match anything at all."""
    minute, hour, day, month, weekday = fields
    probes = [
        (0, f"{minute} * * * *", [_WEEK + timedelta(minutes=n) for n in range(60)]),
        (1, f"* {hour} * * *", [_WEEK + timedelta(hours=n) for n in range(24)]),
        (4, f"* * * * {weekday}", [_WEEK + timedelta(days=n) for n in range(7)]),
    ]
    for field, expression, moments in probes:
        if not any(pycron.is_now(expression, moment) for moment in moments):
            return f"its {FIELDS[field][0]} field {fields[field]!r} never matches (write it with numbers)"
    days = f"* * {day} {month} {weekday}"
    if not any(pycron.is_now(days, _FIRST_DAY + timedelta(days=n)) for n in range(_DAYS)):
        on = f" on day of week {weekday!r}" if weekday != "*" else ""
        return f"no date has day of month {day!r} in month {month!r}{on}, so it would never run: fix the day fields"
    return None


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a cron expression TaskIQ can run, or never runs; None if it is fine."""
    fields = expression.split()
    if len(fields) != len(FIELDS):
        return f"it has {len(fields)} fields, a cron expression has 5 (minute hour day-of-month month day-of-week)"
    for index, field in enumerate(fields):
        for part in field.split(","):
            problem = _part_problem(part, index)
            if problem is not None:
                return f"its {FIELDS[index][0]} field {field!r} {problem}"
    return _never_matches(fields)


def offset_problem(offset: object) -> str | None:
    """Why ``offset`` is not a ``cron_offset`` TaskIQ can use (it tries a time zone name at every tick), or None."""
    fix = "a time zone name ('Europe/Berlin') or a duration ('PT2H', '02:00:00')"
    if not offset or isinstance(offset, timedelta):
        return None
    if not isinstance(offset, str):
        return f"cron_offset {offset!r} must be {fix}"
    if discriminate_offset(offset) == "timedelta":  # TaskIQ's own reading of the string
        return None
    try:
        ZoneInfo(offset)
    except (ZoneInfoNotFoundError, ValueError, ModuleNotFoundError):
        return f"cron_offset {offset!r} is not a time zone name or a duration: write {fix}"
    return None
