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


def test_a_real_environment_variable_wins_over_the_dotenv_files(tmp_path: Path) -> None:
    """fastapi-startkit loads .env with override; Laravel's rule (ours) is that the real environment wins, for
    every variable the queue reads, while what only a file sets still counts."""
    (tmp_path / ".env").write_text(
        "APP_ENV=local\nQUEUE_DRIVER=redis\nREDIS_URL=redis://from-dotenv:6379/0\n"
        "QUEUE_CONNECTIONS__REDIS__QUEUE=from-dotenv\nQUEUE_CONNECTIONS__NATS__QUEUE=only-in-dotenv\n"
    )
    (tmp_path / ".env.production").write_text("QUEUE_CONNECTIONS__REDIS__QUEUE=from-dotenv-production\n")
    code = textwrap.dedent(
        """
        import json, os, sys
        from fastapi_startkit import Application
        from queue_manager import QueueProvider
        app = Application(base_path=sys.argv[1], providers=[QueueProvider])
        manager = app.make("queue.manager")
        print(json.dumps({
            "driver": manager.get_default_driver(),
            "redis_url": manager.settings.spec("redis").display_url,
            "redis_queue": manager.settings.connections["redis"].queue,
            "nats_queue": manager.settings.connections["nats"].queue,
            "app_env": os.environ["APP_ENV"],
        }))
        """
    )
    env = {"APP_ENV": "production", "QUEUE_DRIVER": "memory", "REDIS_URL": "redis://from-env:6379/0"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_environ(env),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "driver": "memory",  # the real environment, not .env's redis
        "redis_url": "redis://from-env:6379/0",
        "redis_queue": "from-dotenv-production",  # set by files only: the APP_ENV file wins over .env
        "nats_queue": "only-in-dotenv",
        "app_env": "production",  # so `queue:clear` asks first, as the real environment says
    }
