"""Names and option values the broker would refuse, or that make a job run twice, fail at boot with our error."""

from __future__ import annotations

from typing import Any

import pytest

from queue_manager import QueueConfigurationError, QueueManager
from queue_manager.settings import load_settings


def boot(connection: str, **fields: Any) -> QueueManager:
    return QueueManager(load_settings({"driver": "memory", "connections": {connection: fields}}))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"stream": "MY QUEUES"}, "stream"),
        ({"stream": "MY.QUEUES"}, "stream"),
        ({"result_bucket": "queue.results"}, "result_bucket"),
        ({"result_bucket": "queue results"}, "result_bucket"),
        ({"subject_prefix": "jobs queue"}, "subject_prefix"),
        ({"subject_prefix": "jobs..queue"}, "subject_prefix"),
        ({"subject_prefix": "jobs.*"}, "subject_prefix"),
    ],
)
def test_nats_names_nats_refuses_fail_at_boot(
    clean_env: pytest.MonkeyPatch, options: dict[str, str], named: str
) -> None:
    with pytest.raises(QueueConfigurationError, match=named) as caught:
        boot("nats", options=options)
    assert "Valid options" in str(caught.value)


def test_a_nats_queue_name_with_a_dot_fails_at_boot(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError, match="NATS") as caught:
        boot("nats", queue="emails.high")
    assert "connections.nats" in str(caught.value)


def test_a_dotted_queue_name_is_fine_where_the_broker_takes_it(clean_env: pytest.MonkeyPatch) -> None:
    boot("redis", queue="emails.high")
    boot("rabbitmq", queue="emails.high")


@pytest.mark.parametrize("exchange", ["amq.direct", "amq.mine"])
def test_a_rabbitmq_exchange_named_amq_fails_at_boot(clean_env: pytest.MonkeyPatch, exchange: str) -> None:
    with pytest.raises(QueueConfigurationError, match="amq"):
        boot("rabbitmq", options={"exchange": exchange})


def test_a_rabbitmq_queue_named_amq_fails_at_boot(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError, match="amq"):
        boot("rabbitmq", queue="amq.jobs")


@pytest.mark.parametrize(
    ("connection", "option", "value"),
    [
        ("redis", "block_timeout", "inf"),
        ("redis", "block_timeout", float("nan")),
        ("redis", "socket_connect_timeout", "inf"),
        ("redis", "send_timeout", "inf"),
        ("redis_stream", "block_ms", 10**12),
        ("rabbitmq", "connect_timeout", "inf"),
        ("rabbitmq", "send_timeout", 0),
        ("nats", "fetch_timeout", "inf"),
        ("nats", "ack_wait", "inf"),
        ("nats", "send_timeout", -1),
    ],
)
def test_endless_or_impossible_timeouts_fail_at_boot(
    clean_env: pytest.MonkeyPatch, connection: str, option: str, value: Any
) -> None:
    with pytest.raises(QueueConfigurationError, match=option):
        boot(connection, options={option: value})


@pytest.mark.parametrize(
    ("connection", "option", "value", "minimum"),
    [
        ("redis_stream", "idle_timeout_ms", 1, "2000"),
        ("nats", "ack_wait", 0.5, "2"),
        ("redis", "retry_after", 1, "2"),
    ],
)
def test_timers_so_short_that_a_job_runs_twice_fail_at_boot_with_the_minimum(
    clean_env: pytest.MonkeyPatch, connection: str, option: str, value: float, minimum: str
) -> None:
    with pytest.raises(QueueConfigurationError, match=option) as caught:
        boot(connection, options={option: value})
    assert f"greater than or equal to {minimum}" in str(caught.value)


def test_options_that_are_not_json_fail_at_boot(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__OPTIONS", "not-json")
    with pytest.raises(QueueConfigurationError, match="QUEUE_CONNECTIONS__REDIS__OPTIONS must hold JSON"):
        QueueManager()


def test_send_timeout_is_an_option_of_every_server_driver(clean_env: pytest.MonkeyPatch) -> None:
    for connection in ("redis", "redis_stream", "rabbitmq", "nats"):
        boot(connection, options={"send_timeout": 2.5})
