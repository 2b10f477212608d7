"""What the chain and batch e2e tests share: dispatching from the example app, reading what its jobs recorded,
and reading the batch store the workers and the dispatcher share (the test's own SQLite file)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.helpers import connections_env, run_python

TASKS = "--tasks=app.bus_jobs"


def bus_env(queues: dict[str, str], record_dir: Path, driver: str, **extra: str) -> dict[str, str]:
    return connections_env(
        queues, record_dir, driver, QUEUE_BATCHES__URL=f"sqlite+aiosqlite:///{record_dir}/batches.sqlite", **extra
    )


def send(spec: dict[str, Any], env: dict[str, str], timeout: float = 120) -> str:
    done = run_python("dispatch_bus.py", json.dumps(spec), env=env, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return str(json.loads(done.stdout.strip().splitlines()[-1]))


def rows(record_dir: Path, name: str) -> list[dict[str, Any]]:
    path = record_dir / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def stored(env: dict[str, str], id: str) -> Any:
    """The batch's row in the store (``BatchRow``: its done, failed and skipped counts apart), or None."""
    from queue_manager.batches.database import DatabaseBatchStore

    url = env["QUEUE_BATCHES__URL"]

    async def read() -> Any:
        store = DatabaseBatchStore(url)
        try:
            return await store.find(id)
        finally:
            await store.close()

    return asyncio.run(read())


def batch(env: dict[str, str], id: str) -> Any:
    """The batch as the store has it (``queue_manager.Batch``)."""
    from queue_manager.bus.batch import Batch

    row = stored(env, id)
    return Batch.of(row) if row is not None else None
