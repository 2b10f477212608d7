"""Who may open the dashboard. Its buttons pause queues and retry or forget failed jobs, and it shows every
connection's host, so without a guard it is served only where the app runs on a developer's machine (Horizon's
rule: the local environment only), unless a setting says something else protects it.

The environment is the app's own (``app.env``: fastapi-startkit resolves it from ``--env``, ``APP_ENV`` or the
``.env`` file, before that file is loaded over ``os.environ``), so ``APP_ENV=production`` in ``.env`` counts too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from drivers import QueueConfigurationError

logger = logging.getLogger("queue_manager.dashboard")

LOCAL_ENVIRONMENTS = ("local", "development", "dev", "testing", "test")


def app_environment(app: Any) -> str:
    """The app's environment (``app.env``); APP_ENV for an app without one; production when neither says."""
    return str(getattr(app, "env", None) or os.environ.get("APP_ENV") or "production")


def check_access(
    environment: str, guard: Callable[..., Any] | None, public: bool, variable: Callable[[str], str]
) -> None:
    """Refuse to serve an unguarded dashboard outside a local environment, unless it is declared public (then say
    so once, in the log). ``variable(field)`` names a setting's environment variable."""
    if guard is not None or environment.strip().lower() in LOCAL_ENVIRONMENTS:
        return
    if public:
        logger.warning(
            "The queue dashboard is served without a guard in the '%s' environment (%s=true): whatever protects "
            "its path protects the buttons that pause queues and retry or forget failed jobs.",
            environment,
            variable("dashboard_public"),
        )
        return
    raise QueueConfigurationError(
        f"{variable('dashboard')}=true would serve the queue dashboard to anyone: the app runs in the "
        f"'{environment}' environment and {variable('dashboard_guard')} is not set. Anyone could pause queues and "
        "retry or forget failed jobs, and see every connection's host. Set "
        f"{variable('dashboard_guard')}=module:function (a FastAPI dependency that refuses who may not see it), "
        f"or {variable('dashboard_public')}=true if something else protects the path (a VPN, your proxy's "
        f"login), or turn the dashboard off. Without a guard it is served in {', '.join(LOCAL_ENVIRONMENTS)} only."
    )
