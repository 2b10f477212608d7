# Jobs with job middleware (queue_manager.middleware) for the e2e tests: each records when it starts and ends
# (and in which process) in $RECORD_DIR/middleware.
import asyncio
import os
import time

from queue_manager import Job, task
from queue_manager.middleware import Limit, RateLimited, WithoutOverlapping, rate_limits

# 5 starts per 2 seconds, per bucket (each test run uses its own bucket on the shared servers)
rate_limits.define("e2e-limited", lambda job: Limit.per_second(5, 2).by(job.bucket))

# for QUEUE_MIDDLEWARES=app.limited:limit_every_job
limit_every_job = RateLimited("e2e-limited")


def _record(line: str) -> None:
    with open(os.path.join(os.environ["RECORD_DIR"], "middleware"), "a") as handle:
        handle.write(f"{line}\n")


@task(middleware=[RateLimited("e2e-limited")])
async def limited(job_id: int, bucket: str) -> int:
    _record(f"start {job_id} {time.time():.4f} {os.getpid()}")
    return job_id


class Exclusive(Job):
    """One at a time per key, on every worker."""

    def __init__(self, n: int, key: str, seconds: float = 0.3, expire_after: float = 60) -> None:
        self.n = n  # (job_id is the job's own id)
        self.key = key
        self.seconds = seconds
        self.expire_after = expire_after

    def middleware(self) -> list:
        return [WithoutOverlapping(self.key, release_after=0.2, expire_after=self.expire_after)]

    async def handle(self) -> int:
        _record(f"start {self.n} {time.time():.4f} {os.getpid()}")
        await asyncio.sleep(self.seconds)
        _record(f"end {self.n} {time.time():.4f} {os.getpid()}")
        return self.n


@task(middleware=[WithoutOverlapping(lambda job: job.key, release_after=0.2)])
async def exclusive(job_id: int, key: str, seconds: float = 0.3) -> int:
    _record(f"start {job_id} {time.time():.4f} {os.getpid()}")
    await asyncio.sleep(seconds)
    _record(f"end {job_id} {time.time():.4f} {os.getpid()}")
    return job_id
