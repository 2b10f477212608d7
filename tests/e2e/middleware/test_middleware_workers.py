"""Job middleware across real worker processes on every driver (RabbitMQ keeping its job state on Redis):
RateLimited holds two workers together to the limit with every job run, WithoutOverlapping never lets two jobs of
a key run at once, a SIGKILLed worker's lock frees itself when it expires, and a worker whose QUEUE_MIDDLEWARES
need job state its connection cannot keep does not start."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers import (
    SERVER_DRIVERS,
    WorkerProcess,
    connections_env,
    dispatch_jobs,
    lines,
    queue_work,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e
TASKS = "--tasks=app.limited"
STATE = {"QUEUE_CONNECTIONS__RABBITMQ__STATE": "redis"}  # RabbitMQ keeps no job state of its own
TAG = unique("mwe2e")  # in every key and bucket name here, so what they leave on NATS is purged at the end


@pytest.fixture(scope="module", autouse=True)
def purge_nats_keys() -> Iterator[None]:
    """Redis drops a window or lock when it expires; NATS keeps the key (free) until its bucket's age limit."""
    yield
    import asyncio

    from tests.integration.middleware.test_job_state import purge_keys

    asyncio.run(purge_keys(TAG))


def events(record_dir: Path) -> list[tuple[str, int, float, int]]:
    rows = (line.split() for line in lines(record_dir / "middleware"))
    return [(kind, int(job), float(at), int(pid)) for kind, job, at, pid in rows]


def starts(record_dir: Path) -> dict[int, tuple[float, int]]:
    return {job: (at, pid) for kind, job, at, pid in events(record_dir) if kind == "start"}


def most_in_a_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t - start < window) for i, start in enumerate(times)), default=0)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[object]:
    with ExitStack() as stack:

        def start(count: int, env: dict[str, str], *args: str) -> list[WorkerProcess]:
            made = [
                stack.enter_context(queue_work(TASKS, *args, env=env, log=tmp_path / f"w{unique()}.log"))
                for _ in range(count)
            ]
            for worker in made:
                worker.wait_ready()
            return made

        yield start


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
def test_rate_limited_across_two_workers(driver: str, queues: dict[str, str], record_dir: Path, workers) -> None:  # type: ignore[no-untyped-def]
    """5 starts per 2 s, 20 jobs, two workers: every job runs, and no 2 s window sees more than 5 start."""
    env = connections_env(queues, record_dir, driver, **STATE)
    two = workers(2, env)
    bucket = unique(f"{TAG}bucket-")
    dispatch_jobs([{"task": "app.limited:limited", "args": [i, bucket]} for i in range(20)], env, wait=False)
    assert wait_for(lambda: len(starts(record_dir)) >= 20, timeout=120), [w.output()[-2000:] for w in two]
    found = starts(record_dir)
    assert sorted(found) == list(range(20)), "every job ran, once"
    times = [at for at, _ in found.values()]
    # A start is logged after its slot was taken on the server, up to a busy machine's scheduling delay later: a
    # 1.5 s window tolerates half a second of it, and a per-worker limit (10 per 2 s here) still fails it.
    assert most_in_a_window(times, 1.5) <= 5, sorted(times)
    assert max(times) - min(times) >= 5.5, "20 jobs at 5 per 2 s need at least three more windows"
    assert len({pid for _, pid in found.values()}) >= 2 or driver == "nats", "both workers took jobs"


@pytest.mark.parametrize("driver", SERVER_DRIVERS)
@pytest.mark.parametrize("kind", ["app.limited:Exclusive", "app.limited:exclusive"])
def test_without_overlapping_two_workers_never_run_one_key_at_once(  # type: ignore[no-untyped-def]
    driver: str, kind: str, queues: dict[str, str], record_dir: Path, workers
) -> None:
    env = connections_env(queues, record_dir, driver, **STATE)
    two = workers(2, env, "--max-async-tasks=4")
    key = unique(f"{TAG}account-")
    dispatch_jobs([{"task": kind, "args": [i, key, 0.3]} for i in range(8)], env, wait=False)
    done = lambda: sum(1 for e in events(record_dir) if e[0] == "end") >= 8  # noqa: E731
    assert wait_for(done, timeout=120), [w.output()[-2000:] for w in two]
    spans: dict[int, list[float]] = {}
    for _kind, job, at, _ in events(record_dir):
        spans.setdefault(job, []).append(at)
    assert sorted(spans) == list(range(8)) and all(len(span) == 2 for span in spans.values()), spans
    ordered = sorted(spans.values())
    for (_, end), (start, _) in itertools.pairwise(ordered):
        assert start >= end, f"two jobs of one key ran at once: {ordered}"


@pytest.mark.fault
@pytest.mark.parametrize("driver", ["redis", "nats"])
def test_a_sigkilled_workers_lock_frees_itself_when_it_expires(  # type: ignore[no-untyped-def]
    driver: str, queues: dict[str, str], record_dir: Path, workers, tmp_path: Path
) -> None:
    # the killed job itself comes back only much later (its redelivery), so the next job of its key shows the lock
    slow_redelivery = {
        "QUEUE_CONNECTIONS__REDIS__OPTIONS__RETRY_AFTER": "300",
        "QUEUE_CONNECTIONS__NATS__OPTIONS__ACK_WAIT": "300",
    }
    env = connections_env(queues, record_dir, driver, **slow_redelivery)
    key, expiry = unique(f"{TAG}account-"), 6.0
    [first] = workers(1, env)
    dispatch_jobs([{"task": "app.limited:Exclusive", "args": [1, key, 120, expiry]}], env, wait=False)
    assert wait_for(lambda: 1 in starts(record_dir), timeout=60), first.output()
    first.kill()
    held_from = starts(record_dir)[1][0]
    workers(1, env)
    dispatch_jobs([{"task": "app.limited:Exclusive", "args": [2, key, 0.1, expiry]}], env, wait=False)
    assert wait_for(lambda: 2 in starts(record_dir), timeout=90), "the dead worker's lock never expired"
    waited = starts(record_dir)[2][0] - held_from
    assert expiry - 0.5 <= waited <= expiry + 30, (
        f"the next job of the key started {waited:.1f} s after the lock was taken"
    )


def test_a_worker_whose_middleware_needs_state_its_connection_cannot_keep_does_not_start(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, "rabbitmq", QUEUE_MIDDLEWARES='["app.limited:limit_every_job"]')
    with queue_work(TASKS, env=env, log=tmp_path / "refused.log") as worker:
        assert wait_for(lambda: not worker.alive(), timeout=60), worker.output()
        assert "QUEUE_CONNECTIONS__RABBITMQ__STATE" in worker.output(), worker.output()
        assert "Worker ready" not in worker.output()
