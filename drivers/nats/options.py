"""The NATS driver's options, validated at boot without importing nats-py."""

from __future__ import annotations

from pydantic import Field, field_validator

from drivers.base.options import DriverOptions, refuse, send_timeout
from drivers.nats.names import bucket_problem, name_problem, subject_problem


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
        refuse(name_problem(value))
        return value

    @field_validator("result_bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        refuse(bucket_problem(value))
        return value

    @field_validator("subject_prefix")
    @classmethod
    def _subject(cls, value: str) -> str:
        refuse(subject_problem(value))
        return value
