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
