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


def redacted(value: Any, depth: int = 0) -> Any:
    """``value`` with the values of secret-looking keys (``password``, ``api_key``, ``token``, ...) replaced."""
    if depth > MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {
            str(key): REDACTED if SECRET.search(str(key)) else redacted(item, depth + 1) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redacted(item, depth + 1) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
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
    if function is not None:
        try:
            return dict(_signature(function).bind_partial(*args, **kwargs).arguments)
        except (TypeError, ValueError):
            pass
    return {**({"args": list(args)} if args else {}), **kwargs}


_SIGNATURES: dict[Callable[..., Any], inspect.Signature] = {}


def _signature(function: Callable[..., Any]) -> inspect.Signature:
    if function not in _SIGNATURES:
        if len(_SIGNATURES) > 10_000:
            _SIGNATURES.clear()
        _SIGNATURES[function] = inspect.signature(function)
    return _SIGNATURES[function]


def kept_arguments(arguments: dict[str, Any], limit: int) -> tuple[Any, bool]:
    """Redacted arguments, or their JSON cut to ``limit`` characters (and True) when longer."""
    clean = redacted(arguments)
    text = json.dumps(clean, default=str, ensure_ascii=False)
    if len(text) <= limit:
        return clean, False
    return text[:limit] + "…", True
