"""The benchmark's work as a job class and as a ``@task`` function of ours (``make bench ARGS=class-jobs``): the
same Redis round trip as ``benchmarks.jobs.job``, to measure what a job class costs over a function."""

from __future__ import annotations

from benchmarks.jobs import job
from queue_manager import Job, task


@task(name="bench:function_job")
async def function_job(run: str, number: int) -> None:
    await job.original_func(run, number)


class ClassJob(Job):
    def __init__(self, run: str, number: int) -> None:
        self.run = run
        self.number = number

    async def handle(self) -> None:
        await job.original_func(self.run, self.number)
