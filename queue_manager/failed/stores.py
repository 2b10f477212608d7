"""Picks the failed-jobs store the settings name, without connecting or importing its libraries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from queue_manager.failed.libraries import check_libraries
from queue_manager.failed.store import FailedJobStore, LazyStore
from queue_manager.settings.failed import FailedSettings

DEFAULT_SQLITE = Path("storage") / "queue" / "failed_jobs.sqlite"  # under the app's base_path


def make_store(settings: FailedSettings, base_path: Path, redis_url: Callable[[str | None], str]) -> FailedJobStore:
    """The store ``settings`` name; ``redis_url(settings.connection)`` gives the Redis URL of the redis driver."""
    check_libraries(settings)
    if settings.driver == "null":
        from queue_manager.failed.null import NullStore

        return NullStore()
    if settings.driver == "redis":
        from queue_manager.failed.redis import RedisStore

        return RedisStore(redis_url(settings.connection), settings.prefix)
    url, table, default_path = settings.url_value, settings.table, Path(base_path).resolve() / DEFAULT_SQLITE

    def build() -> FailedJobStore:
        from queue_manager.failed.database import DatabaseStore

        return DatabaseStore(url, table, default_path)

    return LazyStore(build)
