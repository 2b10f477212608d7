"""Insight on real ``queue:work`` workers and every server driver (issue 26, points 1-4): the metrics, the recent
and failed jobs (arguments, tags, search) and the live workers a worker writes on its connection's server, read
back as ``conn.metrics()``, ``conn.recent_jobs()``, ``conn.workers()`` and ``queue:metrics`` / ``queue:workers``.
A RabbitMQ connection keeps its insight on the Redis its ``state`` setting names."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SERVER_DRIVERS, connections_env, dispatch_jobs, queue_work, run_python, unique, wait_for

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.jobs"


def insight_env(driver: str, queues: dict[str, str], record_dir: Path) -> dict[str, str]:
    state = {"QUEUE_CONNECTIONS__RABBITMQ__STATE": "redis"} if driver == "rabbitmq" else {}
    return connections_env(queues, record_dir, driver, QUEUE_INSIGHT__FLUSH_EVERY="1", **state)


def read(driver: str, on: str, what: str, **arguments: Any) -> Any:
    """What a reader in another process sees (a manager of its own, as the dashboard's)."""
    from queue_manager import QueueManager
    from queue_manager.settings import load_settings

    state = {"state": "redis"} if driver == "rabbitmq" else {}
    settings = load_settings({"driver": driver, "connections": {driver: {"queue": on, **state}}})

    async def main() -> Any:
        manager = QueueManager(settings)
        try:
            return await getattr(manager.connection(driver), what)(**arguments)
        finally:
            await manager.shutdown()

    return asyncio.run(main())


def mine(workers: list[dict[str, Any]], queue: str) -> list[dict[str, Any]]:
    return [worker for worker in workers if queue in worker["queues"]]


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_workers_record_metrics_recent_and_failed_jobs_and_beat_until_they_die(
    driver: str, queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    queue = queues[driver]
    env = insight_env(driver, queues, record_dir)
    tag = unique("customer:")
    with queue_work(driver, TASKS, env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        assert wait_for(lambda: len(mine(read(driver, queue, "workers"), queue)) == 1, timeout=60), worker.output()
        specs = [{"task": "remember", "args": [n]} for n in range(5)]
        specs += [{"task": "always_fails", "args": [99], "labels": {"tags": tag}}]
        dispatch_jobs(specs, env)

        def recorded() -> bool:
            found = read(driver, queue, "metrics", queue=queue)["tasks"]
            return {row["task"]: (row["jobs"], row["failed"]) for row in found} == {
                "app.jobs:remember": (5, 0),
                "app.jobs:always_fails": (2, 2),  # two attempts (retries=1), both failed
            }

        assert wait_for(recorded, timeout=60), (read(driver, queue, "metrics", queue=queue), worker.output())
        [remember] = read(driver, queue, "metrics", queue=queue, task="remember")["tasks"]
        assert remember["runtime_ms"]["p50"] is not None and remember["wait_ms"]["max"] is not None
        assert remember["per_minute"][-1] + remember["per_minute"][-2] == 5

        completed = [job for job in read(driver, queue, "recent_jobs", limit=1000) if job["queue"] == queue]
        assert sorted(job["arguments"]["job_id"] for job in completed) == [0, 1, 2, 3, 4]
        assert all(job["status"] == "completed" and job["attempts"] == 1 for job in completed)
        assert wait_for(lambda: read(driver, queue, "recent_jobs", failed=True, tag=tag), timeout=60)
        [failed] = read(driver, queue, "recent_jobs", failed=True, tag=tag)
        assert (failed["task"], failed["attempts"], failed["arguments"]) == ("app.jobs:always_fails", 2, {"job_id": 99})
        assert failed["tags"] == [tag] and failed["error"]

        [beat] = mine(read(driver, queue, "workers"), queue)
        assert beat["jobs_done"] == 7 and beat["connection"] == driver and beat["pid"] > 0

        shown = run_python("artisan", "queue:workers", driver, "--json", env=env)
        assert shown.returncode == 0 and beat["id"] in shown.stdout, shown.stderr
        table = run_python("artisan", "queue:metrics", driver, f"--queue={queue}", env=env)
        assert table.returncode == 0 and "app.jobs:always_fails" in table.stdout, table.stderr
        as_json = json.loads(
            run_python("artisan", "queue:metrics", driver, f"--queue={queue}", "--json", env=env).stdout
        )
        assert {row["task"] for row in as_json["tasks"]} == {"app.jobs:remember", "app.jobs:always_fails"}

        worker.kill()  # no shutdown: it drops out once its heartbeat is two beats old
        assert wait_for(lambda: not mine(read(driver, queue, "workers"), queue), timeout=60)
