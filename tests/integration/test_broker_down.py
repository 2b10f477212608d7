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
