"""Settings errors people can act on: the variable to fix, the closest valid name, never the value (it may
hold a password)."""

from __future__ import annotations

import json
import os
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings

from drivers import DRIVERS, QueueConfigurationError
from drivers.base.errors import did_you_mean
from queue_manager.settings.connection import url_variables

#: The connections every app has, each named after its driver (redis, redis_stream, rabbitmq, nats, memory).
DEFAULT_CONNECTIONS: tuple[str, ...] = tuple(name for name, info in DRIVERS.items() if info.default_connection)


def _holds_json(path: list[str]) -> bool:
    """Is this variable (its name after the prefix, split on ``__``) one that pydantic-settings parses as JSON?"""
    return (len(path) == 1 and path[0] in ("CONNECTIONS", "DRIVERS")) or (
        len(path) == 3 and path[0] == "CONNECTIONS" and path[2] == "OPTIONS"
    )


def unparsable_env_error(settings: type[BaseSettings]) -> QueueConfigurationError:
    """Name the variable whose JSON value does not parse (pydantic-settings names only the field)."""
    prefix = str(settings.model_config.get("env_prefix") or "").upper()
    culprits = []
    for name, value in os.environ.items():
        upper = name.upper()
        if upper.startswith(prefix) and _holds_json(upper[len(prefix) :].split("__")):
            try:
                json.loads(value)
            except ValueError:
                culprits.append(name)
    which = ", ".join(sorted(culprits)) or f"A {prefix}* variable"
    return QueueConfigurationError(
        f'{which} must hold JSON (an object such as {{"result_ttl": 60}}) but does not parse. '
        "Fix it in your .env, or remove it."
    )


def describe_validation_error(
    error: ValidationError,
    model: type[BaseModel] | None = None,
    env_prefix: str = "",
    path: tuple[str, ...] = (),
    list_valid: bool = True,
) -> str:
    """One line per problem, without the offending values (they may hold a password): where (``path`` + the
    problem's location in ``model``), the env variable that sets it, and for an unknown name the closest
    valid one."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        loc = (*path, *(str(part) for part in problem["loc"]))
        where = ".".join(loc) or "settings"
        if env_prefix and loc:
            variable = f"{env_prefix}{'__'.join(loc).upper()}"
            if len(loc) == 3 and loc[0] == "connections" and loc[2] == "url":
                variable += f", or {url_variables().replace(', ', ' / ')}"
            where += f" ({variable})"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden" and model is not None:
            valid = _field_names_at(model, [str(part) for part in problem["loc"][:-1]])
            if valid:
                message = f"no such setting.{did_you_mean(loc[-1], valid)}"
                if list_valid:
                    message += f" Valid here: {', '.join(valid)}"
        elif problem["type"] == "missing" and len(loc) == 3 and loc[0] == "connections" and loc[2] == "driver":
            drivers = "|".join(DEFAULT_CONNECTIONS)
            message = (
                f"'{loc[1]}' is not one of the default connections ({', '.join(DEFAULT_CONNECTIONS)}), so it needs "
                f"a driver: {env_prefix or 'QUEUE_'}CONNECTIONS__{loc[1].upper()}__DRIVER=<{drivers}>."
                + did_you_mean(loc[1], DEFAULT_CONNECTIONS)
            )
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def _field_names_at(model: Any, loc: list[str]) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model`` (dict keys stepped over), for a
    did-you-mean; empty when ``loc`` leads elsewhere."""
    for part in loc:
        model = _without_none(model)
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                return []
            model = field.annotation
        elif get_origin(model) is dict:
            model = get_args(model)[1]
        else:
            return []
    model = _without_none(model)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _without_none(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(annotation) in (Union, UnionType):
        others = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(others) == 1:
            return others[0]
    return annotation
