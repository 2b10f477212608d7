"""Job tags (Horizon's): declared (``@task(tags=...)``, a job class's ``tags()``), given at dispatch
(``.with_tags(...)``), and automatic ones for the models among the arguments: a pydantic model or any object with an
``id`` is tagged ``ClassName:id``, as Horizon tags Eloquent models. On the wire they are one comma-separated label."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_TAGS = 20  # a job keeps at most this many tags
MAX_TAG = 100  # characters of one tag


def clean(tag: Any) -> str:
    """A tag as kept: text without commas or control characters, at most ``MAX_TAG`` characters."""
    text = "".join(char for char in str(tag) if char.isprintable() and char != ",").strip()
    return text[:MAX_TAG]


def split(label: Any) -> list[str]:
    """The tags a label holds (a comma list, or a list from ``@task(tags=[...])``)."""
    if label is None or label == "":
        return []
    parts = label.split(",") if isinstance(label, str) else list(label) if isinstance(label, Iterable) else [label]
    return [tag for tag in (clean(part) for part in parts) if tag]


def merge_tags(*groups: Any) -> str | None:
    """Several tag labels/lists as one label (each tag once, in order); None when there are none."""
    if not any(groups):  # every dispatch asks: most have no tags
        return None
    tags = list(dict.fromkeys(tag for group in groups for tag in split(group)))[:MAX_TAGS]
    return ",".join(tags) or None


def _model_tag(value: Any) -> str | None:
    if isinstance(value, str | bytes | int | float | bool | Mapping) or value is None:
        return None
    identifier = getattr(value, "id", None)
    if identifier is None or callable(identifier):
        return None
    return clean(f"{type(value).__name__}:{identifier}")


_PLAIN = frozenset({str, int, float, bool, bytes, dict, type(None)})


def auto_tags(args: Iterable[Any], kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """``ClassName:id`` for each argument that is a model (an object with an ``id``), and for models in lists."""
    found: list[str] = []
    for value in [*args, *kwargs.values()] if kwargs else args:
        if type(value) in _PLAIN:  # every dispatch asks: most arguments are plain values
            continue
        items = value if isinstance(value, list | tuple | set) else [value]
        for item in list(items)[:MAX_TAGS]:
            tag = _model_tag(item)
            if tag:
                found.append(tag)
    return found


def job_tags(job: Any) -> list[str]:
    """A job class instance's tags: its ``tags()`` if it has one, else the models among its attributes."""
    declared = getattr(job, "tags", None)
    if callable(declared):
        return split(list(declared()))
    return auto_tags(vars(job).values()) if hasattr(job, "__dict__") else []
