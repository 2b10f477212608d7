"""What insight costs a worker per job, in one process without a server (``python -m benchmarks.insight_hooks``):
the recorder's pre/post hooks for 20,000 finished jobs, then one flush of them (the newest 1,000 serialised, as
the recent-jobs cap keeps) into the memory driver's control state; medians of 5 runs (min-max)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from taskiq import TaskiqMessage, TaskiqResult

from benchmarks.jobs import job
from drivers.memory import MemoryControl
from queue_manager.insight.recorder import InsightRecorder
from queue_manager.settings.insight import InsightSettings

JOBS = 20_000


class _Broker:
    is_worker_process = True

    def find_task(self, name: str) -> Any:
        return job  # the benchmark's job: its arguments are read by name, as in a worker


async def once() -> tuple[float, float]:
    state = MemoryControl()
    recorder = InsightRecorder(InsightSettings(), "redis", ["default"], "default", lambda: state)
    recorder.set_broker(_Broker())  # type: ignore[arg-type]
    labels = {"queue_name": "default", "queued_at": str(time.time())}
    messages = [
        TaskiqMessage(
            task_id=f"{n:032x}", task_name="bench:job", labels=dict(labels), labels_types={}, args=["run", n], kwargs={}
        )
        for n in range(JOBS)
    ]
    result: TaskiqResult[None] = TaskiqResult(is_err=False, return_value=None, execution_time=0.0)
    started = time.perf_counter()
    for message in messages:
        recorder.post_execute(recorder.pre_execute(message), result)
    hooks = (time.perf_counter() - started) / JOBS
    started = time.perf_counter()
    await recorder.flush()
    return hooks * 1e6, (time.perf_counter() - started) * 1e3


def main() -> None:
    runs = [asyncio.run(once()) for _ in range(5)]
    hooks, flushes = [run[0] for run in runs], [run[1] for run in runs]
    print(f"hooks: {statistics.median(hooks):.2f} us/job ({min(hooks):.2f}-{max(hooks):.2f})")
    print(f"flush of {JOBS:,} jobs: {statistics.median(flushes):.1f} ms ({min(flushes):.1f}-{max(flushes):.1f})")


if __name__ == "__main__":
    main()
