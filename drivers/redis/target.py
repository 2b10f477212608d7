"""Where a Redis connection's servers are: one server, a master watched by Redis Sentinel, or a Redis Cluster.

- ``redis://``, ``rediss://``, ``unix://``: one server, as always.
- ``redis+sentinel://[[user]:password@]host1:port1,host2:port2/<master_name>[/db]`` (``rediss+sentinel://`` for
  TLS to the master; a sentinel's port defaults to 26379): redis-py's ``SentinelConnectionPool`` asks the
  sentinels for the master whenever it opens a connection, and drops connections to a master that has become a
  replica, so after a failover the next command reaches the new master. The password is the Redis servers'; the
  sentinels are asked without one.
- option ``cluster: true`` with ``redis://host:port`` (or a comma list of such URLs, the startup nodes): redis-py's
  ``RedisCluster``, which finds every master and routes each command to the slot's owner. Every key of one queue
  carries the queue's hash tag (``queues:{default}``, ``queues:{default}:reserved``, ...), so the Lua scripts and
  transactions on one queue stay inside one slot.

Discovery and routing are redis-py's: this module only reads the URL and builds its pool or client. It
imports redis-py only to build them, so the settings check at boot reads a URL without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from drivers.base.errors import QueueConfigurationError
from drivers.base.urls import SENTINEL_PORT, split_urls, split_userinfo

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import SentinelConnectionPool

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_FORM = "redis+sentinel://[:password@]host1:port1,host2:port2/<master_name>[/db]"


@dataclass(frozen=True)
class RedisTarget:
    """One connection's Redis servers, read from its URL and its ``cluster`` option (its repr shows no secret)."""

    kind: str  # "server", "sentinel" or "cluster"
    url: str = field(repr=False)  # "server": the URL; "cluster": the first startup node's (secret: not in repr)
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    startup_nodes: tuple[tuple[str, int], ...] = ()

    @property
    def cluster(self) -> bool:
        return self.kind == "cluster"

    @property
    def pool_url(self) -> str:
        """A URL ``BlockingConnectionPool.from_url`` can read: taskiq-redis makes a pool from it, which stays
        unused on a sentinel or cluster connection (the broker replaces or bypasses it)."""
        if self.kind == "sentinel":
            host, port = self.sentinels[0]
            return f"redis://{host}:{port}/{self.db}"
        return self.url


def scheme_of(url: str) -> str:
    prefix, _, _ = split_userinfo(url)
    return prefix[:-3].lower()


def target_of(url: str, cluster: bool = False) -> RedisTarget:
    """Read a connection's URL; QueueConfigurationError (without the URL: it may hold a password) if it cannot work."""
    scheme = scheme_of(url)
    if scheme in SENTINEL_SCHEMES:
        if cluster:
            raise QueueConfigurationError(
                "a redis+sentinel:// URL cannot be used with the option cluster=true: Redis Cluster has no sentinels "
                "(use redis://host:port of a cluster node with cluster=true, or Sentinel without it)"
            )
        return _sentinel(url, scheme)
    urls = split_urls(url)
    if not cluster:
        if len(urls) > 1:
            raise QueueConfigurationError(
                "a list of Redis URLs needs the option cluster=true (they are then a Redis Cluster's startup nodes); "
                f"for Redis Sentinel use one URL of the form {SENTINEL_FORM}"
            )
        return RedisTarget("server", url)
    nodes: list[tuple[str, int]] = []
    for node in urls:
        if scheme_of(node) not in ("redis", "rediss"):
            raise QueueConfigurationError(
                "with cluster=true every URL must be redis:// or rediss:// of a cluster node (no unix:// socket)"
            )
        parts = urlsplit(node)
        if parts.path.strip("/") not in ("", "0"):
            raise QueueConfigurationError("Redis Cluster has database 0 only: drop the /<db> from the URL")
        nodes.append((parts.hostname or "127.0.0.1", parts.port or 6379))
    return RedisTarget("cluster", urls[0], startup_nodes=tuple(nodes[1:]))


