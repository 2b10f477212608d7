from __future__ import annotations

import pytest

from drivers.reach import scrub
from drivers.urls import host_port, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("nats://token@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),
        ("redis://u:p@[::1]:6379/0", "redis://u:***@[::1]:6379/0"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_host_port_uses_the_driver_default() -> None:
    assert host_port("amqp://guest:guest@rabbit/", 5672) == "rabbit:5672"
    assert host_port("redis://:pw@127.0.0.1:6390/0", 6379) == "127.0.0.1:6390"


def test_scrub_removes_the_password_from_library_messages() -> None:
    url = "amqp://admin:p%40ss@rabbit:5672/"
    text = scrub(f"failed to connect to {url} as admin with p@ss", url)
    assert "p@ss" not in text and "p%40ss" not in text


# A password with a character that should have been percent-encoded: urlsplit ends the authority early.
UNENCODED = [
    "redis://:p4ss#w0rd@127.0.0.1:6379/0",
    "redis://:p4ss?w0rd@127.0.0.1:6379/0",
    "redis://:p4ss/w0rd@127.0.0.1:6379/0",
    "amqp://guest:p4ss#w0rd@127.0.0.1:5672/",
    "amqp://guest:p4ss/w0rd@rabbit:5672/vhost",
    "nats://user:p4ss?w0rd@127.0.0.1:4222",
    "nats://p4ss#w0rd@127.0.0.1:4222",
    "rediss://user:p4ss#w0r/d?x@cache:6380/1",
]


@pytest.mark.parametrize("url", UNENCODED)
def test_mask_url_hides_everything_before_the_host_even_when_the_url_does_not_parse(url: str) -> None:
    masked = mask_url(url)
    assert "p4ss" not in masked and "w0r" not in masked, masked
    assert masked.startswith(url.split("://")[0] + "://") and "***@" in masked


@pytest.mark.parametrize("url", UNENCODED)
def test_scrub_removes_an_unencoded_password_from_library_messages(url: str) -> None:
    password = url.split("://", 1)[1].rsplit("@", 1)[0].split(":")[-1]
    text = scrub(f"Error connecting to {url}: bad password {password} (p4ss)", url)
    assert "w0r" not in text and password not in text, text


def test_host_port_of_an_unencoded_password_url_names_the_host_not_the_password() -> None:
    assert host_port("redis://:p4ss#w0rd@cache:6390/0", 6379) == "cache:6390"
    assert "w0rd" not in host_port("amqp://u:p4ss/w0rd@rabbit/", 5672)


def test_host_port_of_a_unix_socket_is_its_path() -> None:
    assert host_port("unix:///run/redis/redis.sock?db=1", 6379) == "/run/redis/redis.sock"
