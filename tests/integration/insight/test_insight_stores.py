"""The control states' insight primitives against the real servers (and the memory driver): maps whose fields are
written together and read back, lists kept to their cap newest first, fields forgotten. RabbitMQ keeps none (its
connections use the STATE one's)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from drivers.base.control import Entry, Pushed, control_of
from queue_manager import QueueManager
from queue_manager.insight.state import InsightUnavailable, insight_state
from queue_manager.settings import load_settings
from tests.helpers import unique

DRIVERS = ("redis", "redis_stream", "nats", "memory")


@pytest.fixture
async def manager() -> AsyncIterator[QueueManager]:
    made = QueueManager(load_settings({"driver": "redis"}))
    yield made
    await made.shutdown()


@pytest.mark.parametrize("driver", DRIVERS)
async def test_maps_and_capped_lists_round_trip(driver: str, manager: QueueManager) -> None:
    connection = manager.connection(driver)
    await connection.startup()
    state = insight_state(connection)
    name, listed = unique("insight-test:"), unique("insight-test:")
    await state.write(
        [
            Entry(name, "worker:1", "a", 60),
            Entry(name, "worker 2", json.dumps({"x": 1}), 60),
            Pushed(listed, ("1", "2"), 3, 60),
        ]
    )
    await state.write([Pushed(listed, ("3", "4"), 3, 60)])
    await state.write([Pushed(listed, ("5",), 3, 60)])
    assert await state.entries([name, unique("never-written:")]) == [{"worker:1": "a", "worker 2": '{"x": 1}'}, {}]
    assert await state.listed(listed, 10) == ["5", "4", "3"]  # newest first, at most the cap
    assert await state.listed(listed, 2) == ["5", "4"]
    await state.forget(name, ["worker:1"])
    assert await state.entries([name]) == [{"worker 2": '{"x": 1}'}]
    if driver == "nats":  # one process's older pushes beyond the cap are deleted as it pushes
        control: Any = control_of(connection.broker)
        store = await control._store(control._tier(60))
        keys = [key for key in await store.keys() if key.startswith("l.") and listed.split(":")[1] in key]
        assert len(keys) == 2, keys


async def test_rabbitmq_keeps_none_and_says_which_setting_gives_it_some(manager: QueueManager) -> None:
    with pytest.raises(InsightUnavailable, match="QUEUE_CONNECTIONS__RABBITMQ__STATE"):
        insight_state(manager.connection("rabbitmq"))
