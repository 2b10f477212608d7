"""Queue settings: a pydantic-settings class, merged into the five default connections.

``QUEUE_CONNECTIONS__REDIS__URL=...`` alone changes one field of one
connection: ``merge_defaults`` lays every override over the defaults, field by
field. Config passed to the provider wins over env, env over a subclass's
defaults (the published ``config/queue.py``), and those over ours.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from types import UnionType
from typing import Any, Union, get_args, get_origin
from urllib.parse import quote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ImportString,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from drivers import DRIVERS, BrokerSpec, QueueConfigurationError, mask_url
from drivers.errors import did_you_mean
from drivers.names import queue_name_problem
from drivers.urls import has_host, split_urls, unencoded_userinfo, url_list_problem
from queue_manager.failed.settings import FailedSettings

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


def several_servers_rule(url: str, schemes: tuple[str, ...]) -> None:
    """A comma list of server URLs (a NATS or RabbitMQ cluster, Redis Cluster nodes): every entry a whole URL of
    the driver's schemes, none unreadable; NATS cannot mix websocket and plain servers (nats-py refuses)."""
    problem = url_list_problem(url)
    if problem is not None:
        raise ValueError(problem)
    parts = split_urls(url)
    found = {url_scheme(part) for part in parts}
    if len(parts) > 1 and schemes and not found <= set(schemes):  # one URL: the scheme check names it, masked
        raise ValueError(
            f"every URL of the list must start with {' or '.join(s + '://' for s in schemes)} (comma-separated, "
            "each a whole URL: nats://h1:4222,nats://h2:4222)"
        )
    if found & {"ws", "wss"} and found - {"ws", "wss"}:
        raise ValueError("a list of NATS servers cannot mix websocket (ws://, wss://) and nats:// or tls:// URLs")


def cluster_option(options: Mapping[str, Any]) -> bool:
    """A Redis connection's ``cluster`` option read as pydantic reads a bool, without building the driver's
    options model at boot (a value that is no bool is reported with the other options by the manager)."""
    try:
        return BOOL.validate_python(options.get("cluster", False))
    except ValidationError:
        return False


