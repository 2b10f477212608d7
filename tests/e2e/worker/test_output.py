"""What `queue:work` prints when jobs fail, with a real worker: one line per failed attempt, the traceback once,
the job's own run time, and a job's error text shown escaped (terminal escapes and cleo markup never
interpreted) in the worker, in `queue:failed` and to a caller waiting on the result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import connections_env, dispatch_jobs, queue_work, run_python

pytestmark = pytest.mark.e2e
HOSTILE = "\x1b[31mRED\x1b[0m <fg=red>tag</> \x07bell\rover\nsecond line"
FAIL = re.compile(r" (\d+\.\d\d)ms FAIL$")


def test_a_failing_job_prints_one_line_per_attempt_the_traceback_once_and_escapes_its_error(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, "redis")
    with queue_work("--tasks=app.jobs", env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        done = run_python(
            "dispatch_jobs.py", json.dumps([{"task": "hostile", "args": [HOSTILE]}]), "--wait", env=env, timeout=120
        )
        output = worker.output()
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout.splitlines()[-1])
    assert row["is_err"] and "Cannot parse return type" not in done.stdout + done.stderr
    assert "\x1b" not in output and "\x07" not in output and "\r" not in output, repr(output)
    assert "RuntimeError: \\x1b[31mRED\\x1b[0m <fg=red>tag</> \\x07bell" in output  # the job line: its first line
    assert "\\x07bell\\x0dover" in output, (
        output
    )  # the traceback's whole message (a carriage return ends a line otherwise)
    assert "Exception found while executing function" not in output, "TaskIQ's per-attempt traceback is dropped"
    assert output.count("Traceback (most recent call last)") == 1, output
    fails = [line for line in output.splitlines() if FAIL.search(line)]
    assert len(fails) == 2, output  # one per attempt: the first "will be retried"
    assert "retrying in" not in output, "the job line says it: no second line for the retried attempt"
    assert "(will be retried)" in output.split(fails[0], 1)[1].splitlines()[1]
    seconds = [float(FAIL.search(line).group(1)) / 1000 for line in fails]  # type: ignore[union-attr]
    assert max(seconds) < 1.0, f"the failed attempt's time includes its slow on_failure hook (2 s): {fails}"
    assert "failed after 2 attempts: RuntimeError: \\x1b[31mRED" in output

    listed = run_python("artisan", "queue:failed", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "<fg=red>tag</>" in listed.stdout, repr(listed.stdout)


def test_a_timed_out_job_says_it_ran_longer_than_its_timeout(
    queues: dict[str, str], record_dir: Path, tmp_path: Path
) -> None:
    env = connections_env(queues, record_dir, "redis")
    with queue_work("--tasks=app.jobs", env=env, log=tmp_path / "w.log") as worker:
        worker.wait_ready()
        [row] = dispatch_jobs([{"task": "slow", "args": [1, 5]}], env)
        output = worker.output()
    assert row["is_err"] and "TimeoutError" in row["error"]
    assert "TimeoutError: the job ran longer than its timeout (1 s)" in output, output
    assert "TimeoutError: ." not in output
