"""What the queue's artisan commands share: one coroutine on the app's manager, and errors as one line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

from fastapi_startkit.console import Command

if TYPE_CHECKING:
    from queue_manager.manager import QueueManager

T = TypeVar("T")


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
