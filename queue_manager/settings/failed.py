"""Where failed jobs are kept (Laravel's ``queue.failed`` config), checked at boot without importing a driver.

Importing SQLAlchemy costs ~50 ms, so the URL is checked by its shape here (and the libraries by
``queue_manager.failed.check_libraries``, with ``find_spec``); the store imports them when it is first used.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

SQLITE_DEFAULT = "sqlite+aiosqlite"  # the driver of the default URL (None)
# dialect -> the async drivers SQLAlchemy can use for it; the first is the one we suggest and test.
ASYNC_DRIVERS: dict[str, tuple[str, ...]] = {
    "postgresql": ("asyncpg", "psycopg", "psycopg_async"),
    "mysql": ("aiomysql", "asyncmy"),
    "mariadb": ("aiomysql", "asyncmy"),
    "sqlite": ("aiosqlite",),
}
ALIASES = {"postgres": "postgresql"}  # Heroku-style URLs
_URL = re.compile(r"^(?P<dialect>[A-Za-z][A-Za-z0-9_]*)(?:\+(?P<driver>[A-Za-z0-9_]+))?://", re.ASCII)
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,47}$", re.ASCII)  # room for index names within 63 characters
_EXAMPLES = "'postgresql+asyncpg://...', 'mysql+aiomysql://...' or 'sqlite+aiosqlite:///path'"


def _suggestion(dialect: str) -> str:
    return f"{dialect}+{ASYNC_DRIVERS[dialect][0]}://"


def dialect_driver(url: str | None) -> tuple[str, str]:
    """``(dialect, driver)`` of a URL that passed validation; the SQLite default for None."""
    if url is None:
        return ("sqlite", "aiosqlite")
    match = _URL.match(url)
    if match is None or match["driver"] is None:
        raise ValueError("not a validated failed-jobs URL")
    return (ALIASES.get(match["dialect"].lower(), match["dialect"].lower()), match["driver"].lower())


def check_url(url: str) -> None:
    """Raise ValueError unless ``url`` is an async SQLAlchemy URL; messages show the scheme at most."""
    match = _URL.match(url)
    if match is None:
        raise ValueError(f"is not a database URL: expected 'dialect+driver://...', such as {_EXAMPLES}")
    scheme = match.group(0)  # dialect[+driver]:// only: never echo credentials
    dialect = match["dialect"].lower()
    if dialect in ALIASES:
        raise ValueError(f"'{scheme}' is not a SQLAlchemy dialect: use '{_suggestion(ALIASES[dialect])}'")
    if dialect not in ASYNC_DRIVERS:
        raise ValueError(f"'{scheme}' is not a database the failed-jobs store supports: use {_EXAMPLES}")
    driver = (match["driver"] or "").lower()
    if driver not in ASYNC_DRIVERS[dialect]:
        why = f"uses the synchronous driver '{driver}'" if driver else "names no driver (SQLAlchemy's default is sync)"
        raise ValueError(
            f"'{scheme}' {why}; the failed-jobs store is async: use the async driver '{_suggestion(dialect)}'"
        )
    try:
        urlsplit(url).port  # noqa: B018 - parsing is the check
    except ValueError:
        raise ValueError(f"'{scheme}...' has an invalid port") from None


class FailedSettings(BaseModel):
    """``driver``: database (SQLAlchemy async; SQLite under storage/queue by default), redis or null.

    ``url`` is the database URL (None: ``sqlite+aiosqlite:///<base_path>/storage/queue/failed_jobs.sqlite``)
    and is used by the database driver only; ``connection`` names the queue connection whose Redis holds
    them for the redis driver (None: the default connection).
    """

    # hide_input_in_errors: a rejected URL must not reach the error text with its password.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    driver: Literal["database", "redis", "null"] = "database"
    url: SecretStr | None = None
    table: str = "failed_jobs"
    connection: str | None = None
    prefix: str = "queues:failed"

    @field_validator("url")
    @classmethod
    def _async_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_url(value.get_secret_value())
        return value

    @field_validator("table")
    @classmethod
    def _plain_table(cls, value: str) -> str:
        if not _TABLE.match(value):
            raise ValueError("must be 1 to 48 letters, digits or underscores, not starting with a digit")
        return value

    @field_validator("prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not value or len(value) > 200 or any(ch.isspace() for ch in value):
            raise ValueError("must be 1 to 200 characters without spaces")
        return value

    @property
    def url_value(self) -> str | None:
        return self.url.get_secret_value() if self.url else None
