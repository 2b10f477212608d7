"""The values every worker of a connection shares (queue:restart, paused queues), on each real server."""

from __future__ import annotations

import pytest

from drivers.base.control import control_of
from queue_manager import QueueManager
from queue_manager.settings import load_settings
from tests.helpers import SERVER_DRIVERS, unique

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.mark.parametrize("driver", [*SERVER_DRIVERS, "memory"])
async def test_set_get_and_delete_a_shared_value(driver: str) -> None:
    manager = QueueManager(load_settings({"driver": driver}))
    writer, reader = manager.connection(), QueueManager(load_settings({"driver": driver})).connection()
    await writer.startup()
    await reader.startup()
    name = unique("control-")
    try:
        control, other = control_of(writer.broker), control_of(reader.broker)
        assert control is not None and other is not None
        assert await control.get(name) is None
        await control.set(name, "1701.5")
        await control.set(name, "1702.5")
        if driver != "memory":  # the memory driver's values live in its process
            assert await other.get(name) == "1702.5", "another process's connection sees the latest value"
            assert await other.get(name) == "1702.5", "reading does not consume it"
        assert await control.get(name) == "1702.5"
        await control.delete(name)
        assert await control.get(name) is None
    finally:
        if driver == "rabbitmq":
            await control.delete(name)  # type: ignore[union-attr]
        await manager.shutdown()
        await reader.shutdown()
