"""QueueManager: names, caching, custom drivers, and every configuration mistake caught at boot."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from taskiq import InMemoryBroker

from drivers import BrokerSpec
from queue_manager import Connection, MissingExtraError, QueueConfigurationError, QueueManager
from queue_manager.settings import load_settings
from tests.helpers import ROOT, clean_environ


def manager(config: dict | None = None) -> QueueManager:  # type: ignore[type-arg]
    return QueueManager(load_settings(config or {}))


def test_connection_is_cached_and_the_default_follows_queue_driver(clean_env: pytest.MonkeyPatch) -> None:
    queue = manager({"driver": "memory"})
    assert queue.get_default_driver() == "memory"
    assert not queue.connected()
    default = queue.connection()
    assert isinstance(default, Connection)
    assert default is queue.connection() is queue.connection("memory")
    assert queue.connected() and queue.connected("memory") and not queue.connected("redis")
    assert (default.name, default.driver) == ("memory", "memory")


def test_named_connections_resolve_lazily_each_with_its_own_broker(clean_env: pytest.MonkeyPatch) -> None:
    queue = manager({"driver": "memory"})
    redis = queue.connection("redis")
    assert redis is queue.connection("redis")
    assert redis.broker is not queue.connection().broker
    assert type(redis.broker).__name__ == "RedisListBroker"
    assert sorted(queue.resolved) == ["memory", "redis"]


def test_set_default_driver(clean_env: pytest.MonkeyPatch) -> None:
    queue = manager({"driver": "memory"})
    queue.set_default_driver("nats")
    assert queue.get_default_driver() == "nats"
    assert queue.connection().driver == "nats"
    with pytest.raises(QueueConfigurationError, match="Did you mean 'nats'"):
        queue.set_default_driver("natss")


def test_unknown_connection_lists_valid_names_and_suggests(clean_env: pytest.MonkeyPatch) -> None:
    queue = manager({"driver": "memory"})
    with pytest.raises(QueueConfigurationError) as caught:
        queue.connection("rabbit")
    message = str(caught.value)
    assert "Unknown queue connection 'rabbit'" in message
    assert "Did you mean 'rabbitmq'?" in message
    assert "memory, nats, rabbitmq, redis, redis_stream" in message


def test_unknown_default_connection_fails_at_construction(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError, match="Did you mean 'redis_stream'"):
        manager({"driver": "redis-stream"})


def test_unknown_driver_in_a_connection_fails_at_construction(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError) as caught:
        manager({"driver": "memory", "connections": {"emails": {"driver": "rabitmq"}}})
    message = str(caught.value)
    assert "'emails'" in message and "Unknown queue driver 'rabitmq'" in message
    assert "Did you mean 'rabbitmq'?" in message and "QUEUE_CONNECTIONS__EMAILS__DRIVER" in message


def test_wrong_url_scheme_is_caught_and_masked(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError) as caught:
        manager({"driver": "memory", "connections": {"rabbitmq": {"url": "http://admin:topsecret@rabbit/"}}})
    message = str(caught.value)
    assert "amqp://" in message and "admin:***@rabbit" in message
    assert "topsecret" not in message


def test_invalid_driver_options_are_caught_at_construction(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError) as caught:
        manager({"driver": "memory", "connections": {"nats": {"options": {"ack_wiat": 10}}}})
    message = str(caught.value)
    assert "ack_wiat" in message and "Valid options:" in message and "ack_wait" in message
    with pytest.raises(QueueConfigurationError, match="greater than 0"):
        manager({"driver": "memory", "connections": {"redis": {"options": {"block_timeout": -1}}}})


def test_extend_registers_a_custom_driver(clean_env: pytest.MonkeyPatch) -> None:
    seen: list[BrokerSpec] = []

    def factory(spec: BrokerSpec) -> InMemoryBroker:
        seen.append(spec)
        return InMemoryBroker()

    queue = QueueManager(
        load_settings(
            {
                "driver": "memory",
                "drivers": {"inproc": factory},
                "connections": {"custom": {"driver": "inproc", "queue": "q1"}},
            }
        )
    )
    connection = queue.connection("custom")
    assert isinstance(connection.broker, InMemoryBroker)
    assert seen[0].queue == "q1" and seen[0].driver == "inproc"
    queue.extend("later", factory)
    assert "later" in queue.drivers


def test_drivers_setting_accepts_an_import_path(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_DRIVERS__INPROC", "drivers.memory:build")
    clean_env.setenv("QUEUE_CONNECTIONS__LOCAL__DRIVER", "inproc")
    queue = manager({"driver": "local"})
    assert isinstance(queue.connection().broker, InMemoryBroker)


def test_a_factory_that_returns_no_broker_is_an_error(clean_env: pytest.MonkeyPatch) -> None:
    queue = manager(
        {"driver": "memory", "drivers": {"bad": lambda spec: object()}, "connections": {"bad": {"driver": "bad"}}}
    )
    with pytest.raises(QueueConfigurationError, match="not a TaskIQ AsyncBroker"):
        queue.connection("bad")


def test_repr_shows_names_and_masks_urls(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_PASSWORD", "hunter2")
    queue = manager({"driver": "redis"})
    text = repr(queue) + repr(queue.connection()) + repr(queue.connection().spec)
    assert "hunter2" not in text and ":***@" in text


def _python(code: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=clean_environ({"APP_ENV": "testing"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_an_app_on_redis_never_imports_aio_pika_or_nats() -> None:
    result = _python(
        """
        import json, sys, tempfile
        from fastapi_startkit import Application
        from queue_manager import QueueProvider
        app = Application(base_path=tempfile.mkdtemp(), providers=[QueueProvider])
        app.make("queue.manager").connection("redis_stream")
        heavy = ("aio_pika", "aiormq", "nats", "taskiq_nats", "taskiq_aio_pika")
        before = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        app.make("queue.manager").connection("nats")
        redis = "taskiq_redis" in sys.modules
        print(json.dumps({"before": before, "redis": redis, "nats_after": "nats" in sys.modules}))
        """
    )
    assert result == {"before": [], "redis": True, "nats_after": True}


@pytest.mark.parametrize(
    ("driver", "library", "extra"),
    [("rabbitmq", "taskiq_aio_pika", "rabbitmq"), ("nats", "nats", "nats"), ("redis", "taskiq_redis", "redis")],
)
def test_a_missing_library_names_the_extra_to_install(driver: str, library: str, extra: str) -> None:
    result = _python(
        f"""
        import json, sys
        sys.modules[{library!r}] = None  # as if the extra were not installed
        from queue_manager import QueueManager, MissingExtraError
        from queue_manager.settings import load_settings
        try:
            QueueManager(load_settings({{"driver": "memory"}})).connection({driver!r})
        except MissingExtraError as error:
            print(json.dumps({{"message": str(error), "is_import_error": isinstance(error, ImportError)}}))
        """
    )
    assert f"pip install 'fastapi-startkit-queue[{extra}]'" in result["message"]
    assert f"'{driver}' queue driver" in result["message"]
    assert result["is_import_error"]


def test_missing_extra_error_is_a_configuration_error() -> None:
    assert issubclass(MissingExtraError, QueueConfigurationError)


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ("rdis", "Unknown queue connection 'rdis'. Did you mean 'redis'?"),
        ("rabbitmq", "cannot keep its results in itself"),
        ("memory", "whose driver (memory) has no result store other connections can share"),
    ],
)
def test_results_in_another_connection_must_name_one_with_a_store(
    clean_env: pytest.MonkeyPatch, results: str, message: str
) -> None:
    with pytest.raises(QueueConfigurationError) as caught:
        manager({"driver": "memory", "connections": {"rabbitmq": {"results": results}}})
    assert message in str(caught.value)
    assert "QUEUE_CONNECTIONS__RABBITMQ__RESULTS" in str(caught.value)


def test_results_in_another_connection_use_that_connections_store(clean_env: pytest.MonkeyPatch) -> None:
    from drivers.redis.results import RedisResults

    clean_env.setenv("QUEUE_CONNECTIONS__RABBITMQ__RESULTS", "redis")
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__OPTIONS__RESULT_PREFIX", "shared:results")
    rabbitmq = QueueManager().connection("rabbitmq")
    backend = rabbitmq.broker.result_backend
    assert isinstance(backend, RedisResults) and backend.prefix_str == "shared:results"
    assert not backend.write_behind, "each job waits for its result before RabbitMQ's ack"
