"""The libraries a failed-jobs store needs, checked at boot with ``find_spec`` (which imports nothing)."""

from __future__ import annotations

import importlib.util

from drivers.base.errors import MissingExtraError
from drivers.registry import DISTRIBUTION
from queue_manager.settings.failed import FailedSettings, dialect_driver

CORE = f"pip install --force-reinstall '{DISTRIBUTION}'"  # a core dependency went missing
# database driver -> (library to find, how to install it)
LIBRARIES: dict[str, tuple[str, str]] = {
    "asyncpg": ("asyncpg", f"pip install '{DISTRIBUTION}[postgres]'"),
    "aiomysql": ("aiomysql", f"pip install '{DISTRIBUTION}[mysql]'"),
    "aiosqlite": ("aiosqlite", CORE),
    "psycopg": ("psycopg", "pip install 'psycopg[binary]'"),
    "psycopg_async": ("psycopg", "pip install 'psycopg[binary]'"),
    "asyncmy": ("asyncmy", "pip install asyncmy"),
}


def check_libraries(settings: FailedSettings) -> None:
    """Raise ``MissingExtraError`` naming the extra if a library the store needs is missing (imports nothing)."""
    if settings.driver == "null":
        return
    if settings.driver == "redis":
        what, needed = "redis", [("redis", f"pip install '{DISTRIBUTION}[redis]'")]
    else:
        dialect, driver = dialect_driver(settings.url_value)
        what = f"{dialect}+{driver}"
        needed = [("sqlalchemy", CORE), ("greenlet", CORE), LIBRARIES[driver]]
    for library, install in needed:
        if importlib.util.find_spec(library) is None:
            raise MissingExtraError(
                f"The failed-jobs store ({what}) needs the '{library}' library, which is not installed. "
                f"Install it with: {install}"
            )
