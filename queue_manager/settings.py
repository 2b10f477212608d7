"""Queue settings from ``.env``, merged into the five default connections.

``QUEUE_CONNECTIONS__REDIS__URL=...`` alone changes one field of one
connection: ``merge_defaults`` lays every override over the defaults, field by
field. Config passed to the provider wins over env, env over defaults.

The ``QUEUE_*`` variables are read by ``settings_from_env`` rather than
pydantic-settings: importing pydantic-settings alone cost 14 ms of every boot
(the provider's whole budget is 30 ms), and these few nested names are all it did.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ImportString,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from drivers import BrokerSpec, QueueConfigurationError, mask_url

DEFAULT_CONNECTIONS: tuple[str, ...] = ("redis", "redis_stream", "rabbitmq", "nats", "memory")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def redis_url_from_env() -> str:
    """``REDIS_URL``, else built from the seed's (and fastapi-startkit's) ``REDIS_*`` variables."""
    if url := os.environ.get("REDIS_URL"):
        return url
    host, port, db = _env("REDIS_HOST", "127.0.0.1"), _env("REDIS_PORT", "6379"), _env("REDIS_DB", "0")
    if not port.isdigit():
        raise QueueConfigurationError(f"REDIS_PORT must be a port number, got {port!r}. Fix it in your .env.")
    if not db.isdigit():
        raise QueueConfigurationError(f"REDIS_DB must be a database number, got {db!r}. Fix it in your .env.")
    user, password = os.environ.get("REDIS_USERNAME") or "", os.environ.get("REDIS_PASSWORD") or ""
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def rabbitmq_url_from_env() -> str:
    return _env("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def nats_url_from_env() -> str:
    return _env("NATS_URL", "nats://127.0.0.1:4222")


ENV_URLS: dict[str, Callable[[], str]] = {
    "redis": redis_url_from_env,
    "redis_stream": redis_url_from_env,
    "rabbitmq": rabbitmq_url_from_env,
    "nats": nats_url_from_env,
}


def queue_name_rule(value: str) -> str:
    """Queue names become Redis keys, AMQP queue names and NATS subjects: keep them plain."""
    if not value or len(value) > 200:
        raise ValueError("a queue name must be 1 to 200 characters long")
    if any(ch.isspace() for ch in value) or any(ch in value for ch in "*>"):
        raise ValueError("a queue name may not contain spaces, '*' or '>'")
    return value


class ConnectionSettings(BaseModel):
    """One named connection. ``url`` is secret: repr and errors show it masked."""

    model_config = ConfigDict(extra="forbid")

    driver: str = Field(min_length=1)
    url: SecretStr | None = None
    queue: str = Field("default", min_length=1, max_length=200)
    result_backend: bool = True
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("queue")
    @classmethod
    def _plain_queue_name(cls, value: str) -> str:
        return queue_name_rule(value)

    @property
    def url_value(self) -> str | None:
        return self.url.get_secret_value() if self.url else None

    def spec(self, name: str) -> BrokerSpec:
        return BrokerSpec(name, self.driver, self.url_value, self.queue, self.result_backend, dict(self.options))

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield (key, mask_url(self.url_value) if key == "url" and self.url_value else value)


def default_connections() -> dict[str, dict[str, Any]]:
    return {name: {"driver": name} for name in DEFAULT_CONNECTIONS}


def _as_dict(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return {key: getattr(value, key) for key in value.model_fields_set}
    return value


ENV_PREFIX = "QUEUE_"
# Settings fields that QUEUE_<NAME> variables fill; other QUEUE_* variables (the worker's
# QUEUE_APP, QUEUE_WORKER_*) are not settings.
ENV_FIELDS = ("driver", "connection", "connections", "drivers")


def env_value(name: str, value: str) -> Any:
    """A variable's value; one that starts with ``{`` or ``[`` is JSON."""
    if not value.lstrip().startswith(("{", "[")):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        # from None: the decode error carries the value, which may hold a password.
        raise QueueConfigurationError(
            f"{name} looks like JSON but does not parse ({error.msg}). Fix it in your .env."
        ) from None


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``QUEUE_*`` variables as nested settings, case-insensitive, ``__`` between levels.

    ``QUEUE_CONNECTIONS__REDIS__OPTIONS__MAX_CONNECTIONS=5`` becomes
    ``{"connections": {"redis": {"options": {"max_connections": "5"}}}}``; QUEUE_DRIVER wins
    over its alias QUEUE_CONNECTION.
    """
    data: dict[str, Any] = {}
    for name, value in sorted((os.environ if environ is None else environ).items()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in ENV_FIELDS or not all(path) or (len(path) > 1 and path[0] in ("driver", "connection")):
            continue
        node = data
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise QueueConfigurationError(f"{name} sets a field inside a value that is not a mapping.")
            node = child
        node[path[-1]] = env_value(name, value)
    connection_alias = data.pop("connection", None)
    if connection_alias is not None:
        data.setdefault("driver", connection_alias)
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``; mappings on both sides merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        value = _as_dict(value)
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class QueueSettings(BaseModel):
    """The queue configuration; see DESIGN.md "Configuration" for every variable.

    Building one reads the ``QUEUE_*`` environment variables; values passed in win over them.
    """

    model_config = ConfigDict(extra="forbid")

    driver: str = Field("redis", min_length=1, description="name of the default connection")
    connections: dict[str, ConnectionSettings] = Field(default_factory=dict)
    drivers: dict[str, ImportString[Callable[..., Any]]] = Field(
        default_factory=dict,
        description="custom drivers: name -> factory(spec) -> AsyncBroker, or its 'module:attribute' path",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise QueueConfigurationError(
                "Invalid queue settings (from .env QUEUE_* variables or the QueueProvider config):\n"
                + describe_validation_error(error)
            ) from None

    @model_validator(mode="before")
    @classmethod
    def merge_defaults(cls, data: Any) -> Any:
        """Lay env and config overrides over the default connections, field by field."""
        if not isinstance(data, Mapping):
            return data
        data = deep_merge(settings_from_env(), data)
        given = _as_dict(data.get("connections")) or {}
        if not isinstance(given, Mapping):
            return data
        # A subclass (the published config/queue.py) may add connections as its field default.
        declared = cls.model_fields["connections"].get_default(call_default_factory=True) or {}
        merged: dict[str, Any] = default_connections()
        for name, override in [*declared.items(), *given.items()]:
            override = _as_dict(override)
            if not isinstance(override, Mapping):
                merged[name] = override
                continue
            base = merged.get(name, {})
            options = {**base.get("options", {}), **(_as_dict(override.get("options")) or {})}
            merged[name] = {**base, **override, "options": options}
        for connection in merged.values():
            if isinstance(connection, dict) and not connection.get("url"):
                env_url = ENV_URLS.get(str(connection.get("driver")))
                if env_url is not None:
                    connection["url"] = env_url()
        return {**data, "connections": merged}

    def __repr_args__(self) -> Any:
        yield ("driver", self.driver)
        yield ("connections", self.connections)
        if self.drivers:
            yield ("drivers", sorted(self.drivers))


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, without the offending values (they may hold a password)."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "settings"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)


def load_settings(config: Any = None) -> QueueSettings:
    """Build settings from provider config (a QueueSettings, a mapping, or nothing) over env."""
    if isinstance(config, QueueSettings):
        return config
    if config is None or isinstance(config, Mapping):
        return QueueSettings(**dict(config or {}))
    raise QueueConfigurationError(
        f"QueueProvider config must be a QueueSettings (or subclass) or a dict, got {type(config).__name__}."
    )


def url_scheme(url: str | None) -> str:
    try:
        return urlsplit(url or "").scheme
    except ValueError:
        return ""
