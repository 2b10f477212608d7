"""What the failed jobs need of the manager, which hands itself over: so they sit below it (import contracts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from queue_manager.connection import Connection
    from queue_manager.settings import QueueSettings


class Connections(Protocol):
    @property
    def settings(self) -> QueueSettings: ...

    def connection(self, name: str | None = None) -> Connection: ...

    def get_default_driver(self) -> str: ...

    def check_connection_name(self, name: str) -> None: ...
