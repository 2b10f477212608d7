"""The Redis list and stream drivers' options, validated at boot without importing redis-py."""

from __future__ import annotations

from pydantic import Field

from drivers.base.options import DriverOptions, send_timeout


class RedisCommonOptions(DriverOptions):
    """What the Redis list and stream drivers share."""

    prefix: str = Field("queues:", description="key prefix: queue 'default' lives in list 'queues:default'")
    result_prefix: str = Field("queues:results", description="key prefix of stored results")
    result_ttl: int | None = Field(86_400, gt=0, description="seconds a result is kept; None keeps it forever")
    fetch_batch: int = Field(
        100, ge=1, le=1000, description="most jobs one fetch takes (never more than the worker has free slots)"
    )
    socket_connect_timeout: float = Field(5.0, gt=0, le=300)
    send_timeout: float = send_timeout()
    max_connections: int | None = Field(None, gt=0)
    cluster: bool = Field(
        False,
        description="the URL (or comma list of URLs) names Redis Cluster nodes: use redis-py's RedisCluster, and "
        "hash-tag each queue's keys (queues:{default}) so they share one slot",
    )


class RedisOptions(RedisCommonOptions):
    """Redis list (``redis``) options."""

    block_timeout: float = Field(
        1.0,
        gt=0,
        le=3600,
        description="seconds an idle worker waits for a job; due delayed jobs are moved at least this often",
    )
    retry_after: float = Field(
        60.0,
        ge=2,
        description="seconds a fetched job stays reserved; a running job's reservation is extended every "
        "retry_after / 3 s, so this is how long a killed worker's jobs wait before they run again",
    )


class RedisStreamOptions(RedisCommonOptions):
    """Redis stream (``redis_stream``) options: a stream per queue, read by one consumer group."""

    prefix: str = Field("queues:stream:", description="queue 'default' lives in stream 'queues:stream:default'")
    consumer_group: str = "workers"
    block_ms: int = Field(
        1_000, gt=0, le=3_600_000, description="XREADGROUP block time; due delayed jobs move this often"
    )
    idle_timeout_ms: int = Field(
        60_000,
        ge=2_000,
        description="a job unacknowledged this long is re-run; running jobs are kept fresh every third of it, "
        "so below 2 s a busy worker's jobs would be reclaimed and run twice",
    )
    maxlen: int | None = Field(None, gt=0, description="approximate stream length cap; None = no cap")
