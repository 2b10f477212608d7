"""Queue settings: a pydantic-settings class, merged into the default connections (one per driver).

``QUEUE_CONNECTIONS__REDIS__URL=...`` alone changes one field of one
connection: ``merge_defaults`` lays every override over the defaults, field by
field. Config passed to the provider wins over env, env over a subclass's
defaults (the published ``config/queue.py``), and those over ours. What each
driver needs (its URL variable, its URL rules) is its registry entry's to say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, Field, ImportString, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from drivers import DRIVERS, BrokerSpec, QueueConfigurationError
from queue_manager.settings.batches import BatchSettings
from queue_manager.settings.connection import ConnectionSettings, url_scheme
from queue_manager.settings.errors import DEFAULT_CONNECTIONS, describe_validation_error, unparsable_env_error
from queue_manager.settings.failed import FailedSettings
from queue_manager.settings.insight import InsightSettings
from queue_manager.settings.lists import CommaList
from queue_manager.settings.waits import check_waits
from queue_manager.settings.web import WebSettings


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


class QueueSettings(BaseSettings, WebSettings):
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
    failed: FailedSettings = Field(
        default_factory=FailedSettings, description="where failed jobs are kept (QUEUE_FAILED__DRIVER, __URL, ...)"
    )
    batches: BatchSettings = Field(
        default_factory=BatchSettings, description="where job batches are kept (QUEUE_BATCHES__DRIVER, __URL, ...)"
    )
    insight: InsightSettings = Field(
        default_factory=InsightSettings,
        description="metrics, recent jobs, tags and live workers (QUEUE_INSIGHT__METRICS=false, __RECENT_JOBS=...)",
    )
    waits: dict[str, float] = Field(
        default_factory=dict,
        description="seconds a queue may wait before queue:monitor fires LongWaitDetected: "
        'QUEUE_WAITS=\'{"redis:default": 60, "redis:*": 300}\'',
    )
    tasks: CommaList = Field(
        default_factory=lambda: ["app.tasks"],
        description="the app's task modules (QUEUE_TASKS=app.tasks,app.jobs): what queue:work imports by default, "
        "and where every command and the dashboard learn the queues tasks declare",
    )
    app_name: str | None = Field(
        None,
        description="scopes queue:restart to this app on a shared server (QUEUE_APP_NAME; default: APP_NAME)",
    )
    configured: list[str] = Field(
        default_factory=list, exclude=True, repr=False, description="set here: the connections the app's settings name"
    )

    def __init__(self, **values: Any) -> None:
        unknown = sorted(key for key in values if not key.startswith("_") and key not in type(self).model_fields)
        if unknown:
            valid = ", ".join(name for name in type(self).model_fields if name not in ("connection", "configured"))
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
        data["configured"] = sorted({*declared, *given})
        for name, override in [*declared.items(), *given.items()]:
            if isinstance(override, Mapping):
                override = _merge_connection(merged.get(name, {}), override)
            merged[name] = override
        for connection in merged.values():
            if isinstance(connection, dict) and not connection.get("url"):
                known = DRIVERS.get(str(connection.get("driver")))
                if known is not None and known.env_url is not None:
                    connection["url"] = known.env_url()
        return {**data, "connections": merged}

    @model_validator(mode="after")
    def _waits_name_known_connections(self) -> QueueSettings:
        check_waits(self.waits, self.connections)
        return self

    @model_validator(mode="after")
    def _failed_store_reaches_its_redis(self) -> QueueSettings:
        """The failed-jobs Redis store needs a Redis its connection's driver can lend it (one plain server)."""
        if self.failed.driver != "redis":
            return self
        name = self.failed.connection or self.driver
        connection = self.connections.get(name)
        known = DRIVERS.get(connection.driver) if connection is not None else None
        url = connection.url_value if connection is not None else None
        if connection is None or known is None or known.redis_store_url is None or not url:
            return self  # the failed-jobs check names that problem
        try:
            known.redis_store_url(url, connection.options)
        except QueueConfigurationError as error:
            raise ValueError(
                f"QUEUE_FAILED__DRIVER=redis cannot keep failed jobs on connection '{name}': {error}. Use the "
                "database store (QUEUE_FAILED__DRIVER=database, the default) or a plain redis:// connection "
                "(QUEUE_FAILED__CONNECTION=<name>)"
            ) from None
        return self

    def spec(self, name: str) -> BrokerSpec:
        """Connection ``name`` as its driver sees it, its settings named as this app names them."""
        prefix = str(type(self).model_config.get("env_prefix") or "").upper()
        return self.connections[name].spec(name, f"{prefix}CONNECTIONS__{name.upper()}__")

    def __repr_args__(self) -> Any:
        yield ("driver", self.driver)
        yield ("connections", self.connections)
        if self.drivers:
            yield ("drivers", sorted(self.drivers))


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


__all__ = [
    "DEFAULT_CONNECTIONS",
    "ConnectionSettings",
    "FailedSettings",
    "QueueSettings",
    "describe_validation_error",
    "load_settings",
    "url_scheme",
]
