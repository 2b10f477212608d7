"""Encrypted jobs on real workers and every server driver (issue 24, point 6): the broker's raw message and the
failed-jobs store hold no plain argument; a worker without APP_KEY, or with another key, records the job as
failed with that reason and goes on serving, never running it; APP_PREVIOUS_KEYS opens jobs sealed with an old
key."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.e2e.jobs.support import TASKS, failed_records, rows, send
from tests.helpers import SERVER_DRIVERS, connections_env, queue_work, run_python, wait_for

pytestmark = pytest.mark.e2e
CARD = "4111222233334444"
OLD_KEY = "base64:" + "b2xkLWtleS1vZi10aGUtYXBwLTMyLWJ5dGVzLWxvbmc="
NEW_KEY = "a-new-key-after-rotation"


async def raw_messages(driver: str, queue: str) -> list[bytes]:
    """What the broker holds for ``queue``, read with its own client (RabbitMQ's messages are put back)."""
    if driver in ("redis", "redis_stream"):
        from redis.asyncio import Redis

        async with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            if driver == "redis":
                return list(await redis.lrange(f"queues:{queue}", 0, -1))
            return [fields[b"data"] for _, fields in await redis.xrange(f"queues:stream:{queue}")]
    if driver == "rabbitmq":
        import aio_pika

        async with await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/") as amqp:
            channel = await amqp.channel()
            declared = await channel.declare_queue(queue, passive=True)
            taken = []
            while (message := await declared.get(no_ack=False, fail=False)) is not None:
                taken.append(message)
            for message in taken:
                await message.nack(requeue=True)
            return [message.body for message in taken]
    import nats

    client = await nats.connect("nats://127.0.0.1:4222")
    try:
        return [(await client.jetstream().get_last_msg("QUEUES", f"queues.{queue}")).data or b""]
    finally:
        await client.close()


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_an_encrypted_job_is_sealed_on_the_broker_and_in_the_failed_store_and_opens_with_the_right_key(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, driver)
    sending = {**env, "APP_KEY": OLD_KEY}
    [first] = send({"job": "ChargeCard", "args": [1, CARD]}, sending)
    raw = asyncio.run(raw_messages(driver, queues[driver]))
    assert len(raw) == 1 and b"__encrypted__" in raw[0], raw
    assert CARD.encode() not in raw[0] and CARD[-4:].encode() not in raw[0], "no plain argument on the broker"

    with queue_work(driver, TASKS, env=env, log=tmp_path / "no-key.log") as worker:  # no APP_KEY at all
        worker.wait_ready()
        assert wait_for(lambda: len(failed_records(record_dir)) == 1, timeout=60), worker.output()
        [plain] = send({"job": "SendWelcomeEmail", "args": [5], "wait": True}, env)
        assert plain["value"] == "welcomed 5" and worker.alive(), "it goes on serving other jobs"
    assert "hook of app.job_classes:ChargeCard raised" not in worker.output(), "no failed() to call: no 2nd error"
    [record] = failed_records(record_dir)
    assert record.task_id == first["task_id"] and record.attempts == 1
    assert "set APP_KEY" in record.message, record.message

    [second] = send({"job": "ChargeCard", "args": [2, CARD]}, sending)
    with queue_work(driver, TASKS, env={**env, "APP_KEY": NEW_KEY}, log=tmp_path / "other-key.log") as worker:
        worker.wait_ready()
        assert wait_for(lambda: len(failed_records(record_dir)) == 2, timeout=60), worker.output()
    other = next(record for record in failed_records(record_dir) if record.task_id == second["task_id"])
    assert "sealed with another key" in other.message and other.attempts == 1, other.message
    assert not (record_dir / "charge-1").exists() and not (record_dir / "charge-2").exists(), "never run"
    for kept in failed_records(record_dir):
        assert CARD[-4:] not in json.dumps([kept.args, kept.kwargs, kept.message, kept.traceback])
    listed = run_python("artisan", "queue:failed", env=env)
    assert "ChargeCard" in listed.stdout and CARD[-4:] not in listed.stdout + listed.stderr

    send({"job": "ChargeCard", "args": [3, CARD]}, sending)
    rotated = {**env, "APP_KEY": NEW_KEY, "APP_PREVIOUS_KEYS": f"some-older-key,{OLD_KEY}"}
    with queue_work(driver, TASKS, env=rotated, log=tmp_path / "rotated.log") as worker:
        worker.wait_ready()
        assert wait_for(lambda: rows(record_dir, "charge-3"), timeout=60), worker.output()
        retried = run_python("artisan", "queue:retry", "all", env=rotated)  # the key fixed: the failed ones run
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert wait_for(lambda: rows(record_dir, "charge-1") and rows(record_dir, "charge-2"), timeout=60)
    assert rows(record_dir, "charge-3")[0]["last4"] == CARD[-4:]
    assert failed_records(record_dir) == []
    assert CARD not in worker.output()
