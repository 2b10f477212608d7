"""Every file in config_examples/ loads and gives a working configuration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from dotenv import dotenv_values
from pydantic import Field

from queue_manager import ConnectionSettings, QueueManager, QueueSettings
from queue_manager.provider import config_example
from queue_manager.settings import load_settings
from tests.helpers import ROOT

EXAMPLES = ROOT / "config_examples"
ENV_FILES = sorted(p for p in EXAMPLES.iterdir() if p.name.endswith(".env") or p.name.startswith(".env"))


def test_every_driver_has_an_env_example() -> None:
    names = {p.name for p in ENV_FILES}
    assert {"redis.env", "redis_stream.env", "rabbitmq.env", "nats.env", "memory.env", ".env.testing"} <= names


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_example_configures_its_driver(path: Path, clean_env: pytest.MonkeyPatch) -> None:
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    for key, value in values.items():
        clean_env.setenv(key, value)
    manager = QueueManager(load_settings())
    expected = {".env.testing": "memory", "failed-database.env": "redis"}.get(path.name, path.name.removesuffix(".env"))
    assert manager.connection().driver == expected
    if path.name == "failed-database.env":
        failed = manager.settings.failed
        assert failed.driver == "database" and (failed.url_value or "").startswith("postgresql+asyncpg://")


def test_published_config_module_loads(clean_env: pytest.MonkeyPatch) -> None:
    assert config_example() == EXAMPLES / "queue.py"
    spec = importlib.util.spec_from_file_location("published_queue_config", EXAMPLES / "queue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.QueueConfig()
    assert isinstance(config, QueueSettings)
    assert QueueManager(load_settings(config)).get_default_driver() == "redis"


def test_a_config_subclass_adds_connections_merged_with_driver_defaults(clean_env: pytest.MonkeyPatch) -> None:
    class QueueConfig(QueueSettings):
        connections: dict[str, ConnectionSettings] = Field(
            default_factory=lambda: {"emails": {"driver": "rabbitmq", "queue": "emails"}}  # type: ignore[dict-item]
        )

    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__QUEUE", "from-env")
    manager = QueueManager(load_settings(QueueConfig()))
    assert manager.settings.connections["redis"].queue == "from-env"
    emails = manager.settings.connections["emails"]
    assert (emails.driver, emails.queue) == ("rabbitmq", "emails")
    assert emails.url_value == "amqp://guest:guest@127.0.0.1:5672/", "driver defaults fill the example's connection"
    assert sorted(manager.connection_names) == ["emails", "memory", "nats", "rabbitmq", "redis", "redis_stream"]
