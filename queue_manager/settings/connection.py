"""One named connection's settings: its driver, URL (a secret), default queue, results and driver options.

What a URL must look like is the driver's to say (its registry entry: schemes, the URL/option combinations it
cannot serve, its queue-name rule); this module only asks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from drivers import DRIVERS, BrokerSpec, mask_url
from drivers.base.names import MAX_LENGTH, queue_name_problem
from drivers.base.urls import has_host, split_urls, unencoded_userinfo, url_list_problem


def url_scheme(url: str | None) -> str:
    try:
        return urlsplit(url or "").scheme
    except ValueError:
        return ""


def url_variables() -> str:
    """The env variables a driver reads its URL from (REDIS_URL, RABBITMQ_URL, NATS_URL), for messages."""
    names = dict.fromkeys(info.url_variables[0] for info in DRIVERS.values() if info.url_variables)
    return ", ".join(names)


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


class ConnectionSettings(BaseModel):
    """One named connection. ``url`` is secret: repr and errors show it masked."""

    model_config = ConfigDict(extra="forbid")

    driver: str = Field(min_length=1)
    url: SecretStr | None = None
    queue: str = Field("default", min_length=1, max_length=MAX_LENGTH)
    result_backend: bool = True
    results: str | None = Field(
        None,
        min_length=1,
        description="keep this connection's results in another connection's store (e.g. rabbitmq -> redis)",
    )
    state: str | None = Field(
        None,
        min_length=1,
        description="keep this connection's job state (unique locks, job middleware) on another connection's "
        "server (e.g. rabbitmq -> redis)",
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
                f"QUEUE_CONNECTIONS__<NAME>__URL or the driver's variable ({url_variables()})"
            )
        network = known is not None and bool(known.schemes) and url_scheme(url) not in ("unix", "")
        if network and not has_host(url):
            raise ValueError("the URL names no host: add the server's (scheme://[user:password@]host[:port]/...)")
        if network:
            several_servers_rule(url, known.schemes if known is not None else ())
        return value

    @model_validator(mode="after")
    def _servable_url(self) -> ConnectionSettings:
        """A URL/option combination the driver cannot serve (a Redis URL list without ``cluster``, Sentinel with
        it, ...): refused at boot, not at first use."""
        known = DRIVERS.get(self.driver)
        url = self.url_value
        if known is None or known.url_problem is None or not url:
            return self
        problem = known.url_problem(url, self.options)
        if problem is not None:
            raise ValueError(problem)
        return self

    @field_validator("queue")
    @classmethod
    def _plain_queue_name(cls, value: str, info: ValidationInfo) -> str:
        known = DRIVERS.get(str(info.data.get("driver")))
        problem = queue_name_problem(value, known.queue_rule if known is not None else None)
        if problem is not None:
            raise ValueError(problem)
        return value

    @property
    def url_value(self) -> str | None:
        return self.url.get_secret_value() if self.url else None

    def spec(self, name: str, settings_prefix: str = "") -> BrokerSpec:
        """What the driver builds from; ``settings_prefix`` (``QUEUE_CONNECTIONS__<NAME>__``) lets its errors name
        the variable to fix."""
        return BrokerSpec(
            name, self.driver, self.url_value, self.queue, self.result_backend, dict(self.options), settings_prefix
        )

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield (key, mask_url(self.url_value) if key == "url" and self.url_value else value)
