"""pytest plugin, registered through the ``pytest11`` entry point: installing the package is enough.

Fixtures:
- ``queue_app``: your app (``QUEUE_APP``, default ``bootstrap.application:app``), checked to run its
  default connection on the memory driver; without such a module, a bare app on the memory driver. For the
  test, its failed jobs and batches are kept in the test's process (``queue.failed.store``, ``queue.batches.store``),
  never in the app's real stores
  (a test marked ``@pytest.mark.queue_real_stores`` keeps the configured one).
- ``queue``: its ``QueueManager``.
- ``queue_fake``: ``queue.fake()`` for the test, restored afterwards.

It also sets ``APP_ENV=testing`` (when unset) so an app imported at collection
time loads ``.env.testing`` as it would inside a test, and fails a test that leaves a dispatch it never awaited
(``NeverAwaitedWarning``: nothing was sent, which a test would otherwise pass over in silence).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from drivers import QueueConfigurationError
from queue_manager.errors import NeverAwaitedWarning


def pytest_configure(config: pytest.Config) -> None:
    """fastapi-startkit switches to its "testing" env (and .env.testing) only while a test runs, but
    apps are usually imported while tests are collected: make collection count as testing too."""
    os.environ.setdefault("APP_ENV", "testing")
    config.addinivalue_line(
        "markers",
        "queue_real_stores: keep the app's configured failed-jobs store for this test (the queue_app, "
        "queue and queue_fake fixtures otherwise keep failures in the test's process)",
    )


def _bare_app() -> Any:
    from fastapi_startkit import Application

    from queue_manager.provider import QueueProvider

    return Application(
        base_path=tempfile.mkdtemp(prefix="queue-test-"), providers=[(QueueProvider, {"driver": "memory"})]
    )


def check_memory_app(app: Any) -> Any:
    connection = app.make("queue.manager").connection()
    if connection.driver != "memory":
        pytest.fail(
            f"queue_app: your app's default queue connection is '{connection.name}' (driver {connection.driver}), "
            "so jobs would go to a real broker. Put QUEUE_DRIVER=memory in .env.testing (fastapi-startkit "
            "loads it under pytest): jobs then run in-process, with no server.",
            pytrace=False,
        )
    return app


@pytest.fixture
def queue_app(request: pytest.FixtureRequest) -> Iterator[Any]:
    from queue_manager.worker.entry import load_app

    try:
        app = check_memory_app(load_app())
    except QueueConfigurationError:
        app = _bare_app()
    if request.node.get_closest_marker("queue_real_stores"):
        yield app
        return
    manager = app.make("queue.manager")
    with manager.failed.isolated(), manager.batches.isolated():
        yield app


@pytest.fixture
def queue(queue_app: Any) -> Any:
    return queue_app.make("queue.manager")


@pytest.fixture
def queue_fake(queue: Any) -> Iterator[Any]:
    with queue.fake() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _restore_forgotten_queue_fake() -> Iterator[None]:
    """A test that called manager.fake() without restoring it must not fake the next test's queue."""
    yield
    from queue_manager.testing.fake import QueueFake

    for fake in list(QueueFake.active):
        fake.restore()


@pytest.fixture(autouse=True)
def _fail_on_a_dispatch_never_awaited() -> Iterator[None]:
    """A ``dispatch(...)`` without ``await`` sends nothing: fail the test that did it, naming the line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NeverAwaitedWarning)
        yield
    never_awaited = [w for w in caught if issubclass(w.category, NeverAwaitedWarning)]
    for other in caught:  # every other warning goes on to pytest's own capture, as if never caught here
        if other not in never_awaited:
            warnings.warn_explicit(other.message, other.category, other.filename, other.lineno, source=other.source)
    if never_awaited:
        pytest.fail(
            "\n".join(f"{w.filename}:{w.lineno}: {w.message}" for w in never_awaited),
            pytrace=False,
        )
