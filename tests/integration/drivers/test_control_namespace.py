"""Control values (restart, pauses, counters) and queues never share a name (issue 22 item 5).

Queue names may contain ``:`` (and on RabbitMQ ``.``), so a control value kept as ``<prefix>control:<name>`` was the
queue ``control:<name>``: ``queue:pause redis:foo`` overwrote the list of the queue ``control:paused:foo`` and its
jobs were gone. Each test fills a queue named as the control value used to be, then sets the value.
"""

from __future__ import annotations

import pytest

from drivers.base.control import control_of, paused_key
from queue_manager import task
from tests.helpers import SERVER_DRIVERS
from tests.integration.drivers.isolated import isolated_connection

pytestmark = pytest.mark.usefixtures("clean_env")
JOBS = 10


@task(name="tests.control_namespace.job")
async def job(n: int) -> int:
    return n


def old_control_name(driver: str, namespace: str, name: str) -> str:
    """The queue whose name the control value ``name`` used to have (a Redis key, a RabbitMQ queue)."""
    return f"{namespace}.control.{name}" if driver == "rabbitmq" else f"control:{name}"


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
@pytest.mark.parametrize("name", ["paused:foo", "restart", "restart:app"])
async def test_setting_a_control_value_leaves_the_queue_of_that_name_alone(driver: str, name: str) -> None:
    async with isolated_connection(driver) as conn:
        queue = old_control_name(driver, conn.namespace, name)  # type: ignore[attr-defined]
        if driver == "nats" and "." in queue:
            pytest.skip("NATS queue names hold no dots")
        conn.made_queues.append(queue)  # type: ignore[attr-defined]
        conn.control_names.append(name)  # type: ignore[attr-defined]
        for n in range(JOBS):
            await conn.dispatch(job, n).on_queue(queue)
        assert await conn.size(queue) == JOBS
        control = control_of(conn.broker)
        assert control is not None
        await control.set(name, "1701.5")
        assert await control.get(name) == "1701.5"
        assert await conn.size(queue) == JOBS, f"setting {name!r} touched the queue {queue!r}"
        await control.delete(name)
        assert await conn.size(queue) == JOBS, f"deleting {name!r} touched the queue {queue!r}"


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_pausing_a_queue_leaves_the_queue_named_like_its_flag_alone(driver: str) -> None:
    """``queue:pause redis:foo`` used to overwrite the queue ``control:paused:foo`` (10 jobs gone)."""
    async with isolated_connection(driver) as conn:
        flag = old_control_name(driver, conn.namespace, paused_key("foo"))  # type: ignore[attr-defined]
        conn.made_queues.append(flag)  # type: ignore[attr-defined]
        conn.control_names.append(paused_key("foo"))  # type: ignore[attr-defined]
        for n in range(JOBS):
            await conn.dispatch(job, n).on_queue(flag)
        await conn.pause("foo")
        assert await conn.paused("foo")
        assert not await conn.paused(flag), "the queue named like the flag is not paused"
        assert await conn.size(flag) == JOBS
        await conn.resume("foo")
        assert await conn.size(flag) == JOBS
        assert not await conn.paused("foo")


LOOKALIKES = [
    ("\u3abc", ":bc"),  # NATS wrote ':' as '_3a' and U+3ABC as '_3abc': both were the key 'paused_3a_3abc'
    ("a:b", "a_3ab"),
    ("a_b", "a-b"),
]


def _accepts(driver: str, *queues: str) -> bool:
    from drivers import DRIVERS
    from drivers.base.names import queue_name_problem

    return all(queue_name_problem(queue, DRIVERS[driver].queue_rule) is None for queue in queues)


@pytest.mark.parametrize(
    ("driver", "paused", "other"),
    # only the pairs a driver accepts as queue names (RabbitMQ refuses U+3ABC): none is skipped at run time
    [
        (driver, paused, other)
        for driver in SERVER_DRIVERS
        for paused, other in LOOKALIKES
        if _accepts(driver, paused, other)
    ],
)
async def test_pausing_one_queue_pauses_no_other(driver: str, paused: str, other: str) -> None:
    async with isolated_connection(driver) as conn:
        names = [paused_key(paused), paused_key(other)]
        conn.control_names.extend(names)  # type: ignore[attr-defined]
        await conn.pause(paused)
        assert await conn.paused(paused)
        assert not await conn.paused(other), f"pausing {paused!r} paused {other!r} too"


@pytest.mark.parametrize("driver", ["redis", "redis_stream", "rabbitmq"])
async def test_no_queue_name_the_driver_accepts_is_a_control_key(driver: str) -> None:
    """The queue that would have a control value's key (Redis: the key without the queue prefix; RabbitMQ: the
    queue itself) is refused by the driver's own check, whatever the value's name."""
    from drivers import DRIVERS
    from drivers.base.names import queue_name_problem

    async with isolated_connection(driver) as conn:
        control = control_of(conn.broker)
        assert control is not None
        for name in ("restart", "restart:app", "paused:foo", "throughput:foo:29000000", "x" * 180, "y" * 300, "é:日"):
            if driver == "rabbitmq":
                key = control.queue_name(name)  # type: ignore[attr-defined]
                queue = key
            else:
                key = control.prefix + name  # type: ignore[attr-defined]
                queue = key.removeprefix(conn.broker.prefix)  # type: ignore[attr-defined]
            assert queue_name_problem(queue, DRIVERS[driver].queue_rule) is not None, (name, key)
