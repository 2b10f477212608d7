"""One queue-name check per driver, matching what its broker refuses (issue 22 items 13 and 14).

Every character class is tried on the real server: the driver's check (``base.names`` plus the rule its registry
entry carries) must refuse a name exactly when the broker (or its client library) would. The one deliberate
difference: every driver refuses whitespace, which no broker needs and the control state relies on (a control
value's name holds a space, so no queue is ever named like one). Then every entry point in this process uses that
check: dispatch, bulk, a worker's queues, size/clear/counts/pause/resume.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from drivers import DRIVERS
from drivers.base.names import queue_name_problem
from queue_manager import QueueConfigurationError, task
from tests.helpers import SERVER_DRIVERS, unique
from tests.integration.drivers.isolated import isolated_connection

pytestmark = pytest.mark.usefixtures("clean_env")
CHARACTERS = [chr(code) for code in range(128)] + ["é", "日", "\u00a0", "\u2028", "\U0001f600"]
BAD = {"redis": "}x{", "redis_stream": "a{b}", "rabbitmq": "a?b", "nats": "é" * 124}


@task(name="tests.queue_names.job")
async def job(n: int) -> int:
    return n


def refused_by_us(driver: str, name: str) -> bool:
    return queue_name_problem(name, DRIVERS[driver].queue_rule) is not None


async def refused_by_rabbitmq(connection: object, name: str) -> bool:
    try:
        async with connection.channel() as channel:  # type: ignore[attr-defined]
            await channel.declare_queue(name, durable=False, auto_delete=True)
            await channel.queue_delete(name)
    except Exception:
        return True
    return False


async def test_rabbitmq_check_refuses_exactly_what_rabbitmq_refuses() -> None:
    import aio_pika

    tag = unique("n")
    names = [f"{tag}x{ch}y" for ch in CHARACTERS]
    names += ["amq.x" + tag, "AMQ.x" + tag, "Amq.x" + tag, tag + "amq.", "a" * 200]
    differ: dict[str, tuple[bool, bool]] = {}
    async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
        for name in names:
            ours, theirs = refused_by_us("rabbitmq", name), await refused_by_rabbitmq(amqp, name)
            if ours != theirs and not any(ch.isspace() for ch in name):
                differ[name] = (ours, theirs)
    assert not differ, f"(refused by us, refused by RabbitMQ) differ for {differ}"


@contextlib.asynccontextmanager
async def nats_stream() -> AsyncIterator[object]:
    """A work-queue stream of the test's own on the shared server."""
    import nats
    from nats.js.api import RetentionPolicy, StreamConfig

    client = await nats.connect("nats://127.0.0.1:4222")
    stream, prefix = unique("NAMES"), unique("names")
    js = client.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"], retention=RetentionPolicy.WORK_QUEUE))
    try:
        yield js, stream, prefix
    finally:
        await js.delete_stream(stream)
        await client.close()


async def refused_by_nats(js: object, stream: str, prefix: str, queue: str) -> bool:
    """What the driver does with a queue name: a durable consumer ``workers_<queue>`` on ``<prefix>.<queue>``, and a
    publish there."""
    from nats.js.api import AckPolicy, ConsumerConfig

    config = ConsumerConfig(
        durable_name=f"workers_{queue}", filter_subject=f"{prefix}.{queue}", ack_policy=AckPolicy.EXPLICIT
    )
    try:
        await js.add_consumer(stream, config)  # type: ignore[attr-defined]
        await js.publish(f"{prefix}.{queue}", b"x", timeout=5)  # type: ignore[attr-defined]
    except Exception:
        return True
    with contextlib.suppress(Exception):
        await js.delete_consumer(stream, f"workers_{queue}")  # type: ignore[attr-defined]
    return False


async def test_nats_check_refuses_exactly_what_nats_refuses() -> None:
    names = [f"x{ch}y" for ch in CHARACTERS]
    # a consumer name is at most 255 bytes: workers_ and 247 bytes of queue name
    names += ["a" * 200, "é" * 123, "é" * 124, "日" * 82, "日" * 83, "..", ".a", "a..b", "$x", "a\\b"]
    differ: dict[str, tuple[bool, bool]] = {}
    async with nats_stream() as (js, stream, prefix):
        for name in names:
            ours, theirs = refused_by_us("nats", name), await refused_by_nats(js, stream, prefix, name)
            if ours != theirs and not any(ch.isspace() for ch in name):
                differ[name[:20]] = (ours, theirs)
    assert not differ, f"(refused by us, refused by NATS) differ for {differ}"


@pytest.mark.parametrize("driver", ["redis", "redis_stream"])
@pytest.mark.parametrize("name", ["}", "}x{", "{a}", "a{b", "x}"])
def test_redis_refuses_braces_which_would_break_a_cluster_hash_tag(driver: str, name: str) -> None:
    assert refused_by_us(driver, name)
    assert not refused_by_us(driver, "a:b.c-d_e/f#g@h")


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
async def test_every_entry_point_refuses_the_name_with_the_driver_check(driver: str) -> None:
    bad = BAD[driver]
    async with isolated_connection(driver) as conn:
        attempts = {
            "dispatch": lambda: conn.dispatch(job, 1).on_queue(bad),
            "bulk": lambda: conn.bulk(job, [(1,), (2,)], queue=bad),
            "size": lambda: conn.size(bad),
            "clear": lambda: conn.clear(bad),
            "counts": lambda: conn.counts(bad),
            "pause": lambda: conn.pause(bad),
            "resume": lambda: conn.resume(bad),
            "paused": lambda: conn.paused(bad),
        }
        for what, attempt in attempts.items():
            with pytest.raises(QueueConfigurationError, match=f"cannot be used on {driver}") as refused:
                await attempt()
            assert "Traceback" not in str(refused.value), what
        listen_to = conn.broker.listen_to  # type: ignore[attr-defined]
        with pytest.raises(QueueConfigurationError, match=f"cannot be used on {driver}"):
            listen_to([conn.queue, bad])
