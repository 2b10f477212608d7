"""Driver options, validated at boot without importing any broker library.

Each model lists what ``ConnectionSettings.options`` may hold for one driver;
unknown keys are an error so a typo never silently falls back to a default.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.names import nats_bucket_problem, nats_name_problem, nats_subject_problem, rabbitmq_name_problem


def send_timeout() -> Any:
    """How long one dispatch may wait for the broker before it fails with BrokerUnreachableError."""
    return Field(
        5.0,
        gt=0,
        le=300,
        description="seconds a dispatch waits for the broker (a network partition, an outage) before it fails",
    )


def _name(problem: str | None) -> None:
    if problem is not None:
        raise ValueError(problem)


class DriverOptions(BaseModel):
    # Built on first use: an app builds one or two of these, not all five, at boot. No inf/nan: an endless
    # timeout is never what was meant.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)


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


class RabbitMQOptions(DriverOptions):
    exchange: str = Field("queues", min_length=1, max_length=200)
    queue_type: Literal["quorum", "classic"] = "quorum"
    max_priority: int | None = Field(
        None, ge=1, le=255, description="classic queues only: declare them with x-max-priority (job label 'priority')"
    )
    qos: int = Field(10, gt=0, description="messages a worker may hold unacknowledged")
    result_ttl: int = Field(86_400, gt=0, description="seconds an unread result queue lives")
    result_durable: bool = Field(
        False, description="results survive a RabbitMQ restart (durable queues: each result costs ~2x)"
    )
    connect_timeout: float = Field(5.0, gt=0, le=300)
    send_timeout: float = send_timeout()

    @field_validator("exchange")
    @classmethod
    def _exchange_not_reserved(cls, value: str) -> str:
        _name(rabbitmq_name_problem(value))
        return value

    @model_validator(mode="after")
    def _priority_needs_classic_queues(self) -> Self:
        if self.max_priority is not None and self.queue_type != "classic":
            raise ValueError(
                "max_priority needs queue_type 'classic': RabbitMQ's quorum queues have no message priorities "
                "(before RabbitMQ 4.0). Set both, or drop max_priority"
            )
        return self


class NatsOptions(DriverOptions):
    stream: str = Field("QUEUES", min_length=1, description="JetStream stream holding every queue's subject")
    subject_prefix: str = Field("queues", min_length=1)
    ack_wait: float = Field(
        30.0,
        ge=2,
        le=86_400,
        description="seconds before an unacknowledged job is redelivered; running jobs say 'in progress' every "
        "third of it, so below 2 s a busy worker's jobs would be redelivered and run twice",
    )
    fetch_timeout: float = Field(2.0, gt=0, le=300, description="seconds one pull request waits for jobs")
    fetch_batch: int = Field(10, gt=0, description="jobs one pull request may return")
    result_bucket: str = Field("queue_results", min_length=1, description="key-value bucket of results")
    result_ttl: float = Field(86_400, gt=0, description="seconds a result is kept (the bucket's TTL, set when made)")
    connect_timeout: float = Field(5.0, gt=0, le=300)
    send_timeout: float = send_timeout()
    replicas: int | None = Field(
        None,
        ge=1,
        le=5,
        description="JetStream replicas of the work stream, the results bucket and the control buckets (a cluster "
        "keeps each on this many servers; JetStream allows at most 5). Unset: new ones get 1 and existing ones "
        "keep theirs (set it to change them)",
    )

    @field_validator("stream")
    @classmethod
    def _stream_name(cls, value: str) -> str:
        _name(nats_name_problem(value))
        return value

    @field_validator("result_bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        _name(nats_bucket_problem(value))
        return value

    @field_validator("subject_prefix")
    @classmethod
    def _subject(cls, value: str) -> str:
        _name(nats_subject_problem(value))
        return value


class MemoryOptions(DriverOptions):
    await_inplace: bool = Field(
        True, description="run each job before dispatch returns (tests see its effects at once)"
    )
    max_stored_results: int = Field(
        10_000, ge=-1, description="results kept in memory (oldest dropped first); -1 keeps all"
    )


class FailoverOptions(DriverOptions):
    connections: list[str] = Field(min_length=1, description="connections to try, in order")
    cooldown: float = Field(10.0, ge=0, le=3600, description="seconds a connection that failed is skipped")

    @field_validator("connections", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``primary,redis`` from the environment, or a JSON list."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("connections must be a comma list (primary,redis) or a JSON list") from None
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value
