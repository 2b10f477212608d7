"""The queue's artisan commands, Laravel's names: the worker (``work``: ``queue:work``, ``queue:restart``),
operating the queues (``ops``), failed jobs (``failed``) and the scheduler (``schedule``), on ``ManagerCommand``
(``base``).

``COMMANDS`` lists them by module, as text: the provider registers stand-ins (``lazy_command``) that import a
command's module only when the console builds it, so a web app's boot never imports cleo (about 10 ms).
"""

from __future__ import annotations

import importlib
from typing import Any

COMMANDS: dict[str, tuple[str, ...]] = {
    "queue_manager.console.work": ("QueueWorkCommand", "QueueRestartCommand"),
    "queue_manager.console.supervise": ("QueueSuperviseCommand",),
    "queue_manager.console.monitor": ("QueueMonitorCommand",),
    "queue_manager.console.schedule": ("QueueScheduleCommand",),
    "queue_manager.console.insight": ("QueueMetricsCommand", "QueueWorkersCommand"),
    "queue_manager.console.failed": (
        "QueueFailedCommand",
        "QueueRetryCommand",
        "QueueForgetCommand",
        "QueueFlushCommand",
        "QueuePruneFailedCommand",
    ),
    "queue_manager.console.batches": (
        "QueueBatchesCommand",
        "QueueBatchCommand",
        "QueueRetryBatchCommand",
        "QueuePruneBatchesCommand",
    ),
    "queue_manager.console.ops": (
        "QueueSizeCommand",
        "QueueClearCommand",
        "QueuePauseCommand",
        "QueueResumeCommand",
    ),
}


def lazy_command(module: str, name: str) -> type:
    """A class whose instantiation imports ``module`` and returns its command ``name``, built."""

    def build(_cls: type) -> Any:
        return getattr(importlib.import_module(module), name)()

    return type(name, (), {"__new__": build, "__module__": module, "__doc__": f"{module}.{name}, loaded when used"})


def commands() -> list[type]:
    """A stand-in for every command, for ``Provider.commands``."""
    return [lazy_command(module, name) for module, names in COMMANDS.items() for name in names]
