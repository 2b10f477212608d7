"""Without a guard the dashboard is served only in a local environment (the app's own ``app.env``), or when it is
declared public (``QUEUE_DASHBOARD_PUBLIC=true``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi_startkit.fastapi import FastAPIProvider

from drivers import QueueConfigurationError

GUARD = "tests.integration.web.test_dashboard_api:only_with_token"


@pytest.fixture
def app_in(make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """An app in the environment given: fastapi-startkit calls every app "testing" while PYTEST_CURRENT_TEST is
    set, so it is unset for the boot."""

    def build(environment: str, **env: str) -> Any:
        monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
        app = make_app(
            providers=[FastAPIProvider], APP_ENV=environment, QUEUE_DRIVER="memory", QUEUE_DASHBOARD="true", **env
        )
        assert app.env == environment
        return app

    return build


async def status(app: Any, path: str) -> int:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.fastapi), base_url="http://app") as http:
        return (await http.get(path)).status_code


@pytest.mark.parametrize("environment", ["production", "staging", "Production"])
def test_no_guard_outside_a_local_environment_fails_the_boot(app_in: Callable[..., Any], environment: str) -> None:
    with pytest.raises(QueueConfigurationError) as refused:
        app_in(environment)
    message = str(refused.value)
    assert f"the '{environment}' environment" in message
    assert "QUEUE_DASHBOARD_GUARD=module:function" in message and "QUEUE_DASHBOARD_PUBLIC=true" in message


@pytest.mark.parametrize("environment", ["local", "development", "testing"])
async def test_no_guard_is_needed_on_a_developers_machine(app_in: Callable[..., Any], environment: str) -> None:
    assert await status(app_in(environment), "/queue") == 200


@pytest.mark.parametrize(
    ("setting", "anonymous"), [({"QUEUE_DASHBOARD_GUARD": GUARD}, 403), ({"QUEUE_DASHBOARD_PUBLIC": "true"}, 200)]
)
async def test_a_guard_or_the_public_setting_lets_it_be_served_in_production(
    app_in: Callable[..., Any], caplog: pytest.LogCaptureFixture, setting: dict[str, str], anonymous: int
) -> None:
    with caplog.at_level(logging.WARNING, logger="queue_manager"):
        app = app_in("production", **setting)
    assert await status(app, "/queue") == anonymous
    public = [record.getMessage() for record in caplog.records if "without a guard" in record.getMessage()]
    assert len(public) == (1 if anonymous == 200 else 0), "a public dashboard is said so once, at boot"
