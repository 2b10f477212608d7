# Jobs declared with queue_manager.task: they belong to no broker, so any connection can carry them.
import asyncio
import os
import time

from queue_manager import task


def _record(name: str, line: str) -> int:
    """Append a line to $RECORD_DIR/<name> and return how many lines it had before."""
    path = os.path.join(os.environ["RECORD_DIR"], name)
    before = 0
    if os.path.exists(path):
        with open(path) as handle:
            before = len(handle.read().split("\n")) - 1
    with open(path, "a") as handle:
        handle.write(f"{line}\n")
    return before


@task
async def remember(job_id: int) -> int:
    _record("ran", f"{job_id} {time.time():.3f} {os.environ.get('QUEUE_WORKER_CONNECTION', 'inline')}")
    return job_id


@task(queue="emails")
async def send_email(user_id: int) -> str:
    _record("emails", f"{user_id} {time.time():.3f}")
    return f"sent {user_id}"


@task(retries=2, backoff=[1, 2])
async def flaky(job_id: int) -> str:
    attempt = _record(f"flaky-{job_id}", f"{time.time():.3f}") + 1
    if attempt <= 2:
        raise RuntimeError(f"attempt {attempt} failed")
    return f"ok after {attempt} attempts"


@task(retries=1, backoff=0.5)
async def always_fails(job_id: int) -> None:
    _record(f"fails-{job_id}", f"{time.time():.3f}")
    raise ValueError(f"job {job_id} is broken")


@task(timeout=1)
async def slow(job_id: int, seconds: float) -> str:
    _record(f"slow-{job_id}", f"start {time.time():.3f}")
    await asyncio.sleep(seconds)
    _record(f"slow-{job_id}", f"end {time.time():.3f}")
    return "finished"


@task
async def sleepy(job_id: int, seconds: float = 0.2) -> int:
    """Takes a while and records start and finish (and which process), for the fault tests."""
    _record("events", f"start {job_id} {time.time():.3f} {os.getpid()}")
    await asyncio.sleep(seconds)
    _record("events", f"done {job_id} {time.time():.3f} {os.getpid()}")
    return job_id


def remember_failure(job, exception) -> None:
    """The on_failure hook (Laravel's failed()): records the failed job's id and error."""
    _record("failure-hook", f"{job.task_id} {type(exception).__name__} {job.attempts}")


@task(retries=1, backoff=0.2, on_failure=remember_failure)
async def fragile(job_id: int) -> str:
    """Fails while $RECORD_DIR/broken exists: the "cause" a test fixes before queue:retry."""
    if os.path.exists(os.path.join(os.environ["RECORD_DIR"], "broken")):
        _record(f"fragile-{job_id}", "failed")
        raise RuntimeError(f"job {job_id}: the mail server is down")
    _record(f"fragile-{job_id}", "ok")
    return f"ok {job_id}"


@task(schedule=[{"interval": 1, "args": ["shared"]}, {"interval": 1, "args": ["on nats"], "connection": "nats"}])
async def tick(source: str) -> None:
    """Scheduled (queue:schedule): records where each run came from and which connection ran it."""
    if os.environ.get("RECORD_DIR"):
        _record("ticks", f"{source} {os.environ.get('QUEUE_WORKER_CONNECTION', 'inline')}")


async def slow_failure_hook(job, exception) -> None:
    """A failed() that takes its time (a slow mail server): not part of the job's own run time."""
    await asyncio.sleep(2)


@task(retries=1, backoff=0.1, on_failure=slow_failure_hook)
async def hostile(text: str) -> str:
    """Fails with whatever message it is given: terminal escapes, cleo markup."""
    raise RuntimeError(text)
