"""Insight on the command line: ``queue:metrics`` (Horizon's metrics page: per task and queue, jobs and failures
per minute, runtime and wait p50/p95/max over the last hour) and ``queue:workers`` (the live ``queue:work``
processes). ``--json`` prints what ``conn.metrics()`` / ``conn.workers()`` return."""

from __future__ import annotations

import json
import time
from typing import Any

from cleo.helpers import argument, option

from drivers import BrokerUnreachableError, QueueConfigurationError
from queue_manager.console.base import ManagerCommand
from queue_manager.text import printable

CONNECTION = argument("connection", "The connection (default: the default one)", optional=True)
JSON = option("json", None, "Print JSON instead of a table")


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.1f}ms"


class InsightCommand(ManagerCommand):
    refused_code = 2

    def connection_name(self) -> str:
        name = self.argument("connection") or self.manager.get_default_driver()
        self.manager.check_connection_name(name)
        return str(name)

    def show(self, work: Any) -> Any:
        try:
            name = self.connection_name()
            return self.with_manager(lambda manager: work(manager.connection(name)))
        except (QueueConfigurationError, BrokerUnreachableError) as error:
            return self.refuse(error)


class QueueMetricsCommand(InsightCommand):
    name = "queue:metrics"
    description = "Jobs, failures, runtime and wait per task and queue over the last hour, as workers recorded them."
    arguments = [CONNECTION]
    options = [
        option("queue", None, "Only this queue", flag=False),
        option("task", None, "Only tasks whose name contains this", flag=False),
        option("minutes", None, "Over the last N minutes (1-60)", flag=False, default="60"),
        JSON,
    ]

    def handle(self) -> int:
        try:
            minutes = int(self.option("minutes"))
            if not 1 <= minutes <= 60:
                raise ValueError
        except ValueError:
            return self.refuse(QueueConfigurationError(f"--minutes must be 1 to 60, got {self.option('minutes')!r}."))
        found = self.show(lambda conn: conn.metrics(self.option("queue"), self.option("task"), minutes))
        if isinstance(found, int):
            return found
        if self.option("json"):
            self.line(json.dumps(found))
            return 0
        if not found["tasks"]:
            self.line(f"No jobs recorded on '{found['connection']}' in the last {minutes} minute(s).")
            return 0
        headers = ["Queue", "Task", "Jobs", "Jobs/min", "Failed", "Runtime p50", "p95", "max", "Wait p50", "p95", "max"]
        rows = []
        for row in [*found["tasks"], *({"task": "(all)", **queue} for queue in found["queues"])]:
            runtime, wait = row["runtime_ms"], row["wait_ms"]
            rows.append(
                [printable(str(cell)) for cell in (row["queue"], row["task"], row["jobs"], row["jobs_per_minute"])]
                + [str(row["failed"]), ms(runtime["p50"]), ms(runtime["p95"]), ms(runtime["max"])]
                + [ms(wait["p50"]), ms(wait["p95"]), ms(wait["max"])]
            )
        table = self.table(rows=rows)
        table.set_headers(headers)
        table.render()
        return 0


class QueueWorkersCommand(InsightCommand):
    name = "queue:workers"
    description = "The live queue:work processes of a connection (a worker that stops beating drops out)."
    arguments = [CONNECTION]
    options = [JSON]

    def handle(self) -> int:
        found = self.show(lambda conn: conn.workers())
        if isinstance(found, int):
            return found
        if self.option("json"):
            self.line(json.dumps(found))
            return 0
        if not found:
            self.line("No live workers.")
            return 0
        now, rows = time.time(), []
        for beat in found:
            running = ", ".join(printable(str(job.get("task"))) for job in beat.get("running", [])) or "-"
            up = f"{int(now - float(beat.get('started', now)))}s"
            cells = [beat["id"], beat["host"], beat["pid"], ",".join(beat["queues"]), up, beat["jobs_done"], running]
            rows.append([printable(str(cell)) for cell in cells])
        table = self.table(rows=rows)
        table.set_headers(["Worker", "Host", "PID", "Queues", "Up", "Jobs done", "Running now"])
        table.render()
        return 0
