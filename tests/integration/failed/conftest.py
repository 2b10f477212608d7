"""Stores for the failed-jobs tests against real servers: SQLite (a file in the test's tmp dir), the shared
Redis (a unique prefix), and a private PostgreSQL and MariaDB started once per session on free loopback ports.
``failed_config`` is the ``failed`` settings of a fresh, empty store of each kind; what it made is removed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import unique
from tests.integration.failed.stores import STORES, delete_keys, drop_table
from tests.servers import private_mariadb, private_postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with private_postgres("failed_jobs") as server:
        yield server.url


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    with private_mariadb("failed_jobs") as server:
        yield server.url


@pytest.fixture(params=STORES)
async def failed_config(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The ``failed`` settings of an empty store of each kind (only the servers a selected test needs start)."""
    kind = request.param
    if kind == "redis":
        prefix = f"test:{unique('failed')}"
        try:
            yield {"driver": "redis", "prefix": prefix}
        finally:
            await delete_keys(prefix)
    elif kind == "sqlite":
        yield {"url": f"sqlite+aiosqlite:///{tmp_path / 'failed.sqlite'}"}
    else:
        url, table = str(request.getfixturevalue(f"{kind}_url")), unique("failed_")
        try:
            yield {"url": url, "table": table}
        finally:
            await drop_table(url, table)
