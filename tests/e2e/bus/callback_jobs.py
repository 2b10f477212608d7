"""A slow batch callback for the callback fault test: it records its start, waits for the test to create
``$RECORD_DIR/release`` and records its end, so a test can kill its worker between the two. The worker imports
it as a top-level module (tests/e2e/bus on PYTHONPATH), so the example app stays as it is."""

import asyncio
import json
import os
import time
from pathlib import Path

from queue_manager import Batch, task


def _record(file: str, **row: object) -> None:
    with open(os.path.join(os.environ["RECORD_DIR"], file), "a") as handle:
        handle.write(json.dumps({**row, "at": time.time(), "pid": os.getpid()}) + "\n")


def _released(deadline: float) -> None:
    release = Path(os.environ["RECORD_DIR"]) / "release"
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@task
async def slow_then(batch: Batch) -> None:
    _record("slow-then", id=batch.id, event="start")
    await asyncio.to_thread(_released, time.monotonic() + 120)
    _record("slow-then", id=batch.id, event="end")
