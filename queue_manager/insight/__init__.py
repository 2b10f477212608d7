"""Insight (Horizon's metrics, recent jobs, tags and workers): what ``queue:work`` workers record on their
connection's server, and what ``conn.metrics()``, ``queue:metrics``, ``queue:workers`` and the dashboard read back.

The worker writes (``recorder.InsightRecorder``, one round trip every few seconds, never per job); readers read
(``reading``). Where it lives: the connection's own control state (a Redis key, NATS key-value buckets, the memory
driver's process), or for a RabbitMQ connection the connection its ``state`` setting names, as job state does:
RabbitMQ has no expiring map or capped list to write in one round trip (``state.insight_state``).
"""

from __future__ import annotations

from queue_manager.insight.histogram import BOUNDS_MS, percentile
from queue_manager.insight.reading import (
    job_detail,
    metrics,
    monitor_tag,
    monitored_tags,
    recent_jobs,
    stop_monitoring_tag,
    workers,
)
from queue_manager.insight.tags import auto_tags, job_tags, merge_tags

__all__ = [
    "BOUNDS_MS",
    "auto_tags",
    "job_detail",
    "job_tags",
    "merge_tags",
    "metrics",
    "monitor_tag",
    "monitored_tags",
    "percentile",
    "recent_jobs",
    "stop_monitoring_tag",
    "workers",
]
