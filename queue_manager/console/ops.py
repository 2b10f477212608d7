"""Operating the queues from the command line, Laravel's way: ``queue:size``, ``queue:clear``,
``queue:pause`` and ``queue:resume`` (``queue:monitor`` is in ``monitor``). Queues are named ``connection:queue``
(``redis:emails``; a bare ``redis`` is that connection's queue), several with commas or spaces."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from cleo.helpers import argument, option

from drivers import BrokerUnreachableError, QueueConfigurationError
from queue_manager.console.base import ManagerCommand, task_modules

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

T = TypeVar("T")


def parse_targets(manager: QueueManager, values: Iterable[str]) -> list[tuple[str, str]]:
    """``["redis:emails,nats", ...]`` -> ``[("redis", "emails"), ("nats", <nats's queue>)]``, names checked."""
    targets: list[tuple[str, str]] = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            name, _, queue = item.partition(":")
            manager.check_connection_name(name)
            targets.append((name, manager.connection(name).check_queue(queue or None)))
    return targets


def cell(value: int | None) -> str:
    return "-" if value is None else str(value)


TASKS_OPTION = option(
    "tasks", None, "Modules holding your tasks, whose queues to list too (default: QUEUE_TASKS)", flag=False
)


class OperatingCommand(ManagerCommand):
    refused_code = 2

    def targets(self, values: Iterable[str] | None, default_all: bool = True) -> list[tuple[str, str]]:
        manager: QueueManager = self.container.make("queue.manager")
        if self.option("tasks") if self.definition.has_option("tasks") else None:
            for module in task_modules(self.option("tasks")):
                importlib.import_module(module)
        given = [v for v in (values or []) if v]
        if given:
            return parse_targets(manager, given)
        default = manager.get_default_driver()
        queues = manager.queues(default) if default_all else [manager.settings.connections[default].queue]
        return [(default, queue) for queue in queues]


class QueueSizeCommand(OperatingCommand):
    name = "queue:size"
    description = "Jobs waiting, delayed and running per queue (default: the default connection's queues)."
    arguments = [argument("queues", "connection:queue ... (e.g. redis:emails nats)", optional=True, multiple=True)]
    options = [TASKS_OPTION]

    def handle(self) -> int:
        try:
            targets = self.targets(self.argument("queues"))
            rows = self.with_manager(lambda manager: _rows(manager, targets))
        except (QueueConfigurationError, BrokerUnreachableError) as error:
            return self.refuse(error)
        table = self.table(rows=rows)
        table.set_headers(["Connection", "Queue", "Waiting", "Delayed", "Running", "Paused"])
        table.render()
        return 0


async def _rows(manager: QueueManager, targets: list[tuple[str, str]]) -> Any:
    rows = []
    for name, queue in targets:
        connection = manager.connection(name)
        counts = await connection.counts(queue)
        try:
            paused = "yes" if await connection.paused(queue) else "no"
        except QueueConfigurationError:
            paused = "-"
        rows.append([name, queue, cell(counts.waiting), cell(counts.delayed), cell(counts.reserved), paused])
    return rows


class QueueClearCommand(OperatingCommand):
    name = "queue:clear"
    description = "Delete the jobs waiting in a queue (asks first when APP_ENV=production)."
    arguments = [argument("connection", "The connection (default: QUEUE_DRIVER)", optional=True)]
    options = [
        option("queue", None, "The queue (default: the connection's)", flag=False),
        option("force", None, "Do not ask, even in production"),
    ]

    def handle(self) -> int:
        manager: QueueManager = self.container.make("queue.manager")
        try:
            name = self.argument("connection") or manager.get_default_driver()
            [(name, queue)] = parse_targets(manager, [f"{name}:{self.option('queue') or ''}"])
        except QueueConfigurationError as error:
            return self.refuse(error)
        in_production = os.environ.get("APP_ENV", "").lower() == "production"
        question = f"Delete every job waiting in {name}:{queue}?"
        if in_production and not self.option("force") and not self.confirm(question, False):
            self.line("<comment>Nothing deleted.</comment>")
            return 1
        try:
            cleared = self.with_manager(lambda manager: manager.connection(name).clear(queue))
        except (QueueConfigurationError, BrokerUnreachableError) as error:
            return self.refuse(error)
        self.line(f"<info>Cleared {cleared} job{'' if cleared == 1 else 's'}</info> from {name}:{queue}.")
        return 0


class PauseCommand(OperatingCommand):
    pausing = True

    def handle(self) -> int:
        try:
            targets = self.targets(self.argument("queues"), default_all=False)
            self.with_manager(lambda manager: _pause(manager, targets, self.pausing))
        except (QueueConfigurationError, BrokerUnreachableError) as error:
            return self.refuse(error)
        for name, queue in targets:
            state = "paused: its workers take no new jobs from it" if self.pausing else "resumed"
            self.line(f"<info>{name}:{queue}</info> {state}.")
        return 0


async def _pause(manager: QueueManager, targets: list[tuple[str, str]], pausing: bool) -> None:
    for name, queue in targets:
        connection = manager.connection(name)
        await (connection.pause(queue) if pausing else connection.resume(queue))


class QueuePauseCommand(PauseCommand):
    name = "queue:pause"
    description = "Workers stop taking jobs from a queue (running ones finish); dispatching still enqueues."
    arguments = [
        argument(
            "queues", "connection:queue ... (default: the default connection's queue)", optional=True, multiple=True
        )
    ]


class QueueResumeCommand(PauseCommand):
    name = "queue:resume"
    description = "Workers take jobs from a paused queue again."
    arguments = [
        argument(
            "queues", "connection:queue ... (default: the default connection's queue)", optional=True, multiple=True
        )
    ]
    pausing = False
