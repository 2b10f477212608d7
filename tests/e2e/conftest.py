"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import SERVER_DRIVERS, cleanup, unique


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    """Where the example app's jobs record what ran (RECORD_DIR)."""
    path = tmp_path / "records"
    path.mkdir()
    return path


@pytest.fixture
def queues() -> Iterator[dict[str, str]]:
    """A unique default queue per connection; whatever they leave behind is deleted afterwards."""
    names = {driver: unique() for driver in SERVER_DRIVERS}
    yield names
    for driver, queue in names.items():
        cleanup(driver, queue)
