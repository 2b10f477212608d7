"""queue:supervise with real queue:work children on the seed app (Redis): it boots at the minimum, gives a queue
with a backlog more processes within the cooldown and takes them back when it drains, starts a SIGKILLed child
again, lets queue:restart renew its children, and on SIGTERM waits for every running job, then exits 0."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PYTHON, WorkerProcess, cleanup, dispatch_jobs, lines, run_python, unique, wait_for

pytestmark = pytest.mark.e2e
PROCESSES = re.compile(r"\[supervisor\] Processes (.+?)(?: \(waiting .*\))?$", re.M)
STARTED = re.compile(r"\[supervisor\] Started worker (\d+) for (\S+)$", re.M)
ENDED = re.compile(r"\[supervisor\] Worker (\d+) of (\S+) (?:stopped|exited|crashed|was killed)", re.M)


@pytest.fixture
def two_queues() -> Iterator[tuple[str, str]]:
    names = (unique("a"), unique("b"))
    yield names
    for queue in names:
        cleanup("redis", queue)


def supervise(*args: str, env: dict[str, str], log: Path) -> WorkerProcess:
    return WorkerProcess(env=env, log=log, command=[PYTHON, "artisan", "queue:supervise", "redis", *args])


def processes(output: str) -> list[dict[str, int]]:
    """Every "Processes a=1 b=2" line the supervisor printed, in order."""
    return [
        {name: int(count) for name, _, count in (part.partition("=") for part in found.split())}
        for found in PROCESSES.findall(output)
    ]


def live(output: str) -> dict[int, str]:
    """pid -> pool of the children started and not yet reported ended."""
    started = {int(pid): pool for pid, pool in STARTED.findall(output)}
    for pid, _ in ENDED.findall(output):
        started.pop(int(pid), None)
    return started


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def ready_children(output: str) -> int:
    return output.count("Worker ready")


def test_boots_at_the_minimum_scales_a_backlog_up_within_the_cooldown_and_back_when_it_drains(
    two_queues: tuple[str, str], record_dir: Path, tmp_path: Path
) -> None:
    a, b = two_queues
    env = {"QUEUE_DRIVER": "redis", "RECORD_DIR": str(record_dir)}
    sup = supervise(
        f"--queue={a},{b}", "--max-processes=4", "--balance-cooldown=1", "--max-async-tasks=1",
        "--tasks=app.jobs", "-v", env=env, log=tmp_path / "sup.log",
    )  # fmt: skip
    try:
        assert wait_for(lambda: ready_children(sup.output()) == 2, timeout=90), sup.output()
        assert processes(sup.output())[0] == {a: 1, b: 1}, "boots at --min-processes, not --max-processes"
        assert sorted(live(sup.output()).values()) == [a, b]

        jobs = 24
        dispatch_jobs([{"task": "sleepy", "args": [i, 1.0], "queue": a} for i in range(jobs)], env, wait=False)
        # a (with the backlog) grows by --max-shift per balance up to 4 - b's minimum; b keeps its one
        assert wait_for(lambda: {a: 3, b: 1} in processes(sup.output()), timeout=60), sup.output()
        grown = processes(sup.output())
        assert grown[grown.index({a: 3, b: 1}) - 1] == {a: 2, b: 1}, "one process per balance (--max-shift=1)"
        assert all(counts[b] >= 1 and sum(counts.values()) <= 4 for counts in grown)
        assert wait_for(lambda: list(live(sup.output()).values()).count(a) == 3, timeout=30)
        # the added children take jobs too
        assert wait_for(lambda: len({row.split()[3] for row in lines(record_dir / "events")}) >= 2, timeout=60)

        done = lambda: [row for row in lines(record_dir / "events") if row.startswith("done")]  # noqa: E731
        assert wait_for(lambda: len(done()) == jobs, timeout=120), sup.output()
        # drained: back to the minimum, one process at a time, each finishing its job first
        assert wait_for(lambda: processes(sup.output())[-1] == {a: 1, b: 1}, timeout=60), sup.output()
        assert wait_for(lambda: len(live(sup.output())) == 2, timeout=60), sup.output()
        assert "Stopping worker" in sup.output()
        assert sorted(int(row.split()[1]) for row in done()) == list(range(jobs)), "no job lost or run twice"
    finally:
        code = sup.stop(timeout=90)
    assert code == 0, sup.output()


def test_a_killed_child_is_started_again_queue_restart_renews_them_and_sigterm_lets_jobs_finish(
    two_queues: tuple[str, str], record_dir: Path, tmp_path: Path
) -> None:
    a, b = two_queues
    env = {"QUEUE_DRIVER": "redis", "RECORD_DIR": str(record_dir)}
    sup = supervise(
        f"--queue={a},{b}", "--max-processes=2", "--balance-cooldown=1", "--tasks=app.jobs", "-v",
        env=env, log=tmp_path / "sup.log",
    )  # fmt: skip
    try:
        assert wait_for(lambda: ready_children(sup.output()) == 2, timeout=90), sup.output()
        [victim] = [pid for pid, pool in live(sup.output()).items() if pool == a]

        # SIGKILL: no goodbye; the supervisor notices and starts another for the same queue
        os.killpg(victim, signal.SIGKILL)
        killed = re.compile(rf"Worker {victim} of {a} (?:crashed: it )?was killed by signal 9")
        assert wait_for(lambda: killed.search(sup.output()) is not None, timeout=30), sup.output()
        assert wait_for(lambda: len(live(sup.output())) == 2 and victim not in live(sup.output()), timeout=30)
        assert wait_for(lambda: ready_children(sup.output()) == 3, timeout=90), sup.output()
        dispatch_jobs([{"task": "sleepy", "args": [1, 0.1], "queue": a}], env, wait=True)

        # queue:restart: each child finishes and exits; the supervisor starts new ones (the new code)
        before = set(live(sup.output()))
        done = run_python("artisan", "queue:restart", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert wait_for(lambda: not before & set(live(sup.output())), timeout=60), sup.output()
        assert wait_for(lambda: len(live(sup.output())) == 2, timeout=60), sup.output()
        assert sup.output().count("exited (restart or a stop flag); starting another") == 2
        assert wait_for(lambda: ready_children(sup.output()) == 5, timeout=90), sup.output()

        # SIGTERM while jobs run: every child finishes its job, then the supervisor exits 0
        children = set(live(sup.output()))
        specs = [{"task": "sleepy", "args": [10 + i, 3.0], "queue": queue} for i, queue in enumerate((a, b))]
        dispatch_jobs(specs, env, wait=False)
        events = lambda kind: {int(r.split()[1]) for r in lines(record_dir / "events") if r.startswith(kind)}  # noqa: E731
        assert wait_for(lambda: {10, 11} <= events("start"), timeout=60), sup.output()
        os.kill(sup.process.pid, signal.SIGTERM)
        assert wait_for(lambda: not sup.alive(), timeout=90), sup.output()
        assert sup.process.returncode == 0, sup.output()
        assert {10, 11} <= events("done"), "a job running at SIGTERM was cut short:\n" + sup.output()
        assert not any(alive(pid) for pid in children), "a child outlived its supervisor"
        assert "Supervisor stopped" in sup.output()
    finally:
        sup.stop(timeout=90)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--balance=fast"], "--balance must be auto, simple or off, got 'fast'"),
        (["--queue=a,b", "--min-processes=2", "--max-processes=3"], "raise --max-processes to at least 4"),
        (["--max-shift=0"], "--max-shift must be a whole number >= 1"),
        (["--balance-cooldown=soon"], "--balance-cooldown must be a number > 0"),
        (["--tasks=app.nope"], "Task module 'app.nope' cannot be found"),
    ],
)
def test_bad_input_is_refused_before_any_child_starts(args: list[str], message: str) -> None:
    done = run_python("artisan", "queue:supervise", "redis", *args, env={"QUEUE_DRIVER": "redis"}, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert "Started worker" not in done.stdout and "Traceback" not in done.stderr


def test_a_connection_no_worker_can_serve_is_refused() -> None:
    for connection, message in (("memory", "has no worker"), ("rediss", "Did you mean 'redis'?")):
        done = run_python("artisan", "queue:supervise", connection, env={"QUEUE_DRIVER": "redis"}, timeout=60)
        assert done.returncode == 2 and message in done.stderr, done.stdout + done.stderr


def test_a_supervisor_killed_with_sigkill_leaves_no_orphan_worker(
    two_queues: tuple[str, str], record_dir: Path, tmp_path: Path
) -> None:
    """Its children are told to stop when it dies (Linux's parent-death signal): SIGTERM, so they finish first."""
    a, _ = two_queues
    env = {"QUEUE_DRIVER": "redis", "RECORD_DIR": str(record_dir)}
    sup = supervise(f"--queue={a}", "--tasks=app.jobs", "-v", env=env, log=tmp_path / "sup.log")
    try:
        assert wait_for(lambda: ready_children(sup.output()) == 1, timeout=90), sup.output()
        [child] = live(sup.output())
        os.kill(sup.process.pid, signal.SIGKILL)  # the supervisor alone, not its children's groups
        assert wait_for(lambda: not alive(child), timeout=60), "the worker outlived its supervisor"
        assert "Stopping the worker (signal)" in sup.output() or "The runner is stopped" in sup.output()
    finally:
        sup.stop(timeout=30)
