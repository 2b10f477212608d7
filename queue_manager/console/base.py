"""What the queue's artisan commands share: one coroutine on the app's manager, errors as one line, and the
task modules a command imports (``--tasks``)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, TypeVar

from fastapi_startkit.console import Command

from drivers import QueueConfigurationError

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

T = TypeVar("T")
DEFAULT_TASKS = "app.tasks"


def task_modules(value: str | None, default: Sequence[str] = (DEFAULT_TASKS,)) -> list[str]:
    """``--tasks=a,b`` (else ``default``: the ``QUEUE_TASKS`` setting), each checked to exist."""
    modules = [m.strip() for m in value.split(",") if m.strip()] if value else list(default)
    for module in modules:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            hint = (
                ""
                if value
                else " (QUEUE_TASKS, default app.tasks); name your task modules with --tasks=app.tasks,app.mail "
                "or QUEUE_TASKS=app.tasks,app.mail"
            )
            raise QueueConfigurationError(f"Task module {module!r} cannot be found{hint}.")
    return modules


class ManagerCommand(Command):
    #: The exit code of a refused command (queue:work and the operating commands: 2, Laravel's bad input).
    refused_code: ClassVar[int] = 1

    @property
    def manager(self) -> QueueManager:
        manager: QueueManager = self.container.make("queue.manager")
        return manager

    def with_manager(self, work: Callable[[QueueManager], Awaitable[T]]) -> T:
        """Run ``work(manager)``, then close what it opened (connections, the failed-jobs store)."""
        manager = self.manager

        async def main() -> T:
            try:
                return await work(manager)
            finally:
                await manager.shutdown()

        return asyncio.run(main())

    def refuse(self, error: Exception) -> int:
        self.line_error(str(error), style="error")
        return self.refused_code
