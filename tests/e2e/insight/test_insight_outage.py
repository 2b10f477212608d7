"""A worker whose insight server goes away (a RabbitMQ connection keeping its insight on a Redis, which stops):
the jobs keep running, the worker logs one warning however many writes fail, and once the server is back it
writes the jobs that ended meanwhile (issue 26: "a worker whose metrics writes fail keeps running jobs and logs
one warning")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.insight.test_insight_workers import read
from tests.helpers import connections_env, dispatch_jobs, queue_work, ran_jobs, wait_for
from tests.servers import private_redis

pytestmark = [pytest.mark.e2e, pytest.mark.fault]
WARNING = "Could not record metrics, recent jobs or the heartbeat on connection 'rabbitmq'"


def test_jobs_keep_running_while_insight_cannot_be_written(
    queues: dict[str, str], record_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = queues["rabbitmq"]
    with private_redis(tmp_path) as redis:
        url = f"redis://127.0.0.1:{redis.port}/0"
        monkeypatch.setenv("QUEUE_CONNECTIONS__REDIS__URL", url)  # the reader below (a manager of this process)
        env = connections_env(
            queues,
            record_dir,
            "rabbitmq",
            QUEUE_CONNECTIONS__RABBITMQ__STATE="redis",
            QUEUE_CONNECTIONS__REDIS__URL=url,
            QUEUE_INSIGHT__FLUSH_EVERY="0.5",
        )
        with queue_work("rabbitmq", "--tasks=app.jobs", env=env, log=tmp_path / "w.log") as worker:
            worker.wait_ready()
            dispatch_jobs([{"task": "remember", "args": [n]} for n in range(3)], env, wait=False)

            def recent() -> list[int]:
                jobs = read("rabbitmq", queue, "recent_jobs", limit=1000)
                return sorted(job["arguments"]["job_id"] for job in jobs if job["queue"] == queue)

            assert wait_for(lambda: recent() == [0, 1, 2], timeout=60), worker.output()

            redis.stop()
            dispatch_jobs([{"task": "remember", "args": [n]} for n in range(3, 8)], env, wait=False)
            assert wait_for(lambda: len(ran_jobs(record_dir)) == 8, timeout=60), worker.output()
            assert wait_for(lambda: WARNING in worker.output(), timeout=60), worker.output()
            # Writes keep failing every half second; the warning is not repeated.
            assert not wait_for(lambda: worker.output().count(WARNING) > 1, timeout=5), worker.output()
            assert worker.alive()

            redis.start()  # an empty server: what it held before is gone, what ended meanwhile is written
            assert wait_for(lambda: recent() == [3, 4, 5, 6, 7], timeout=60), worker.output()
            assert "Recording metrics on connection 'rabbitmq' again." in worker.output()
