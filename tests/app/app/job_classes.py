# Job classes (Laravel's jobs), as an app writes them; each records what it did under $RECORD_DIR for the tests.
import asyncio
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from taskiq import Context, TaskiqDepends

from queue_manager import Job, current_job, job_of, task


def _record(name: str, **row) -> None:
    """Append one JSON line to $RECORD_DIR/<name>."""
    with open(os.path.join(os.environ["RECORD_DIR"], name), "a") as handle:
        handle.write(json.dumps({**row, "at": time.time(), "pid": os.getpid()}) + "\n")


class User(BaseModel):
    id: int
    email: str


@dataclass
class Address:
    city: str


class SendWelcomeEmail(Job):
    """Fails its first `fail_times` attempts; tries and backoff as Laravel's $tries and $backoff."""

    queue = None  # the connection's own queue
    tries = 3
    backoff = [0.2, 0.4]

    def __init__(
        self,
        user_id: int,
        user: User | None = None,
        address: Address | None = None,
        sent_at: datetime | None = None,
        fail_times: int = 0,
    ) -> None:
        self.user_id = user_id
        self.user = user
        self.address = address
        self.sent_at = sent_at
        self.fail_times = fail_times

    async def handle(self) -> str:
        _record(
            f"welcome-{self.user_id}",
            attempt=self.attempts(),
            job_id=self.job_id,
            types=[type(self.user).__name__, type(self.address).__name__, type(self.sent_at).__name__],
            email=self.user.email if self.user else None,
            city=self.address.city if self.address else None,
            sent_at=self.sent_at.isoformat() if self.sent_at else None,
        )
        if self.attempts() <= self.fail_times:
            raise RuntimeError(f"the mail server is down (attempt {self.attempts()})")
        return f"welcomed {self.user_id}"

    async def failed(self, error: BaseException) -> None:
        _record("failed-hook", job=f"welcome-{self.user_id}", error=f"{type(error).__name__}: {error}")


class ImportContacts(Job):
    """Fails while $RECORD_DIR/broken exists: the cause a test fixes before queue:retry."""

    tries = 2
    backoff = 0.2

    def __init__(self, account: str) -> None:
        self.account = account

    async def handle(self) -> str:
        broken = os.path.exists(os.path.join(os.environ["RECORD_DIR"], "broken"))
        _record(f"import-{self.account}", ok=not broken, attempt=self.attempts())
        if broken:
            raise RuntimeError(f"the CRM of {self.account} is down")
        return f"imported {self.account}"

    async def failed(self, error: BaseException) -> None:
        _record("failed-hook", job=f"import-{self.account}", error=f"{type(error).__name__}: {error}")


class Interacts(Job):
    """release / fail / delete from inside handle(), recording each run's start and end."""

    tries = 3

    def __init__(self, key: str, action: str, delay: float = 0.5, until: int = 3) -> None:
        self.key = key
        self.action = action
        self.delay = delay
        self.until = until  # release while attempts() < until

    async def handle(self) -> str:
        _record(f"runs-{self.key}", event="start", attempt=self.attempts(), job_id=self.job_id)
        await asyncio.sleep(0.2)  # long enough for a second copy to overlap, if one ran
        if self.action == "release" and self.attempts() < self.until:
            self.release(self.delay)
        elif self.action == "fail":
            self.fail(f"{self.key} gave up")
        elif self.action == "delete":
            self.delete()
        _record(f"runs-{self.key}", event="end", attempt=self.attempts(), job_id=self.job_id)
        return f"done {self.key}"

    async def failed(self, error: BaseException) -> None:
        _record("failed-hook", job=f"runs-{self.key}", error=f"{type(error).__name__}: {error}")


def _task_failed(job, error) -> None:
    _record("failed-hook", job=f"runs-{job.kwargs.get('key') or job.args[0]}", error=f"{type(error).__name__}: {error}")


@task(retries=2, on_failure=_task_failed)
async def interacting_task(key: str, action: str, delay: float = 0.5, until: int = 3) -> str:
    """The same as Interacts, for a function: current_job()."""
    job = current_job()
    _record(f"runs-{key}", event="start", attempt=job.attempts(), job_id=job.job_id)
    await asyncio.sleep(0.2)
    if action == "release" and job.attempts() < until:
        job.release(delay)
    elif action == "fail":
        job.fail(f"{key} gave up")
    elif action == "delete":
        job.delete()
    _record(f"runs-{key}", event="end", attempt=job.attempts(), job_id=job.job_id)
    return f"done {key}"


@task(retries=2, on_failure=_task_failed)
async def context_task(key: str, action: str, context: Context = TaskiqDepends()) -> str:
    """A function that asks TaskIQ's Context for its job: job_of(context)."""
    job = job_of(context)
    _record(f"runs-{key}", event="start", attempt=job.attempts(), job_id=job.job_id)
    if action == "release" and job.attempts() < 2:
        job.release(0.2)
    elif action == "fail":
        job.fail(f"{key} gave up")
    elif action == "delete":
        job.delete()
    _record(f"runs-{key}", event="end", attempt=job.attempts(), job_id=job.job_id)
    return f"done {key}"


class BuildReport(Job):
    """A unique job (ShouldBeUnique): one per report id while it waits or runs. It waits for
    $RECORD_DIR/go-<id> (so a test holds it running), then fails if $RECORD_DIR/broken exists."""

    unique_for = 60

    def __init__(self, report_id: int) -> None:
        self.report_id = report_id

    def unique_id(self) -> str:
        return str(self.report_id)

    async def handle(self) -> int:
        _record(f"report-{self.report_id}", event="start", job_id=self.job_id)
        go = os.path.join(os.environ["RECORD_DIR"], f"go-{self.report_id}")
        while not os.path.exists(go):
            await asyncio.sleep(0.05)
        if os.path.exists(os.path.join(os.environ["RECORD_DIR"], "broken")):
            raise RuntimeError("the report cannot be built")
        _record(f"report-{self.report_id}", event="end", job_id=self.job_id)
        return self.report_id


class ShortLock(BuildReport):
    """BuildReport whose lock lasts 15 s at most (for the worker that dies holding it)."""

    unique_for = 15


class PublishReport(BuildReport):
    """Unique until it starts (ShouldBeUniqueUntilProcessing): once running, the same report may be queued again."""

    unique_until_processing = True


@task(unique_for=60)
async def unique_report(report_id: int) -> int:
    """@task(unique_for=...): the same as BuildReport, unique by its arguments."""
    _record(f"report-{report_id}", event="start", job_id=current_job().job_id)
    go = os.path.join(os.environ["RECORD_DIR"], f"go-{report_id}")
    while not os.path.exists(go):
        await asyncio.sleep(0.05)
    _record(f"report-{report_id}", event="end", job_id=current_job().job_id)
    return report_id


class ChargeCard(Job):
    """An encrypted job (ShouldBeEncrypted): its card number never sits in plain on the broker or in the
    failed-jobs store."""

    encrypted = True

    def __init__(self, order_id: int, card_number: str) -> None:
        self.order_id = order_id
        self.card_number = card_number

    async def handle(self) -> str:
        _record(f"charge-{self.order_id}", last4=self.card_number[-4:])
        return f"charged {self.order_id}"


def remember_event(event) -> None:
    """A listener of the queue's job events (bootstrap/with_events.py): what each carried."""
    _record(
        "job-events",
        event=type(event).__name__,
        connection=event.connection,
        queue=event.queue,
        job_id=event.job_id,
        task_name=event.task_name,
        attempt=event.attempt,
        exception=repr(getattr(event, "exception", None)),
        delay=getattr(event, "delay", None),
    )
