"""Metrics as Prometheus text (exposition format 0.0.4): gauges over the last hour per task and queue, and the
live workers, so existing monitoring can scrape the dashboard's ``/queue/metrics``."""

from __future__ import annotations

from typing import Any

GAUGES = (  # name, help, the row's field, and its part (p50/p95/max) if any
    ("queue_jobs_per_minute", "Jobs finished per minute over the last hour", "jobs_per_minute", None),
    ("queue_failures_per_minute", "Failed attempts per minute over the last hour", "failures_per_minute", None),
    ("queue_runtime_p50_ms", "Median runtime over the last hour (ms)", "runtime_ms", "p50"),
    ("queue_runtime_p95_ms", "95th percentile runtime over the last hour (ms)", "runtime_ms", "p95"),
    ("queue_runtime_max_ms", "Longest runtime over the last hour (ms)", "runtime_ms", "max"),
    ("queue_wait_p50_ms", "Median wait, dispatch to start, over the last hour (ms)", "wait_ms", "p50"),
    ("queue_wait_p95_ms", "95th percentile wait over the last hour (ms)", "wait_ms", "p95"),
    ("queue_wait_max_ms", "Longest wait over the last hour (ms)", "wait_ms", "max"),
)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(found: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> str:
    """``found``: per connection, its ``metrics()`` and its ``workers()``."""
    lines: list[str] = []
    for name, help_text, field, part in GAUGES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for metrics, _workers in found:
            for row in metrics["tasks"]:
                value = row[field][part] if part is not None else row[field]
                if value is not None:
                    where = (_label(metrics["connection"]), _label(row["queue"]), _label(row["task"]))
                    lines.append(f'{name}{{connection="{where[0]}",queue="{where[1]}",task="{where[2]}"}} {value}')
    lines += ["# HELP queue_workers Live queue:work processes", "# TYPE queue_workers gauge"]
    for metrics, workers in found:
        lines.append(f'queue_workers{{connection="{_label(metrics["connection"])}"}} {len(workers)}')
    return "\n".join(lines) + "\n"
