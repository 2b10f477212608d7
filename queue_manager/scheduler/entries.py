"""The schedules an app declared on its tasks, read and checked when ``queue:schedule`` starts.

TaskIQ's ``LabelScheduleSource`` reads the ``schedule`` label of one broker's tasks. Here one source reads every
task the app declared (``@task(schedule=...)``, the guide's ``@broker.task(schedule=...)``), and each schedule
goes out on its own connection: the one named in the entry (``{"cron": "*/5 * * * *", "connection": "nats"}``),
else the connection whose broker declared the task, else the default. TaskIQ takes what it is given and fails
(or quietly does something else) at each tick; every entry is checked here instead, and one that cannot work is
an error naming the task, the entry and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from taskiq import AsyncBroker, ScheduleSource
from taskiq.scheduler.scheduled_task import ScheduledTask

from drivers import QueueConfigurationError
from drivers.base.errors import did_you_mean
from queue_manager.scheduler.cron import cron_problem, offset_problem

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

SCHEDULE = "schedule"  # TaskIQ's label: a list of {"cron" | "interval" | "time": ..., "args", "kwargs", ...}
WHEN = ("cron", "interval", "time")
KEYS = (*WHEN, "cron_offset", "args", "kwargs", "labels", "schedule_id", "connection")


def entry_problem(entry: Mapping[Any, Any]) -> str | None:
    """What is wrong with one schedule entry (a dict), and how to write it; None if nothing is."""
    unknown = sorted(str(key) for key in entry if key not in KEYS)
    if unknown:
        return f"has an unknown key {unknown[0]!r}.{did_you_mean(unknown[0], KEYS)} The keys: {', '.join(KEYS)}"
    when = [key for key in WHEN if entry.get(key) is not None]
    if len(when) != 1:
        given = f" (it has {' and '.join(when)}: make one entry of each)" if when else ""
        return f"needs one of 'cron', 'interval' or 'time'{given}"
    if when == ["cron"]:
        problem = cron_problem(str(entry["cron"]))
        if problem:
            return f"cron {entry['cron']!r} is not valid: {problem}"
    elif entry.get("cron_offset") is not None:
        return "has a cron_offset, which only a 'cron' schedule uses: remove it"
    problem = offset_problem(entry.get("cron_offset"))
    if problem:
        return problem
    args, kwargs, labels = entry.get("args"), entry.get("kwargs"), entry.get("labels")
    if args is not None and not isinstance(args, list | tuple):
        return f"args must be a list of the task's positional arguments, got {args!r}: write args=[{args!r}]"
    if kwargs is not None and not isinstance(kwargs, dict):
        return f"kwargs must be a dict of the task's keyword arguments like {{'name': 'value'}}, got {kwargs!r}"
    if labels is not None and not isinstance(labels, dict):
        return f"labels must be a dict like {{'priority': 5}}, got {labels!r}"
    return None


def _invalid(error: ValidationError) -> str:
    """TaskIQ's own checks (``ScheduledTask``), one line each: ``interval: ...`` or its model check's message."""
    found = [
        (".".join(str(at) for at in each["loc"]), each["msg"].removeprefix("Value error, ")) for each in error.errors()
    ]
    return "; ".join(f"{where}: {message}" if where else message for where, message in found)


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
                raise QueueConfigurationError(
                    f"{task_name}: schedule=... must be a list of dicts like [{{'cron': '*/5 * * * *'}}], "
                    f"got {entries!r}."
                )
            for number, entry in enumerate(entries, start=1):
                scheduled = self._scheduled(task_name, task, number, entry)
                self.schedules[scheduled.schedule_id] = scheduled
                self.connection_of[scheduled.schedule_id] = self._connection_for(task, entry)

    def _scheduled(self, task_name: str, task: Any, number: int, entry: Any) -> ScheduledTask:
        where = f"{task_name}: schedule entry {number}"
        if not isinstance(entry, dict):
            raise QueueConfigurationError(f"{where} must be a dict like {{'cron': '*/5 * * * *'}}, got {entry!r}.")
        if entry.get("schedule_id"):
            where += f" ({entry['schedule_id']})"
        problem = entry_problem(entry)
        if problem:
            raise QueueConfigurationError(f"{where} {problem}.")
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
        except ValidationError as error:
            raise QueueConfigurationError(f"{where} is not valid: {_invalid(error)}.") from None

    async def get_schedules(self) -> list[ScheduledTask]:
        return list(self.schedules.values())

    def post_send(self, task: ScheduledTask) -> None:
        """A one-off ``time`` schedule is done once sent (as TaskIQ's label source does)."""
        if task.time is not None and not task.cron:
            self.schedules.pop(task.schedule_id, None)
