"""What a recent or failed job looks like once recorded: its arguments by parameter name, with secret-looking
names redacted and the whole cut at a size limit (arguments are the app's data, and attacker-controlled text)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from collections.abc import Callable
from typing import Any

SECRET = re.compile(r"pass|secret|token|key|auth|credential|cookie|session|signature|private|otp|pin\b", re.I)
REDACTED = "********"
MAX_DEPTH = 6


_PLAIN = (str, int, float, bool, type(None))
_SECRET_KEYS: dict[str, bool] = {}  # a worker sees the same few argument names again and again


def _secret(key: str) -> bool:
    found = _SECRET_KEYS.get(key)
    if found is None:
        if len(_SECRET_KEYS) > 10_000:
            _SECRET_KEYS.clear()
        found = _SECRET_KEYS[key] = SECRET.search(key) is not None
    return found


def redacted(value: Any, depth: int = 0) -> Any:
    """``value`` with the values of secret-looking keys (``password``, ``api_key``, ``token``, ...) replaced."""
    if isinstance(value, _PLAIN):  # most arguments: first
        return value
    if depth > MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {str(key): REDACTED if _secret(str(key)) else redacted(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item, depth + 1) for item in value]
    dump = getattr(value, "model_dump", None)  # a pydantic model the worker parsed the argument into
    if callable(dump):
        try:
            return redacted(dump(mode="json"), depth + 1)
        except Exception:
            return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return redacted(dataclasses.asdict(value), depth + 1)
    return str(value)


def named_arguments(function: Callable[..., Any] | None, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments by their parameter's name (so ``password`` is found in a positional argument too)."""
    if function is not None and args:
        names, rest = _positional(function)
        if len(args) <= len(names) or rest is not None:
            named = dict(zip(names, args, strict=False))
            if len(args) > len(names):
                named[rest or "args"] = list(args[len(names) :])
            return {**named, **kwargs}
    return {**({"args": list(args)} if args else {}), **kwargs}


_POSITIONAL: dict[Callable[..., Any], tuple[list[str], str | None]] = {}
_BY_POSITION = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _positional(function: Callable[..., Any]) -> tuple[list[str], str | None]:
    """The names its positional arguments bind to, and its ``*args`` name (None without one); read once."""
    known = _POSITIONAL.get(function)
    if known is None:
        if len(_POSITIONAL) > 10_000:
            _POSITIONAL.clear()
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            parameters = []
        names = [p.name for p in parameters if p.kind in _BY_POSITION]
        rest = next((p.name for p in parameters if p.kind is inspect.Parameter.VAR_POSITIONAL), None)
        known = _POSITIONAL[function] = (names, rest)
    return known


def kept_arguments(arguments: dict[str, Any], limit: int) -> tuple[str, bool]:
    """The redacted arguments as JSON, or (and True) their JSON cut to ``limit`` characters, as a JSON string."""
    text = json.dumps(redacted(arguments), default=str, ensure_ascii=False)
    if len(text) <= limit:
        return text, False
    return json.dumps(text[:limit] + "…", ensure_ascii=False), True
