"""``ControlState.claim`` (set if unset, atomically, for a while) on each real server: of many processes that
claim one name at once exactly one gets it, until it expires (``queue:schedule``'s per-tick lock)."""

from __future__ import annotations

import asyncio
import time

import pytest

from drivers.base.control import ControlState, control_of
from queue_manager import Connection, QueueManager
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, unique

pytestmark = pytest.mark.usefixtures("clean_env")


async def started(driver: str) -> tuple[Connection, ControlState]:
    connection = QueueManager(load_settings({"driver": driver})).connection()
    await connection.startup()
    control = control_of(connection.broker)
    assert control is not None
    return connection, control


@pytest.mark.parametrize("driver", [*SERVER_DRIVERS, "memory"])
async def test_one_of_many_concurrent_claims_wins_until_it_expires(driver: str) -> None:
    name = unique("claim-")
    pairs = [await started(driver) for _ in range(1 if driver == "memory" else 3)]  # each its own client
    try:
        claims = [control.claim(name, 2) for _, control in pairs for _ in range(5)]
        assert sorted(await asyncio.gather(*claims)) == [False] * (len(claims) - 1) + [True]
        assert not await pairs[-1][1].claim(name, 2), "claimed: refused"
        deadline = time.monotonic() + 60
        while not await pairs[-1][1].claim(name, 2):  # it expires after 2 s
            assert time.monotonic() < deadline, "the claim never expired"
            await asyncio.sleep(0.2)
        assert not await pairs[0][1].claim(name, 2), "claimed again: refused again"
    finally:
        for connection, _ in pairs:
            await connection.shutdown()
