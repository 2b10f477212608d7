"""What the job-class tests share: dispatching from the example app, reading what its jobs recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import run_python

TASKS = "--tasks=app.job_classes"


def send(spec: dict[str, Any], env: dict[str, str], timeout: float = 120) -> list[dict[str, Any]]:
    """Run tests/app/dispatch_job_classes.py: dispatch as a Laravel user would; the task ids (None: not queued)."""
    done = run_python("dispatch_job_classes.py", json.dumps(spec), env=env, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def rows(record_dir: Path, name: str) -> list[dict[str, Any]]:
    """The JSON lines a job of app.job_classes recorded under ``name``."""
    path = record_dir / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def state_env(driver: str) -> dict[str, str]:
    """RabbitMQ keeps no job state (unique locks): the example app keeps it on the Redis connection."""
    return {"QUEUE_CONNECTIONS__RABBITMQ__STATE": "redis"} if driver == "rabbitmq" else {}


def failed_records(record_dir: Path) -> list[Any]:
    """The failed jobs the example app recorded (``connections_env`` keeps them in the test's own SQLite file)."""
    import asyncio

    from queue_manager.failed import FailedSettings, make_store
    from tests.helpers import SEED_APP

    async def read() -> list[Any]:
        store = make_store(
            FailedSettings(url=f"sqlite+aiosqlite:///{record_dir}/failed_jobs.sqlite"), SEED_APP, lambda _: ""
        )
        try:
            return list(await store.all())
        finally:
            await store.close()

    return asyncio.run(read())
