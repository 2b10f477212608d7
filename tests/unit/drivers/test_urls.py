from __future__ import annotations

import pytest

from drivers.base.reach import scrub
from drivers.base.urls import has_host, host_port, mask_url, split_urls, unencoded_userinfo, url_list_problem


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


# -- several servers (issue #16): comma lists of whole URLs, and Redis Sentinel's list of host:port pairs ---------


@pytest.mark.parametrize(
    ("url", "masked", "servers"),
    [
        ("nats://a:4222,nats://u:s3cr3t@b:4223", "nats://a:4222,nats://u:***@b:4223", "a:4222,b:4223"),
        (
            "amqp://u:pw1@h1:5672/vh, amqp://u:pw2@h2/vh",
            "amqp://u:***@h1:5672/vh,amqp://u:***@h2/vh",
            "h1:5672,h2:5672",
        ),
        (
            "redis+sentinel://:s3cr3t@s1:26379,s2:26380/mymaster/2",
            "redis+sentinel://:***@s1:26379,s2:26380/mymaster/2",
            "s1:26379,s2:26380",
        ),
        (
            "redis://:s3cr3t@n1:7000,redis://:s3cr3t@n2:7001",
            "redis://:***@n1:7000,redis://:***@n2:7001",
            "n1:7000,n2:7001",
        ),
    ],
)
def test_every_server_of_a_list_is_masked_and_named(url: str, masked: str, servers: str) -> None:
    default = 5672 if url.startswith("amqp") else 6379
    assert mask_url(url) == masked
    assert host_port(url, default) == servers
    assert not [secret for secret in ("s3cr3t", "pw1", "pw2") if secret in mask_url(url) + host_port(url, default)]


def test_scrub_removes_every_password_of_a_list() -> None:
    url = "amqp://u:first-pw@h1:5672/vh,amqp://u:second-pw@h2:5672/vh"
    text = scrub("h1 said first-pw; h2 said u:second-pw and amqp://u:second-pw@h2:5672/vh", url)
    assert "first-pw" not in text and "second-pw" not in text, text


def test_a_comma_inside_a_password_does_not_split_the_list() -> None:
    assert split_urls("nats://u:a,b@h1:4222,nats://h2:4222") == ["nats://u:a,b@h1:4222", "nats://h2:4222"]
    assert mask_url("nats://u:a,b@h1:4222,nats://h2:4222") == "nats://u:***@h1:4222,nats://h2:4222"


@pytest.mark.parametrize(
    "url",
    [
        "nats://h1:4222,h2:4222",  # the second server is not a whole URL
        "nats://h1:4222,",  # an empty entry
        "amqp://u:p@h1:56x2/",  # a port that is no number
    ],
)
def test_a_list_that_cannot_be_read_is_named(url: str) -> None:
    assert url_list_problem(url) is not None


def test_a_good_list_and_a_sentinel_url_have_no_problem() -> None:
    assert url_list_problem("nats://h1:4222,nats://h2:4222") is None
    assert url_list_problem("redis+sentinel://:pw@s1:26379,s2/mymaster") is None
    assert has_host("redis+sentinel://s1:26379,s2:26379/mymaster")
    assert not unencoded_userinfo("amqp://u:p@h1/vh,amqp://u:p@h2/vh")
    assert unencoded_userinfo("amqp://u:p@h1/vh,amqp://u:p#x@h2/vh")


def test_a_sentinel_without_a_port_is_shown_with_the_sentinel_port() -> None:
    assert host_port("redis+sentinel://:pw@h1,h2:5000/mymaster", 6379) == "h1:26379,h2:5000"
