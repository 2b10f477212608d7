"""Private servers that require a password (tests/servers.py's, with credentials), and the wrong and right URLs of
each server driver, for the authentication tests. RabbitMQ's is the shared node with a wrong password for guest
(nothing there is changed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import PrivateServer, private_nats, private_redis

REDIS_PASSWORD = "R3dis-pw"
ACL_USER, ACL_PASSWORD = "bob", "B0b-pw"
NATS_USER, NATS_PASSWORD = "nats-user", "N4ts-pw"
WRONG = "Wr0ng-pw"


@dataclass(frozen=True)
class Secured:
    """A server of ``driver``: ``right`` and ``wrong`` URLs, the user the wrong one names, where it listens."""

    driver: str
    right: str
    wrong: str
    user: str
    where: str


def redis_with_password(tmp_path: Path) -> AbstractContextManager[PrivateServer]:
    """A redis-server whose default user needs ``REDIS_PASSWORD``, with an ACL user ``bob``."""
    acl = ["--user", ACL_USER, "on", f">{ACL_PASSWORD}", "~*", "&*", "+@all"]
    return private_redis(tmp_path, "--requirepass", REDIS_PASSWORD, *acl)


def nats_with_password(
    tmp_path: Path, user: str = NATS_USER, password: str = NATS_PASSWORD
) -> AbstractContextManager[PrivateServer]:
    """A nats-server that requires ``user`` and ``password``."""
    return private_nats(tmp_path, "--user", user, "--pass", password)


@contextmanager
def secured(driver: str, tmp_path: Path) -> Iterator[Secured]:
    """The server of ``driver`` that requires credentials, with its right and wrong URLs."""
    if driver == "rabbitmq":
        yield _urls(driver, "amqp", "guest", "guest", "127.0.0.1:5672", "/")
        return
    redis = driver in ("redis", "redis_stream")
    with redis_with_password(tmp_path) if redis else nats_with_password(tmp_path) as server:
        where = f"127.0.0.1:{server.port}"
        if redis:
            yield _urls(driver, "redis", ACL_USER, ACL_PASSWORD, where, "/0")
        else:
            yield _urls(driver, "nats", NATS_USER, NATS_PASSWORD, where, "")


def _urls(driver: str, scheme: str, user: str, password: str, where: str, path: str) -> Secured:
    url = f"{scheme}://{user}:{{}}@{where}{path}"
    return Secured(driver, url.format(password), url.format(WRONG), user, where)


async def rotate_acl_password(where: str, new: str) -> None:
    """The ACL user's password is changed and the server drops its connections, as an operator rotating it would:
    every reconnect with the old one is refused."""
    from redis.asyncio import Redis

    async with Redis.from_url(f"redis://:{REDIS_PASSWORD}@{where}/0") as admin:
        await admin.execute_command("ACL", "SETUSER", ACL_USER, "resetpass", f">{new}")
        await admin.execute_command("CLIENT", "KILL", "USER", ACL_USER)
