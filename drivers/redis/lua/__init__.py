"""The Redis drivers' Lua scripts, kept as files (``fetch.lua``, ...) so they read, diff and lint as Lua."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def source(name: str) -> str:
    """The text of ``<name>.lua``, read once."""
    return files(__name__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
