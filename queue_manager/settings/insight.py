"""Insight settings (``QUEUE_INSIGHT__*``): what ``queue:work`` workers record on their connection's server for the
dashboard, ``queue:metrics`` and ``queue:workers`` (metrics per task and queue, recent and failed jobs, tags, live
workers), how much, and for how long. Every part is on by default and can be turned off on its own."""

from __future__ import annotations

from pydantic import BaseModel, Field

from queue_manager.settings.lists import CommaList


class InsightSettings(BaseModel):
    enabled: bool = Field(default=True, description="record any insight at all (QUEUE_INSIGHT__ENABLED=false: none)")
    metrics: bool = Field(default=True, description="jobs, failures, runtime and wait per task and queue, per minute")
    recent: bool = Field(
        default=True, description="the recent completed and failed jobs, with their arguments and tags"
    )
    workers: bool = Field(
        default=True, description="each worker's heartbeat: host, pid, queues, jobs done, job running now"
    )
    flush_every: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="seconds between a worker's writes (one round trip each), and its heartbeat",
    )
    recent_jobs: int = Field(default=1000, ge=1, le=100_000, description="completed jobs kept per connection")
    recent_ttl: int = Field(default=3600, ge=60, le=604_800, description="seconds a completed job is kept")
    failed_jobs: int = Field(default=1000, ge=1, le=100_000, description="failed jobs kept per connection")
    failed_ttl: int = Field(default=604_800, ge=60, le=604_800, description="seconds a failed job is kept (7 days)")
    monitored_tags: CommaList = Field(
        default=[],
        description="tags whose jobs are kept longer, in lists of their own (QUEUE_INSIGHT__MONITORED_TAGS=a,b)",
    )
    monitored_jobs: int = Field(default=1000, ge=1, le=100_000, description="jobs kept per monitored tag")
    monitored_ttl: int = Field(
        default=604_800, ge=60, le=604_800, description="seconds a monitored tag's jobs are kept"
    )
    argument_limit: int = Field(
        default=2000, ge=100, le=100_000, description="characters of a job's arguments kept; the rest is cut"
    )
    prometheus: bool = Field(
        default=False, description="serve the metrics as Prometheus text (behind the dashboard's guard)"
    )
    prometheus_path: str = Field(default="/queue/metrics", description="where the Prometheus text is served")