def _sentinel(url: str, scheme: str) -> RedisTarget:
    _, userinfo, rest = split_userinfo(url)
    authority, _, path = rest.partition("/")
    path, _, query = path.partition("?")
    if query:
        raise QueueConfigurationError(f"a Redis Sentinel URL takes no ?query: {SENTINEL_FORM}")
    sentinels: list[tuple[str, int]] = []
    for host in authority.split(","):
        parts = urlsplit(f"//{host}")
        try:
            port = parts.port or SENTINEL_PORT
        except ValueError:
            port = -1
        if not parts.hostname or port < 0:
            raise QueueConfigurationError(f"every sentinel must be host:port, comma-separated: {SENTINEL_FORM}")
        sentinels.append((parts.hostname, port))
    segments = [unquote(segment) for segment in path.split("/")]
    if not segments[0] or len(segments) > 2 or (len(segments) == 2 and not segments[1].isdigit()):
        raise QueueConfigurationError(f"a Redis Sentinel URL names its master, then optionally a db: {SENTINEL_FORM}")
    username = password = None
    if userinfo is not None:
        user, colon, secret = userinfo.partition(":")
        username, password = (unquote(user) or None, unquote(secret)) if colon else (None, unquote(user))
    return RedisTarget(
        "sentinel",
        url,
        sentinels=tuple(sentinels),
        master_name=segments[0],
        db=int(segments[1]) if len(segments) == 2 else 0,
        username=username,
        password=password,
        ssl=scheme.startswith("rediss"),
    )


def target_problem(url: str, cluster: bool) -> str | None:
    """Why this URL cannot work (for the settings check at boot), or None."""
    try:
        target_of(url, cluster)
    except QueueConfigurationError as error:
        return str(error)
    return None


def sentinel_pool(target: RedisTarget, max_connections: int | None, **connection: Any) -> SentinelConnectionPool:
    """A pool whose connections go to the master the sentinels name now (redis-py re-asks after a failover)."""
    from redis.asyncio.sentinel import Sentinel

    wait = connection.get("socket_connect_timeout", 5.0)
    asking = {"socket_connect_timeout": wait, "socket_timeout": wait}
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=asking)  # type: ignore[no-untyped-call]
    options: dict[str, Any] = {
        **connection,
        "db": target.db,
        "username": target.username,
        "password": target.password,
        "ssl": target.ssl,
    }
    if max_connections is not None:
        options["max_connections"] = max_connections
    return _closing_pool()(target.master_name, sentinel, **options)  # type: ignore[no-any-return]


@cache
def _closing_pool() -> type[SentinelConnectionPool]:
    """redis-py's sentinel pool, except that closing it also closes its connections to the sentinels (redis-py
    leaves them open: every health probe would leave its sentinel sockets behind)."""
    from redis.asyncio.sentinel import SentinelConnectionPool

    class ClosingSentinelPool(SentinelConnectionPool):
        async def disconnect(self, inuse_connections: bool = True) -> None:
            await super().disconnect(inuse_connections)
            for client in self.sentinel_manager.sentinels:
                await client.aclose()

    return ClosingSentinelPool


def cluster_client(target: RedisTarget, max_connections: int | None, **connection: Any) -> RedisCluster:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    options = dict(connection)
    if max_connections is not None:
        options["max_connections"] = max_connections
    nodes = [ClusterNode(host, port) for host, port in target.startup_nodes]
    return RedisCluster.from_url(target.url, startup_nodes=nodes or None, **options)


def client_for(target: RedisTarget, pool: Any, max_connections: int | None, **connection: Any) -> Any:
    """The client a broker or result store sends with: on ``pool`` (a plain or sentinel pool), or a cluster client."""
    from redis.asyncio import Redis

    if target.cluster:
        return cluster_client(target, max_connections, **connection)
    return Redis(connection_pool=pool)


def standalone_client(target: RedisTarget, **connection: Any) -> Any:
    """A client of its own (a ping, a health check, a failed-jobs store): closing it closes its pool."""
    from redis.asyncio import Redis

    if target.cluster:
        return cluster_client(target, None, **connection)
    if target.kind == "sentinel":
        return Redis.from_pool(sentinel_pool(target, None, **connection))
    return Redis.from_url(target.url, **connection)


def tagged(prefix: str, queue: str, cluster: bool) -> str:
    """A queue's key: ``queues:default``, or in a cluster ``queues:{default}`` so its keys share one slot."""
    return f"{prefix}{{{queue}}}" if cluster else f"{prefix}{queue}"
