"""A queue outage is not a site outage: the web app starts while its broker is down and recovers by itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi_startkit.fastapi import FastAPIProvider
from taskiq.exceptions import SendTaskError

from queue_manager import BrokerUnreachableError, dispatch, task
from tests.servers import private_redis


@task(name="tests.broker_down.job")
async def job(n: int) -> int:
    return n


async def test_the_web_app_starts_while_its_broker_is_down_and_dispatch_works_once_it_is_back(
    make_app: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with private_redis(tmp_path) as server:
        server.stop()
        app = make_app(
            providers=[FastAPIProvider], QUEUE_DRIVER="redis", REDIS_URL=f"redis://127.0.0.1:{server.port}/0"
        )

        @app.fastapi.get("/ping")
        async def ping() -> dict[str, bool]:
            return {"ok": True}

        fastapi = app.fastapi
        async with fastapi.router.lifespan_context(fastapi):
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and f"127.0.0.1:{server.port}" in warnings[0] and "'redis'" in warnings[0]
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fastapi), base_url="http://app") as client:
                assert (await client.get("/ping")).json() == {"ok": True}, "requests that do not dispatch are served"
            started = time.monotonic()
            with pytest.raises(BrokerUnreachableError, match=f"127.0.0.1:{server.port}"):
                await dispatch(job, 1)
            assert time.monotonic() - started < 15, "a dispatch fails promptly, it does not hang"
            server.start()
            handle = await dispatch(job, 2)  # no restart of the app
            assert handle.task_id
            assert await app.make("queue.manager").connection().size() == 1


async def test_every_way_of_sending_raises_an_error_both_kinds_of_code_catch(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    """``except BrokerUnreachableError`` (the README) and ``except SendTaskError`` (TaskIQ) must both catch a
    send to a broker that is down: through ``dispatch``, ``@task``'s ``kiq`` and the guide's ``@broker.task``,
    whether the broker was down from the start or went away after a send worked. TaskIQ's kicker wrapped
    the second case in a bare SendTaskError, which ``except BrokerUnreachableError`` missed."""
    with private_redis(tmp_path) as server:
        app = make_app(QUEUE_DRIVER="redis", REDIS_URL=f"redis://:hunter2-pw@127.0.0.1:{server.port}/0")
        broker = app.make("broker")

        @broker.task(task_name="tests.broker_down.guide")
        async def guide_task(n: int) -> int:
            return n

        sends = {
            "dispatch": lambda: dispatch(job, 1),
            "@task.kiq": lambda: job.kiq(1),
            "@broker.task.kiq": lambda: guide_task.kiq(1),
        }
        for name, send in sends.items():
            assert (await send()).task_id, f"{name} works while the server is up"
        server.stop()
        for name, send in sends.items():
            with pytest.raises(BrokerUnreachableError) as caught:
                await send()
            error = caught.value
            assert isinstance(error, SendTaskError), f"{name}: {type(error).__mro__}"
            assert f"127.0.0.1:{server.port}" in str(error) and "hunter2-pw" not in str(error) + repr(error)
        await app.make("queue.manager").shutdown()
