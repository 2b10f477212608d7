"""A real environment variable wins over ``.env``, as in Laravel.

fastapi-startkit loads ``.env`` (and ``.env.<APP_ENV>``) with override, so ``QUEUE_DRIVER=nats python artisan
queue:work``, a systemd ``Environment=`` or a container's variable would silently lose to the file. The process
environment is remembered when this package is first imported (an app imports its providers before it loads its
``.env`` files); when the provider registers, every variable the queue reads that a ``.env`` file overrode gets
the value the process was started with back. Variables set only in a file are left as the file set them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from drivers import DRIVERS

STARTED_WITH = dict(os.environ)
APP_VARIABLES = frozenset({"APP_ENV", "APP_KEY", "APP_NAME"})


def read_by_the_queue(name: str) -> bool:
    """A variable the queue's settings, drivers or commands read."""
    return (
        name.upper().startswith("QUEUE_")
        or name in APP_VARIABLES
        or any(name in info.url_variables for info in DRIVERS.values())
    )


def dotenv_files(base_path: Path, env: str | None) -> list[Path]:
    """The files fastapi-startkit loads, in its order (a later one overrides an earlier one)."""
    return [base_path / ".env", *([base_path / f".env.{env}"] if env else [])]


def restore_real_environment(files: Iterable[Path]) -> list[str]:
    """Give every queue variable a ``.env`` file overrode its real value back; returns their names."""
    from dotenv import dotenv_values  # fastapi-startkit's own dependency, only needed here

    from_files: dict[str, str | None] = {}
    for path in files:
        if path.is_file():
            from_files.update(dotenv_values(path))
    restored = []
    for name, value in from_files.items():
        real = STARTED_WITH.get(name)
        if real is not None and real != value and os.environ.get(name) == value and read_by_the_queue(name):
            os.environ[name] = real
            restored.append(name)
    return restored
