"""QueueProvider: the four bindings, the lifespan, publishing, and boot without FastAPI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi_startkit.fastapi import FastAPIProvider

from queue_manager import Connection, QueueConfigurationError, QueueManager, QueueSettings
from tests.helpers import ROOT, clean_environ


def test_the_four_bindings(make_app: Callable[..., Any]) -> None:
    app = make_app(QUEUE_DRIVER="memory")
    manager = app.make("queue.manager")
    assert isinstance(manager, QueueManager)
    assert app.make("queue") is manager
    connection = app.make("queue.connection")
    assert isinstance(connection, Connection) and connection is manager.connection()
    assert app.make("broker") is connection.broker
    assert connection.name == "memory"


def test_queue_facade_reaches_the_manager(make_app: Callable[..., Any]) -> None:
    from fastapi_startkit.facades import Queue

    app = make_app(QUEUE_DRIVER="memory")
    assert Queue.connection("memory") is app.make("queue.manager").connection("memory")
    assert Queue.get_default_driver() == "memory"


def test_provider_config_dict_wins_over_env(make_app: Callable[..., Any]) -> None:
    app = make_app(config={"driver": "memory"}, QUEUE_DRIVER="nats")
    assert app.make("queue.connection").name == "memory"


def test_provider_config_as_a_settings_class(make_app: Callable[..., Any]) -> None:
    class QueueConfig(QueueSettings):
        driver: str = "memory"

    app = make_app(config=QueueConfig)
    assert app.make("queue.connection").name == "memory"


def test_unknown_queue_driver_fails_at_boot(make_app: Callable[..., Any]) -> None:
    with pytest.raises(QueueConfigurationError, match="Did you mean 'rabbitmq'"):
        make_app(QUEUE_DRIVER="rabbit")


def test_config_example_is_published(make_app: Callable[..., Any], tmp_path: Path) -> None:
    app = make_app(QUEUE_DRIVER="memory")
    resources = app.published_resources["queue"]
    [(source, destination)] = resources.items()
    assert destination == "config/queue.py"
    assert Path(source).read_text().startswith('"""')
    assert app.run("provider:publish", "--provider=queue") == 0
    assert (tmp_path / "config" / "queue.py").read_text() == Path(source).read_text()


async def test_lifespan_starts_and_stops_resolved_connections(make_app: Callable[..., Any]) -> None:
    app = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory")
    manager: QueueManager = app.make("queue.manager")
    fastapi = app.fastapi
    async with fastapi.router.lifespan_context(fastapi):
        assert manager.connection().started
    assert not manager.connection().started


async def test_lifespan_starts_nothing_inside_a_worker_process(make_app: Callable[..., Any]) -> None:
    app = make_app(providers=[FastAPIProvider], QUEUE_DRIVER="memory")
    manager: QueueManager = app.make("queue.manager")
    app.make("broker").is_worker_process = True
    async with app.fastapi.router.lifespan_context(app.fastapi):
        assert not manager.connection().started


def test_boot_succeeds_without_fastapi_installed() -> None:
    code = textwrap.dedent(
        """
        import json, sys, tempfile
        sys.modules["fastapi"] = None  # a worker-only app without FastAPI
        from fastapi_startkit import Application
        from queue_manager import QueueProvider
        app = Application(base_path=tempfile.mkdtemp(), providers=[QueueProvider])
        print(json.dumps({"driver": app.make("queue.connection").driver}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ({"APP_ENV": "testing", "QUEUE_DRIVER": "memory"}),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"driver": "memory"}


def test_every_console_command_is_registered_and_resolves() -> None:
    """The provider names its commands (loaded when the console starts): none missing, none misspelt."""
    import importlib
    import inspect

    from cleo.commands.command import Command

    from queue_manager.console import COMMANDS, lazy_command

    for module_name, names in COMMANDS.items():
        module = importlib.import_module(module_name)
        defined = {
            name
            for name, value in vars(module).items()
            if inspect.isclass(value)
            and issubclass(value, Command)
            and value.__module__ == module_name
            and getattr(value, "name", None)
        }
        assert set(names) == defined, module_name
        for name in names:
            built = lazy_command(module_name, name)()
            assert isinstance(built, Command) and built.name.startswith("queue:"), name
