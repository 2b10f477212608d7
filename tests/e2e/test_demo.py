"""`make demo`'s program: a real worker per connection, a table at the end, skipped servers explained."""

from __future__ import annotations

import pytest

from tests.helpers import ROOT, run_python

pytestmark = pytest.mark.e2e


def table(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line[:1].isalpha()}


def test_demo_prints_the_table_for_every_connection() -> None:
    demo = run_python("-m", "benchmarks.demo", "--jobs", "40", env={}, cwd=ROOT, timeout=240)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    rows = table(demo.stdout)
    for name in ("memory", "redis", "redis_stream", "rabbitmq", "nats"):
        assert name in rows, demo.stdout
        assert rows[name][1] == name and rows[name][2:4] == ["40", "40"], demo.stdout


def test_demo_skips_a_server_that_does_not_answer_with_one_line() -> None:
    env = {"NATS_URL": "nats://127.0.0.1:1", "RABBITMQ_URL": "amqp://guest:hunter2@127.0.0.1:1/"}
    demo = run_python(
        "-m",
        "benchmarks.demo",
        "--jobs",
        "5",
        "--connections",
        "memory,nats,rabbitmq",
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    lines = [line for line in demo.stdout.splitlines() if line.startswith("  nats:")]
    assert lines == ["  nats: skipped: no server answers at 127.0.0.1:1; start one with: nats-server -js -p 1"]
    assert "hunter2" not in demo.stdout + demo.stderr
    assert table(demo.stdout)["memory"][2:4] == ["5", "5"]
