"""RabbitMQ's control state read by many processes at once (issue 22 item 8).

The pause flag and the restart signal were read by taking their one message and putting it back, so while one
reader held it every other reader saw "not set": 2 workers and 2 pollers ran every job of a paused queue, and a
worker restarted when a poller held the restart signal. Here each reader is a connection of its own, as the
processes of a deployment are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from drivers.base.control import ControlState, control_of
from queue_manager import QueueManager
from tests.helpers import unique
from tests.integration.drivers.isolated import drop_namespace, isolated_manager

pytestmark = pytest.mark.usefixtures("clean_env")
READERS = 8
READS = 40


@contextlib.asynccontextmanager
async def readers(count: int) -> AsyncIterator[tuple[ControlState, list[ControlState]]]:
    """A writer and ``count`` readers, each on a connection of its own, sharing one exchange."""
    namespace, queue = unique("ns"), unique("q")
    managers = [isolated_manager("rabbitmq", queue, namespace) for _ in range(count + 1)]
    states: list[ControlState] = []
    for manager in managers:
        await manager.connection().startup()
        state = control_of(manager.connection().broker)
        assert state is not None
        states.append(state)
    try:
        yield states[0], states[1:]
    finally:
        await drop_namespace("rabbitmq", namespace, [queue], (states[0], ["value", "restart:app"]))
        for manager in managers:
            await manager.shutdown()


async def test_every_concurrent_reader_sees_the_value() -> None:
    async with readers(READERS) as (writer, others):
        await writer.set("value", "1701.5")

        async def read_many(state: ControlState) -> list[str | None]:
            return [await state.get("value") for _ in range(READS)]

        seen = await asyncio.gather(*(read_many(state) for state in others))
        missed = sum(1 for reads in seen for value in reads if value != "1701.5")
        assert missed == 0, f"{missed} of {READERS * READS} concurrent reads did not see the value"
        assert await writer.get("value") == "1701.5", "reading took nothing away"
        await writer.delete("value")
        assert [await state.get("value") for state in others] == [None] * READERS


async def test_a_restart_signal_is_neither_missed_nor_invented() -> None:
    """Readers poll the signal while it is changed once: each sees the old value, then the new one, nothing else."""
    async with readers(READERS) as (writer, others):
        await writer.set("restart:app", "1000.0")
        changed = asyncio.Event()

        async def poll(state: ControlState) -> list[str | None]:
            values: list[str | None] = []
            while True:
                values.append(await state.get("restart:app"))
                if changed.is_set() and values[-1] == "2000.0":
                    return values

        polling = [asyncio.ensure_future(poll(state)) for state in others]
        try:
            await asyncio.sleep(0)  # the pollers start (they read concurrently with the change below)
            for _ in range(READS):  # a while of concurrent reads before the change
                assert await writer.get("restart:app") == "1000.0"
            await writer.set("restart:app", "2000.0")
            changed.set()
            seen = await asyncio.wait_for(asyncio.gather(*polling), timeout=60)
        finally:
            for task in polling:
                task.cancel()
        for values in seen:
            first_new = values.index("2000.0")
            assert set(values[:first_new]) <= {"1000.0"}, f"a reader saw {set(values[:first_new])} before the change"
            assert set(values[first_new:]) == {"2000.0"}, f"a reader saw {set(values[first_new:])} after the change"


@pytest.mark.parametrize("paused", [True, False])
async def test_a_paused_flag_read_by_workers_and_pollers_is_always_seen(paused: bool) -> None:
    """What ``PausedQueues`` and the dashboard ask, many at once."""
    namespace, queue = unique("ns"), unique("q")
    managers: list[QueueManager] = [isolated_manager("rabbitmq", queue, namespace) for _ in range(4)]
    try:
        connections = [manager.connection() for manager in managers]
        if paused:
            await connections[0].pause()

        async def look(times: int, index: int) -> list[bool]:
            return [await connections[index].paused() for _ in range(times)]

        seen = await asyncio.gather(*(look(READS, index) for index in range(4)))
        assert all(value is paused for values in seen for value in values), [values.count(paused) for values in seen]
    finally:
        await connections[0].resume()
        await drop_namespace("rabbitmq", namespace, [queue])
        for manager in managers:
            await manager.shutdown()


async def test_reads_while_the_value_is_set_and_unset_again_and_again() -> None:
    """A consumer that comes to a stream while RabbitMQ is making or deleting it gets the whole connection closed
    (INTERNAL_ERROR): readers keep reading through it, and the writer's connection is not touched."""
    async with readers(4) as (writer, others):
        stop = asyncio.Event()

        async def read(state: ControlState) -> set[str | None]:
            seen: set[str | None] = set()
            while not stop.is_set():
                seen.add(await state.get("value"))
            return seen

        reading = [asyncio.ensure_future(read(state)) for state in others]
        try:
            for n in range(30):
                await writer.set("value", f"{n}.0")
                await writer.delete("value")
            stop.set()
            seen = await asyncio.wait_for(asyncio.gather(*reading), timeout=60)
        finally:
            for task in reading:
                task.cancel()
        assert set().union(*seen) <= {None, *(f"{n}.0" for n in range(30))}
        await writer.set("value", "done")  # the writer's connection still works
        assert [await state.get("value") for state in others] == ["done"] * 4
