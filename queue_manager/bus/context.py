"""What the bus needs of the manager (which hands itself over, or is ``current()``): so the bus sits below it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

from taskiq import AsyncBroker, AsyncTaskiqTask

from queue_manager.batches import Batches
from queue_manager.context import current


class BusConnection(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def queue(self) -> str: ...

    @property
    def broker(self) -> AsyncBroker: ...

    async def startup(self) -> None: ...

    def check_queue(self, queue: str | None = None) -> str: ...

    async def send_named(
        self,
        task_name: str,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        labels: dict[str, Any],
        task_id: str | None = None,
    ) -> AsyncTaskiqTask[Any]: ...


class BusManager(Protocol):
    batches: Batches

    def connection(self, name: str | None = None) -> BusConnection: ...

    def get_default_driver(self) -> str: ...


def bus_manager() -> BusManager:
    return cast(BusManager, current())
