"""RabbitMQ with real queue:work workers in a vhost of the test's own (tests/clusters.py ``rabbitmq_vhost``):
quorum and classic work queues, the shared delay queues and the dead-letter wiring; and a list of AMQP URLs whose
first node is down, through which the worker reconnects after a server-side close. Prints ``MEASURED`` lines."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.clusters import free_ports, rabbitmq_vhost
from tests.e2e.worker.test_delivery import close_rabbitmq_connections
from tests.helpers import connections_env, dispatch_jobs, queue_work, ran_jobs, unique, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
TASKS = "--tasks=app.jobs"
SECRET = "S3cretPw"


async def reject_one(url: str, queue: str) -> bytes:
    """Take one job off ``queue`` and reject it without requeueing: RabbitMQ dead-letters it."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=30)
    try:
        channel = await connection.channel()
        declared = await channel.get_queue(queue, ensure=True)
        deadline = time.monotonic() + 30
        while (message := await declared.get(fail=False, timeout=5)) is None:
            assert time.monotonic() < deadline, "no job to reject"
            await asyncio.sleep(0.2)
        await message.reject(requeue=False)
        return bytes(message.body)
    finally:
        await connection.close()


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
def test_work_delays_and_dead_letters_in_a_vhost(queue_type: str, tmp_path: Path, record_dir: Path) -> None:
    queue = unique("q")
    with rabbitmq_vhost() as vhost:
        env = connections_env(
            {"rabbitmq": queue},
            record_dir,
            "rabbitmq",
            RABBITMQ_URL=vhost.url,
            QUEUE_CONNECTIONS__RABBITMQ__OPTIONS__QUEUE_TYPE=queue_type,
        )
        with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            specs = [{"task": "remember", "args": [i]} for i in range(10)]
            specs += [{"task": "remember", "args": [20 + i], "delay": 2} for i in range(2)]
            rows = dispatch_jobs(specs, env)
            assert [row["value"] for row in rows] == [*range(10), 20, 21] and not any(row["is_err"] for row in rows)
            ran = ran_jobs(record_dir)
            assert all(ran[20 + i][0] - rows[10 + i]["sent_at"] >= 1.9 for i in range(2)), "a delayed job ran early"
        # No worker now: a job taken and rejected goes to the dead-letter queue of its queue type.
        dispatch_jobs([{"task": "remember", "args": [99]}], env, wait=False)
        body = asyncio.run(reject_one(vhost.url, queue))
        queues = vhost.queues()
        dead_letter = "queues.dead_letter" if queue_type == "quorum" else "queues.dead_letter.classic"
        assert wait_for(lambda: vhost.queues().get(dead_letter, {}).get("messages") == "1", timeout=30), vhost.queues()
        assert queues[queue]["type"] == queue_type, queues
        assert queues[dead_letter]["type"] == queue_type, queues
        assert queues["queues.delay.2s"]["type"] == "classic", "delay queues are classic (TTL-ordered)"
        assert b"remember" in body


def test_a_url_list_reconnects_through_the_next_node(tmp_path: Path, record_dir: Path) -> None:
    queue, closed = unique("q"), free_ports(1)[0]
    with rabbitmq_vhost() as vhost:
        name = vhost.url.rsplit("/", 1)[1]
        env = connections_env(
            {"rabbitmq": queue},
            record_dir,
            "rabbitmq",
            RABBITMQ_URL=f"amqp://guest:{SECRET}@127.0.0.1:{closed}/{name},{vhost.url}",
        )
        with queue_work(TASKS, env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            rows = dispatch_jobs([{"task": "remember", "args": [i]} for i in range(5)], env)
            assert [row["value"] for row in rows] == list(range(5))
            assert close_rabbitmq_connections(queue) >= 2, "the worker's read and write connections"
            closed_at = time.time()
            rows = dispatch_jobs([{"task": "remember", "args": [i]} for i in range(5, 10)], env, timeout=120)
            ran = ran_jobs(record_dir)
            output = worker.output()
        assert sorted(ran) == list(range(10)) and not any(row["is_err"] for row in rows)
        assert output.count("Worker ready") == 1, f"the worker process crashed:\n{output}"
        assert "connected through amqp://guest:***@127.0.0.1:5672/" in output, output
        assert "reconnecting through amqp://guest:***@" in output, output
        assert SECRET not in output
        seconds = round(ran[5][0] - closed_at, 2)
        print(f"MEASURED rabbitmq-url-list {json.dumps({'seconds_to_first_job_after_close': seconds})}")