BOOL = TypeAdapter(bool)


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
    results: str | None = Field(
        None,
        min_length=1,
        description="keep this connection's results in another connection's store (e.g. rabbitmq -> redis)",
    )
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _readable_url(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """A URL the broker library would misread (and whose password would leak in pieces) fails here."""
        url = value.get_secret_value() if value is not None else ""
        if not url:
            return value
        known = DRIVERS.get(str(info.data.get("driver")))
        if known is not None and known.schemes and "://" not in split_urls(url)[0]:
            starts = " or ".join(f"{scheme}://" for scheme in known.schemes)
            raise ValueError(f"the URL has no scheme: it must start with {starts} (is the ':' or a '/' missing?)")
        if unencoded_userinfo(url):
            raise ValueError(
                "the URL's username or password holds a '#', '?' or '/' that is not percent-encoded, so the URL "
                "cannot be read (everything after it would be taken for the path). Percent-encode the password: "
                "'#' is %23, '?' is %3F, '/' is %2F (urllib.parse.quote(password, safe='')), in "
                "QUEUE_CONNECTIONS__<NAME>__URL or the driver's variable (REDIS_URL, RABBITMQ_URL, NATS_URL)"
            )
        network = known is not None and bool(known.schemes) and url_scheme(url) not in ("unix", "")
        if network and not has_host(url):
            raise ValueError("the URL names no host: add the server's (scheme://[user:password@]host[:port]/...)")
        if network:
            several_servers_rule(url, known.schemes if known is not None else ())
        return value

    @model_validator(mode="after")
    def _redis_topology(self) -> ConnectionSettings:
        """A Redis URL list without ``cluster``, Sentinel with ``cluster``, ...: refused at boot, not at first use."""
        url = self.url_value
        if self.driver not in ("redis", "redis_stream") or not url:
            return self
        cluster = cluster_option(self.options)
        if not cluster and "," not in url and not url_scheme(url).endswith("+sentinel"):
            return self  # one plain server, the common case: nothing to check (and no model built at boot)
        from drivers.redis_target import target_problem

        problem = target_problem(url, cluster)
        if problem is not None:
            raise ValueError(problem)
        return self

    @field_validator("queue")
    @classmethod
    def _plain_queue_name(cls, value: str, info: ValidationInfo) -> str:
        queue_name_rule(value)
        problem = queue_name_problem(str(info.data.get("driver")), value)
        if problem is not None:
            raise ValueError(problem)
        return value

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
    """A model given as config counts only for the fields it sets, so it merges like a dict."""
    if isinstance(value, BaseModel):
        return {key: _as_dict(getattr(value, key)) for key in value.model_fields_set}
    if isinstance(value, Mapping):
        return {key: _as_dict(item) for key, item in value.items()}
    return value


def _merge_connection(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    options = {**base.get("options", {}), **(override.get("options") or {})}
    return {**base, **override, "options": options}


class QueueSettings(BaseSettings):
    """The queue configuration: a pydantic-settings ``BaseSettings`` (env prefix ``QUEUE_``, ``__`` nesting).

    pydantic-settings reads the environment (and, in a subclass, an ``env_file`` or ``secrets_dir``);
    the validator below only lays what it read over the five default connections, field by field,
    because pydantic-settings alone would replace the whole ``connections`` dict.
    """

    model_config = SettingsConfigDict(
        env_prefix="QUEUE_",
        env_nested_delimiter="__",
        case_sensitive=False,
        # QUEUE_APP / QUEUE_WORKER_* in an env_file are the worker's, not settings; unknown keys given
        # in code are still refused, by __init__.
        extra="ignore",
    )

    driver: str = Field("redis", min_length=1, description="name of the default connection")
    connection: str | None = Field(
        None, exclude=True, repr=False, description="Laravel's QUEUE_CONNECTION: an alias of driver (driver wins)"
    )
    connections: dict[str, ConnectionSettings] = Field(default_factory=dict)
    drivers: dict[str, ImportString[Callable[..., Any]]] = Field(
        default_factory=dict,
        description="custom drivers: name -> factory(spec) -> AsyncBroker, or its 'module:attribute' path",
    )
    middlewares: list[ImportString[Any]] = Field(
        default_factory=list,
        description="TaskIQ middlewares for every connection: 'module:Class' paths (a class, factory or instance)",
    )
    health_path: str | None = Field(
        "/queue/health", description="the web app's health route (QUEUE_HEALTH_PATH); empty turns it off"
    )
    dashboard: bool = Field(False, description="serve the dashboard (QUEUE_DASHBOARD=true); off by default")
    dashboard_path: str = Field("/queue", description="where the dashboard is served")
    dashboard_guard: ImportString[Callable[..., Any]] | None = Field(
        None,
        description="a FastAPI dependency every dashboard request must pass (QUEUE_DASHBOARD_GUARD=module:function)",
    )
    failed: FailedSettings = Field(
        default_factory=FailedSettings, description="where failed jobs are kept (QUEUE_FAILED__DRIVER, __URL, ...)"
    )

    def __init__(self, **values: Any) -> None:
        unknown = sorted(key for key in values if not key.startswith("_") and key not in type(self).model_fields)
        if unknown:
            valid = ", ".join(name for name in type(self).model_fields if name != "connection")
            raise QueueConfigurationError(f"Unknown queue setting(s) {', '.join(unknown)}. Valid settings: {valid}.")
        try:
            super().__init__(**{key: _as_dict(value) for key, value in values.items()})
        except ValidationError as error:
            prefix = str(type(self).model_config.get("env_prefix") or "").upper()
            raise QueueConfigurationError(
                f"Invalid queue settings (from .env {prefix}* variables or the QueueProvider config):\n"
                + describe_validation_error(error, type(self), prefix)
            ) from None
        except SettingsError:
            # from None: the parse error carries the value, which may hold a password.
            raise unparsable_env_error(type(self)) from None

    @model_validator(mode="before")
    @classmethod
    def merge_defaults(cls, data: Any) -> Any:
        """Lay env and config overrides over the default connections, field by field."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        alias = data.pop("connection", None)
        if alias is not None:
            data.setdefault("driver", alias)
        given = _as_dict(data.get("connections")) or {}
        if not isinstance(given, Mapping):
            return data
        # A subclass (the published config/queue.py) may add connections as its field default.
        declared = _as_dict(cls.model_fields["connections"].get_default(call_default_factory=True) or {})
        merged: dict[str, Any] = default_connections()
        for name, override in [*declared.items(), *given.items()]:
            if isinstance(override, Mapping):
                override = _merge_connection(merged.get(name, {}), override)
            merged[name] = override
        for connection in merged.values():
            if isinstance(connection, dict) and not connection.get("url"):
                env_url = ENV_URLS.get(str(connection.get("driver")))
                if env_url is not None:
                    connection["url"] = env_url()
        return {**data, "connections": merged}

    @model_validator(mode="after")
    def _failed_store_reaches_its_redis(self) -> QueueSettings:
        """The failed-jobs Redis store talks to one plain Redis server (its MULTI spans two keys, and it opens its
        pool from a redis:// URL): a Sentinel or Cluster connection cannot hold it yet."""
        if self.failed.driver != "redis":
            return self
        name = self.failed.connection or self.driver
        connection = self.connections.get(name)
        url = connection.url_value if connection is not None else None
        if connection is None or connection.driver not in ("redis", "redis_stream") or not url:
            return self  # the failed-jobs check names that problem
        cluster = cluster_option(connection.options)
        if cluster or url_scheme(url).endswith("+sentinel"):
            raise ValueError(
                f"QUEUE_FAILED__DRIVER=redis cannot keep failed jobs on connection '{name}': it is a Redis "
                f"{'Cluster' if cluster else 'Sentinel'} connection, which the failed-jobs Redis store does not "
                "support. Use the database store (QUEUE_FAILED__DRIVER=database, the default) or a plain "
                "redis:// connection (QUEUE_FAILED__CONNECTION=<name>)"
            )
        return self

    def __repr_args__(self) -> Any:
        yield ("driver", self.driver)
        yield ("connections", self.connections)
        if self.drivers:
            yield ("drivers", sorted(self.drivers))


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
                variable += ", or REDIS_URL / RABBITMQ_URL / NATS_URL"
            where += f" ({variable})"
        message = problem["msg"]
        if problem["type"] == "extra_forbidden" and model is not None:
            valid = _field_names_at(model, [str(part) for part in problem["loc"][:-1]])
            if valid:
                message = f"no such setting.{did_you_mean(loc[-1], valid)}"
                if list_valid:
                    message += f" Valid here: {', '.join(valid)}"
        elif problem["type"] == "missing" and len(loc) == 3 and loc[0] == "connections" and loc[2] == "driver":
            drivers = "|".join(name for name in DRIVERS if name != "failover")
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


def load_settings(config: Any = None) -> QueueSettings:
    """Settings from provider config over env: a QueueSettings (or subclass) instance or class, a mapping,
    or nothing."""
    if isinstance(config, QueueSettings):
        return config
    if isinstance(config, type) and issubclass(config, QueueSettings):
        return config()
    if config is None or isinstance(config, Mapping):
        return QueueSettings(**dict(config or {}))
    raise QueueConfigurationError(
        "QueueProvider config must be a QueueSettings subclass (or an instance of one) or a dict, "
        f"got {type(config).__name__}."
    )


def url_scheme(url: str | None) -> str:
    try:
        return urlsplit(url or "").scheme
    except ValueError:
        return ""
