"""``python artisan queue:schedule``: TaskIQ's scheduler for every connection of the app.

TaskIQ's ``LabelScheduleSource`` reads the ``schedule`` label of one broker's tasks and sends through that
broker. Here one source reads every task the app declared (``@task(schedule=...)``, the guide's
``@broker.task(schedule=...)``), and each schedule goes out on its own connection: the one named in the
entry (``{"cron": "*/5 * * * *", "connection": "nats"}``), else the connection whose broker declared the
task, else the default. Every entry is checked when the scheduler starts (a cron expression with the
wrong number of fields or a value out of range is an error then, not a warning at each tick). The loop
that decides when each schedule is due is TaskIQ's own (``SchedulerLoop``).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from taskiq import AsyncBroker, ScheduleSource, TaskiqScheduler
from taskiq.kicker import AsyncKicker
from taskiq.scheduler.scheduled_task import ScheduledTask
from taskiq.utils import maybe_awaitable

from drivers import QueueConfigurationError

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

logger = logging.getLogger("queue_manager.schedule")

SCHEDULE = "schedule"  # TaskIQ's label: a list of {"cron" | "interval" | "time": ..., "args", "kwargs", ...}
# minute, hour, day of month, month, day of week: the ranges pycron (TaskIQ's cron matcher) understands
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
NAMES = {4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]}  # pycron knows day names, not month names
_PART = re.compile(r"^(\*|\w+(?:-\w+)?)(?:/(\d+))?$")


def _value(text: str, field: int) -> int:
    names = NAMES.get(field, [])
    if text.lower() in names:
        return names.index(text.lower())
    return int(text)


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a cron expression TaskIQ can run, or None."""
    fields = expression.split()
    if len(fields) != len(CRON_FIELDS):
        return f"it has {len(fields)} fields, a cron expression has 5 (minute hour day-of-month month day-of-week)"
    for index, (field, (name, low, high)) in enumerate(zip(fields, CRON_FIELDS, strict=True)):
        for part in field.split(","):
            match = _PART.match(part)
            if match is None:
                return f"its {name} field {field!r} is not a number, range, list or */step"
            start, step = match.groups()
            if step is not None and int(step) < 1:
                return f"its {name} field {field!r} has a step of 0"
            if start == "*":
                continue
            try:
                bounds = [_value(bound, index) for bound in start.split("-")]
            except ValueError:
                return f"its {name} field {field!r} is not a number, range, list or */step"
            if any(not low <= bound <= high for bound in bounds):
                return f"its {name} field {field!r} is outside {low}-{high}"
    return None


class AppSchedules(ScheduleSource):
    """Every schedule declared on the app's tasks, each with the connection it goes out on."""

    def __init__(self, manager: QueueManager) -> None:
        self.manager = manager
        self.schedules: dict[str, ScheduledTask] = {}
        self.connection_of: dict[str, str] = {}  # schedule id -> connection name

    def _connection_for(self, task: Any, entry: dict[str, Any]) -> str:
        named = entry.get("connection")
        if named:
            self.manager.check_connection_name(str(named))
            return str(named)
        for name, connection in self.manager.resolved.items():
            if connection.broker is task.broker:
                return name
        return self.manager.get_default_driver()

    def collect(self) -> None:
        """Read and check every schedule now (``queue:schedule`` calls it before it starts anything)."""
        self.schedules.clear()
        self.connection_of.clear()
        tasks = {**AsyncBroker.global_task_registry, **self.manager.tasks}
        for task_name, task in sorted(tasks.items()):
            entries = task.labels.get(SCHEDULE) or []
            if not isinstance(entries, list):
                raise QueueConfigurationError(f"{task_name}: schedule=... must be a list of dicts, got {entries!r}.")
            for number, entry in enumerate(entries, start=1):
                scheduled = self._scheduled(task_name, task, number, entry)
                self.schedules[scheduled.schedule_id] = scheduled
                self.connection_of[scheduled.schedule_id] = self._connection_for(task, entry)

    def _scheduled(self, task_name: str, task: Any, number: int, entry: Any) -> ScheduledTask:
        where = f"{task_name}: schedule entry {number}"
        if not isinstance(entry, dict) or not {"cron", "interval", "time"} & entry.keys():
            raise QueueConfigurationError(f"{where} needs a 'cron', 'interval' or 'time' key, got {entry!r}.")
        if entry.get("cron") is not None:
            problem = cron_problem(str(entry["cron"]))
            if problem:
                raise QueueConfigurationError(f"{where}: cron {entry['cron']!r} is not valid: {problem}.")
        labels = {k: v for k, v in task.labels.items() if k != SCHEDULE}
        labels.update(entry.get("labels") or {})
        try:
            return ScheduledTask(
                task_name=task_name,
                labels=labels,
                schedule_id=str(entry.get("schedule_id") or f"{task_name}#{number}"),
                args=list(entry.get("args") or []),
                kwargs=dict(entry.get("kwargs") or {}),
                cron=entry.get("cron"),
                time=entry.get("time"),
                cron_offset=entry.get("cron_offset"),
                interval=entry.get("interval"),
            )
        except ValueError as error:
            raise QueueConfigurationError(f"{where} is not valid: {error}") from None

    async def get_schedules(self) -> list[ScheduledTask]:
        return list(self.schedules.values())

    def post_send(self, task: ScheduledTask) -> None:
        """A one-off ``time`` schedule is done once sent (as TaskIQ's label source does)."""
        if task.time is not None and not task.cron:
            self.schedules.pop(task.schedule_id, None)


class AppScheduler(TaskiqScheduler):
    """Sends each due schedule through its own connection (TaskIQ's scheduler has one broker)."""

    def __init__(self, manager: QueueManager, source: AppSchedules) -> None:
        super().__init__(manager.connection().broker, [source])
        self.manager = manager
        self.source = source

    async def startup(self) -> None:
        for name in sorted(set(self.source.connection_of.values())):
            await self.manager.connection(name).startup()

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        connection = self.manager.connection(self.source.connection_of[task.schedule_id])
        kicker: AsyncKicker[Any, Any] = AsyncKicker(task.task_name, connection.broker, task.labels)
        kicker = kicker.with_labels(schedule_id=task.schedule_id)
        if task.task_id:
            kicker = kicker.with_task_id(task.task_id)
        handle = await kicker.kiq(*task.args, **task.kwargs)
        logger.info("Sent %s (schedule %s) on connection '%s': job %s", task.task_name, task.schedule_id,
                    connection.name, handle.task_id)  # fmt: skip
        await maybe_awaitable(source.post_send(task))

    async def shutdown(self) -> None:
        await self.manager.shutdown()
