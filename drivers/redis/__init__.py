"""The Redis drivers: ``redis`` (a list per queue, Laravel's reserved-job design; the default) and
``redis_stream`` (a stream per queue, one consumer group). This face says what the manager needs to know of
them before redis-py is imported: their registry entries, the app's Redis variables, the URL checks.

One server, a Sentinel-watched master or a Redis Cluster (``target``); what the two brokers share is in
``sending`` and ``connecting``, results in ``results``, batched round trips in ``batch``, the control state in
``control``, the queue-name rule in ``names``, the Lua scripts in ``lua/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from drivers.base.contract import DriverInfo
from drivers.base.errors import QueueConfigurationError
from drivers.redis.names import queue_problem
from drivers.redis.options import RedisOptions, RedisStreamOptions
from drivers.redis.target import SENTINEL_SCHEMES, scheme_of, target_problem

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")
_BOOL = TypeAdapter(bool)


def url_from_env() -> str:
    """``REDIS_URL``, else built from the seed's (and fastapi-startkit's) ``REDIS_*`` variables."""
    if url := os.environ.get("REDIS_URL"):
        return url
    host = os.environ.get("REDIS_HOST") or "127.0.0.1"
    port, db = os.environ.get("REDIS_PORT") or "6379", os.environ.get("REDIS_DB") or "0"
    if not port.isdigit():
        raise QueueConfigurationError(f"REDIS_PORT must be a port number, got {port!r}. Fix it in your .env.")
    if not db.isdigit():
        raise QueueConfigurationError(f"REDIS_DB must be a database number, got {db!r}. Fix it in your .env.")
    user, password = os.environ.get("REDIS_USERNAME") or "", os.environ.get("REDIS_PASSWORD") or ""
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/{db}"


def cluster_option(options: Mapping[str, Any]) -> bool:
    """The ``cluster`` option read as pydantic reads a bool, without building the options model at boot (a
    value that is no bool is reported with the other options)."""
    try:
        return _BOOL.validate_python(options.get("cluster", False))
    except ValidationError:
        return False


def topology_problem(url: str, options: Mapping[str, Any]) -> str | None:
    """A URL list without ``cluster``, Sentinel with ``cluster``, ...: refused at boot, not at first use."""
    cluster = cluster_option(options)
    if not cluster and "," not in url and scheme_of(url) not in SENTINEL_SCHEMES:
        return None  # one plain server, the common case: nothing to check
    return target_problem(url, cluster)


def store_url(url: str, options: Mapping[str, Any]) -> str:
    """The URL a store of the app's (the failed jobs) may use on this connection's Redis: one plain server
    (its MULTI spans two keys, and it opens its pool from a redis:// URL), not Sentinel or a Cluster."""
    cluster = cluster_option(options)
    if cluster or scheme_of(url) in SENTINEL_SCHEMES:
        kind = "Cluster" if cluster else "Sentinel"
        raise QueueConfigurationError(f"it is a Redis {kind} connection, which that store does not support")
    return url


def _info(
    module: str, options: type[RedisOptions] | type[RedisStreamOptions], idle_wait: tuple[str, float]
) -> DriverInfo:
    return DriverInfo(
        module,
        options,
        extra="redis",
        libraries=("taskiq_redis", "redis"),
        schemes=SCHEMES,
        default_port=6379,
        start_hint="redis-server --port {port}",
        env_url=url_from_env,
        url_variables=("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB"),
        url_problem=topology_problem,
        queue_rule=queue_problem,
        idle_wait=idle_wait,
        redis_store_url=store_url,
    )


LIST = _info("drivers.redis.list_broker", RedisOptions, ("block_timeout", 1.0))
STREAM = _info("drivers.redis.stream_broker", RedisStreamOptions, ("block_ms", 1000.0))
