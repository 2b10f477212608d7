"""The batch store (``manager.batches``): where each batch, and each of its jobs' outcomes by job id, is kept.

Configured like the failed jobs (``QUEUE_BATCHES__DRIVER``: database, the default, SQLite under storage/queue or
any SQLAlchemy URL in ``QUEUE_BATCHES__URL``; redis, on ``QUEUE_BATCHES__CONNECTION``'s Redis; memory). What is
done with it (chains, batches, callbacks) is ``queue_manager.bus``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from drivers.base.errors import MissingExtraError
from queue_manager.batches.memory import MemoryBatchStore
from queue_manager.batches.store import DONE, FAILED, SKIPPED, BatchRow, BatchStore, LazyStore, Recorded, hours_ago
from queue_manager.settings.batches import BatchSettings
from queue_manager.settings.failed import dialect_driver

DEFAULT_SQLITE = Path("storage") / "queue" / "batches.sqlite"  # under the app's base_path


class Batches:
    """The store the settings name, built on first use; ``isolated()`` swaps in a memory store for a test."""

    def __init__(self, settings: BatchSettings, base_path: Path | None, redis_url: Callable[[str | None], str]):
        self.settings = settings
        self.base_path = base_path or Path.cwd()
        self._redis_url = redis_url
        self._store: BatchStore | None = None

    @property
    def store(self) -> BatchStore:
        if self._store is None:
            self._store = self._make()
        return self._store

    def _make(self) -> BatchStore:
        settings = self.settings
        if settings.driver == "memory":
            return MemoryBatchStore()
        if settings.driver == "redis":
            from queue_manager.batches.redis import RedisBatchStore

            return RedisBatchStore(self._redis_url(settings.connection), settings.prefix)
        _check_database_libraries(settings)
        url, table = settings.url_value, settings.table
        default_path = Path(self.base_path).resolve() / DEFAULT_SQLITE

        def build() -> BatchStore:
            from queue_manager.batches.database import DatabaseBatchStore

            return DatabaseBatchStore(url, table, default_path)

        return LazyStore(build, f"database ({dialect_driver(url)[0]})")

    @contextmanager
    def isolated(self) -> Iterator[MemoryBatchStore]:
        """Keep batches in this process only while inside (the pytest plugin does, for each test)."""
        kept = self._store
        self._store = store = MemoryBatchStore()
        try:
            yield store
        finally:
            self._store = kept

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()


def _check_database_libraries(settings: BatchSettings) -> None:
    import importlib.util

    from drivers.registry import DISTRIBUTION

    dialect, driver = dialect_driver(settings.url_value)
    for library in ("sqlalchemy", "greenlet", driver if driver != "psycopg_async" else "psycopg"):
        if importlib.util.find_spec(library) is None:
            raise MissingExtraError(
                f"The batch store ({dialect}+{driver}) needs the '{library}' library, which is not installed. "
                f"Install it with: pip install '{DISTRIBUTION}[{'postgres' if dialect == 'postgresql' else dialect}]'"
            )


__all__ = [
    "DEFAULT_SQLITE",
    "DONE",
    "FAILED",
    "SKIPPED",
    "BatchRow",
    "BatchStore",
    "Batches",
    "LazyStore",
    "MemoryBatchStore",
    "Recorded",
    "hours_ago",
]
