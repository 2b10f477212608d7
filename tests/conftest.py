"""Test fixtures. Tests talk to the real Redis, RabbitMQ and NATS on loopback; nothing is mocked."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ENV_PREFIXES, unique


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No QUEUE_/REDIS_/RABBITMQ_/NATS_ variables from the machine leak into a test."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIXES):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def no_current_manager() -> Iterator[None]:
    """Reset the current manager (``use_manager``) after a test that set one."""
    yield
    from queue_manager import use_manager

    use_manager(None)


@pytest.fixture
def queue_name() -> str:
    return unique()


@pytest.fixture
def make_app(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Boot a fastapi-startkit app with QueueProvider in a fresh directory; env given as kwargs."""

    def build(providers: list[Any] | None = None, config: Any = None, **env: str) -> Any:
        from fastapi_startkit import Application

        from queue_manager import QueueProvider

        for key, value in env.items():
            clean_env.setenv(key, value)
        queue_provider: Any = (QueueProvider, config) if config is not None else QueueProvider
        return Application(base_path=tmp_path, providers=[*(providers or []), queue_provider])

    yield build
