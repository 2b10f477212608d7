"""The README's dispatch example runs as written (memory default, real RabbitMQ and NATS for the rest)."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import ROOT, cleanup_queue, unique


def readme_block(first_line: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    [block] = [b for b in blocks if b.startswith(first_line)]
    return str(block)


async def test_readme_dispatch_example_runs(make_app: Callable[..., Any]) -> None:
    queues = {"rabbitmq": unique(), "nats": unique()}
    app = make_app(
        QUEUE_DRIVER="memory",
        QUEUE_CONNECTIONS__RABBITMQ__QUEUE=queues["rabbitmq"],
        QUEUE_CONNECTIONS__NATS__QUEUE=queues["nats"],
    )
    module = types.ModuleType("readme_jobs")
    sys.modules[module.__name__] = module
    exec(compile(readme_block("# app/jobs.py"), "README.md", "exec"), module.__dict__)
    namespace = module.__dict__
    manager = app.make("queue.manager")
    try:
        await namespace["examples"](manager)
        assert manager.connected("rabbitmq") and manager.connected("nats")
    finally:
        await manager.shutdown()
        await cleanup_queue("rabbitmq", "emails")
        for driver, queue in queues.items():
            await cleanup_queue(driver, queue)


@pytest.mark.parametrize("first_line", ["# bootstrap/application.py", "# app/tasks.py  (unchanged from the guide)"])
def test_readme_seed_blocks_match_the_tested_app(first_line: str) -> None:
    """The guide's files in the README are the ones tests/app runs end to end."""
    block = readme_block(first_line)
    path = {"# bootstrap/application.py": "bootstrap/application.py", "# app/tasks.py": "app/tasks.py"}
    tested = (ROOT / "tests" / "app" / path[first_line.split("  ")[0]]).read_text()
    for line in block.splitlines()[1:]:
        code = line.split("#")[0].strip()
        if code and not code.startswith("return"):
            assert code in tested, f"README line not in the tested app: {line!r}"
