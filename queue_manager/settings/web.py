"""The web app's queue settings: the health route and the dashboard (``QUEUE_HEALTH_*``, ``QUEUE_DASHBOARD*``).

A flat group that ``QueueSettings`` inherits, so the variables keep their names (``QUEUE_HEALTH_PATH``, not
``QUEUE_WEB__HEALTH_PATH``). The connection names are checked against the connections when the routes are added
(``queue_manager.web.connections``): only the whole settings know them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, ImportString, field_validator

from queue_manager.settings.lists import CommaList


class WebSettings(BaseModel):
    health_path: str | None = Field(
        "/queue/health", description="the web app's health route (QUEUE_HEALTH_PATH); empty turns it off"
    )
    health_connections: CommaList | None = Field(
        None,
        description="the connections the health route checks, always the same (QUEUE_HEALTH_CONNECTIONS=redis,nats);"
        " default: the connections the app uses (the default, those its settings name, those a failover sends to)",
    )
    health_details: bool = Field(
        False,
        description="show anyone each connection's driver, latency and error on the health route "
        "(QUEUE_HEALTH_DETAILS=true); otherwise they are behind the dashboard's guard ({dashboard_path}/api/health)",
    )
    dashboard: bool = Field(False, description="serve the dashboard (QUEUE_DASHBOARD=true); off by default")
    dashboard_path: str = Field("/queue", description="where the dashboard is served")
    dashboard_guard: ImportString[Callable[..., Any]] | None = Field(
        None,
        description="a FastAPI dependency every dashboard request must pass (QUEUE_DASHBOARD_GUARD=module:function)",
    )
    dashboard_public: bool = Field(
        False,
        description="serve the dashboard without a guard outside a local/development/testing environment "
        "(QUEUE_DASHBOARD_PUBLIC=true: something else protects it, such as a VPN or the proxy's login)",
    )
    dashboard_connections: CommaList | None = Field(
        None,
        description="the connections the dashboard shows (QUEUE_DASHBOARD_CONNECTIONS=redis,nats); "
        "default: those the health route checks",
    )

    @field_validator("health_connections", "dashboard_connections", mode="after")
    @classmethod
    def _empty_is_default(cls, value: list[str] | None) -> list[str] | None:
        """``QUEUE_HEALTH_CONNECTIONS=`` (empty) means the default set, not "check nothing"; each name once."""
        return list(dict.fromkeys(value)) if value else None

    def variable(self, field: str) -> str:
        """The environment variable that sets ``field`` (``QUEUE_HEALTH_CONNECTIONS``), for messages."""
        prefix = str(type(self).model_config.get("env_prefix") or "").upper()
        return f"{prefix}{field.upper()}"
