"""Every command refuses a queue name its driver cannot use, with the driver's check and a clear line (issue 22
items 13 and 14): ``queue:work --queue``, ``queue:size``, ``queue:clear``, ``queue:pause`` and ``queue:resume``,
run as a user runs them (``python artisan ...`` in the example app).

Before, RabbitMQ names with ``? [ { } \\ ' $ %`` passed the check and pamqp refused them with a traceback, and
``}x{`` on Redis reached the server."""

from __future__ import annotations

import pytest

from tests.helpers import run_python

pytestmark = pytest.mark.e2e
BAD = {
    "rabbitmq": ["a?b", "a'b$c", "a\\b"],
    "nats": ["é" * 124],  # 248 bytes: the consumer name workers_<queue> would be longer than NATS's 255
    "redis": ["}x{"],
    "redis_stream": ["a{b}"],
}


def commands(driver: str, queue: str) -> list[list[str]]:
    return [
        ["queue:work", driver, f"--queue={queue}", "--tasks=app.jobs"],
        ["queue:size", f"{driver}:{queue}"],
        ["queue:clear", driver, f"--queue={queue}", "--force"],
        ["queue:pause", f"{driver}:{queue}"],
        ["queue:resume", f"{driver}:{queue}"],
    ]


@pytest.mark.parametrize("driver", sorted(BAD))
def test_every_command_refuses_the_name_in_one_line(driver: str) -> None:
    for queue in BAD[driver]:
        for command in commands(driver, queue):
            done = run_python("artisan", *command, env={"QUEUE_DRIVER": driver}, timeout=60)
            output = done.stdout + done.stderr
            assert done.returncode == 2, f"{command}: exit {done.returncode}\n{output}"
            assert f"cannot be used on {driver}" in output, f"{command}:\n{output}"
            assert "Traceback" not in output, f"{command}:\n{output}"
