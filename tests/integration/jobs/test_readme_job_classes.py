"""The README's "Job classes" blocks run as written: the dispatch forms (memory default, the real RabbitMQ for
``.on_connection("rabbitmq")``), release/fail/delete, a unique job, the events provider, an encrypted job and
the testing examples."""

from __future__ import annotations

import ast
import inspect
import re
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import ROOT, cleanup_queue, unique


def section_blocks() -> list[str]:
    section = (ROOT / "README.md").read_text().split("\n## Job classes\n", 1)[1].split("\n## ", 1)[0]
    return [str(block) for block in re.findall(r"```python\n(.*?)```", section, flags=re.S)]


def block(first_line: str) -> str:
    [found] = [b for b in section_blocks() if b.startswith(first_line)]
    return found


async def run_in(module: types.ModuleType, source: str) -> None:
    """Execute a README block in ``module``, top-level ``await`` included."""
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, module.__dict__)  # the README's own code
    if inspect.iscoroutine(result):
        await result


def module_named(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    return module


async def test_the_job_classes_section_runs(
    make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    welcome, reports = module_named(unique("readme_welcome_")), module_named(unique("readme_reports_"))
    await run_in(welcome, block("# app/jobs/welcome.py"))
    await run_in(reports, block("# app/jobs/reports.py"))
    events = module_named(unique("readme_events_"))
    await run_in(events, block("# app/providers/event_service_provider.py"))
    queue = unique()
    monkeypatch.setenv("APP_KEY", "base64:" + "a2V5LW9mLXRoZS1yZWFkbWUtYXBw")
    app = make_app(
        providers=[events.AppEventServiceProvider],
        QUEUE_DRIVER="memory",
        QUEUE_CONNECTIONS__RABBITMQ__QUEUE=queue,
    )
    manager = app.make("queue.manager")
    try:
        with manager.failed.isolated() as failed:
            await welcome.examples(manager)
            assert "welcomed ada@example.com from Lyon" in capsys.readouterr().out

            await reports.BuildReport.dispatch(-1)  # fail(): JobFailed reaches notify_team
            told = capsys.readouterr().out
            assert f"{reports.__name__}:BuildReport" in told and "failed on memory/" in told, told
            assert "report -1 does not exist" in told, told
            assert len(await failed.all()) == 1

            await run_in(reports, block("class RecalculateScore(Job):"))
            assert reports.handle is not None, "the first dispatch of a unique job is queued"

            await run_in(reports, block("class ChargeCard(Job):"))
            sent = await reports.ChargeCard.dispatch(1, "4111222233334444")
            assert not (await sent.wait_result(timeout=5)).is_err

            testing = module_named(unique("readme_testing_"))
            testing.__dict__.update({**welcome.__dict__, "BuildReport": reports.BuildReport})
            await run_in(testing, block("async def test_signup_queues_the_welcome_email"))
            with manager.fake() as fake:
                await testing.test_signup_queues_the_welcome_email(fake)
            await testing.test_a_report_not_ready_is_released()
    finally:
        await manager.shutdown()
        await cleanup_queue("rabbitmq", queue)
        await cleanup_queue("rabbitmq", "emails")
