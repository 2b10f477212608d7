"""The README's "Chains and batches" examples run as written, on the memory driver (top-level awaits included)."""

from __future__ import annotations

import ast
import re
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from queue_manager import Bus, QueueManager, use_manager
from queue_manager.settings import load_settings
from tests.helpers import ROOT


def readme_block(first_line: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    [block] = [b for b in blocks if b.startswith(first_line)]
    return str(block)


@pytest.fixture
async def manager(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[QueueManager]:
    # the example names the "redis" connection: here it runs in the test's process too
    settings = load_settings({"driver": "memory", "connections": {"redis": {"driver": "memory"}}})
    queue = QueueManager(settings, base_path=tmp_path)
    use_manager(queue)
    with queue.failed.isolated(), queue.batches.isolated():
        yield queue
    await queue.shutdown()
    use_manager(None)


async def run_block(first_line: str, module_name: str) -> dict[str, object]:
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    code = compile(readme_block(first_line), "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    running = eval(code, module.__dict__)
    if running is not None:
        await running
    return module.__dict__


@pytest.mark.parametrize("first_line", ["# app/jobs/podcasts.py", "# app/jobs/imports.py"])
async def test_readme_chain_and_batch_examples_run(
    manager: QueueManager, first_line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = await run_block(first_line, f"readme_bus_{first_line.rsplit('/', 1)[-1][:-3]}")
    printed = capsys.readouterr().out
    if "podcasts" in first_line:
        assert "chain over" in printed and "chain stopped" not in printed
    else:
        batch = await Bus.find_batch(namespace["batch"].id)  # type: ignore[attr-defined]
        assert batch is not None and batch.name == "Import" and batch.total_jobs == 5 and batch.finished
        assert "Import 5 rows imported" in printed and "100% done, 0 failed" in printed
