"""Failed jobs in Redis, for apps without a database: one JSON key per job, an index by failed_at, and the
short fields a listing shows.

Keys: ``<prefix>:<id>`` (the job, ``FailedJob.to_dict`` as JSON), ``<prefix>:index`` (id -> failed_at as a
Unix timestamp), ``<prefix>:summaries`` (a hash, id -> ``FailedJob.to_summary_fields`` as JSON, so a listing
never reads a whole job) and ``<prefix>:claim:<id>`` (a retry's token while it sends the job, with the
lease as its expiry). Ids are checked to be uuids before they reach a key (``store.check_id``), and every
other key ends in a word that is not hexadecimal, so no id names another key. The bare prefix is never a key,
so the list driver's queue named ``failed`` (``queues:failed``) cannot collide with the default prefix. A job,
its index entry and its summary are written and removed in one MULTI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from drivers.base.urls import host_port, mask_url
from queue_manager.failed.record import FailedJob
from queue_manager.failed.store import FailedJobStore
from queue_manager.failed.summary import FailedJobSummary

BATCH = 500  # ids per MGET / HMGET / DEL round trip
MAX_CONNECTIONS = 20
POOL_TIMEOUT = 30.0  # seconds a caller waits for a free connection
DEFAULT_PORT = 6379
_GLOB = re.compile(r"([\\*?\[\]])")

# KEYS: the job, its claim. ARGV: token, lease (ms). The job, if it exists and nobody holds it.
CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""
# KEYS: the claim. ARGV: token. Only its holder gives it back.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Listed(Protocol):
    @property
    def connection(self) -> str: ...

    @property
    def queue(self) -> str: ...


R = TypeVar("R", bound=Listed)


def _ids(members: Iterable[Any]) -> list[str]:
    return [member.decode() if isinstance(member, bytes) else str(member) for member in members]


class RedisStore(FailedJobStore):
    def __init__(self, url: str, prefix: str = "queues:failed") -> None:
        self.url = url
        self.prefix = prefix
        self.index = f"{prefix}:index"
        self.summary_key = f"{prefix}:summaries"
        self._client: Redis | None = None

    @property
    def client(self) -> Redis:
        """Built on first use; redis-py connects on the first command.

        A blocking pool: when many jobs of one worker fail at once, recording waits for a connection
        instead of failing with redis-py's "Too many connections".
        """
        if self._client is None:
            pool = BlockingConnectionPool.from_url(self.url, max_connections=MAX_CONNECTIONS, timeout=POOL_TIMEOUT)
            self._client = Redis.from_pool(pool)  # owns the pool: aclose() disconnects it
        return self._client

    @property
    def where(self) -> str:
        return f"Redis at {host_port(self.url, DEFAULT_PORT)} ({mask_url(self.url)}), prefix {self.prefix}"

    @property
    def secret_url(self) -> str:
        return self.url

    @property
    def identity(self) -> str:
        return f"{self.url}#{self.prefix}"

    def unreachable(self, error: BaseException) -> bool:
        return super().unreachable(error) or isinstance(error, RedisConnectionError | RedisTimeoutError)

    def key(self, id: str) -> str:
        return f"{self.prefix}:{id}"

    def claim_key(self, id: str) -> str:
        return f"{self.prefix}:claim:{id}"

    async def log(self, job: FailedJob) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.key(job.id), json.dumps(job.to_dict()))
            pipe.zadd(self.index, {job.id: job.failed_at.timestamp()})
            pipe.hset(self.summary_key, job.id, json.dumps(job.to_summary_fields()))
            await pipe.execute()

    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        return await self._newest(self._jobs, connection, queue, limit)

    async def summaries(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJobSummary]:
        return await self._newest(self._summaries, connection, queue, limit)

    async def _newest(
        self,
        read: Callable[[list[str]], Awaitable[list[R | None]]],
        connection: str | None,
        queue: str | None,
        limit: int | None,
    ) -> list[R]:
        """What ``read`` gives for the ids in the index, newest first, of this connection and queue."""
        if limit is not None and limit <= 0:
            return []
        unfiltered = connection is None and queue is None
        stop = limit - 1 if unfiltered and limit is not None else -1  # a filter reads on until it has enough
        ids = _ids(await self.client.zrevrange(self.index, 0, stop))
        found: list[R] = []
        for start in range(0, len(ids), BATCH):
            for each in await read(ids[start : start + BATCH]):
                if each is None:  # forgotten between the two reads
                    continue
                if (connection is None or each.connection == connection) and (queue is None or each.queue == queue):
                    found.append(each)
                    if limit is not None and len(found) >= limit:
                        return found
        return found

    async def _jobs(self, ids: list[str]) -> list[FailedJob | None]:
        values = await self.client.mget([self.key(id) for id in ids])
        return [None if value is None else FailedJob.from_dict(json.loads(value)) for value in values]

    async def _summaries(self, ids: list[str]) -> list[FailedJobSummary | None]:
        values = await self.client.hmget(self.summary_key, ids)
        return [
            FailedJobSummary.read(json.loads(value)) if value is not None else await self._summarize(id)
            for id, value in zip(ids, values, strict=True)
        ]

    async def _summarize(self, id: str) -> FailedJobSummary | None:
        """A job recorded by an older version has no summary: read it once and write its summary."""
        job = await self.get(id)
        if job is None:
            return None
        await self.client.hset(self.summary_key, id, json.dumps(job.to_summary_fields()))
        return FailedJobSummary.of(job)

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        if connection is None and queue is None:
            return int(await self.client.zcard(self.index))
        return len(await self.summaries(connection, queue))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def get(self, id: str) -> FailedJob | None:
        value = await self.client.get(self.key(id))
        return None if value is None else FailedJob.from_dict(json.loads(value))

    async def has(self, id: str) -> bool:
        return await self.client.zscore(self.index, id) is not None

    async def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        found: dict[str, None] = {}  # ZSCAN may return a member twice
        async for member, _score in self.client.zscan_iter(self.index, match=_GLOB.sub(r"\\\1", prefix) + "*"):
            found[_ids([member])[0]] = None
            if len(found) >= limit:
                break
        return list(found)

    async def remove(self, id: str) -> bool:
        return await self._remove([id]) > 0

    async def delete_before(self, before: datetime | None) -> int:
        if before is None:
            members = await self.client.zrange(self.index, 0, -1)
        else:  # "(": strictly before
            members = await self.client.zrangebyscore(self.index, "-inf", f"({before.timestamp()!r}")
        ids = _ids(members)
        return sum([await self._remove(ids[start : start + BATCH]) for start in range(0, len(ids), BATCH)])

    async def _remove(self, ids: list[str]) -> int:
        if not ids:
            return 0
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(*[self.key(id) for id in ids], *[self.claim_key(id) for id in ids])
            pipe.zrem(self.index, *ids)
            pipe.hdel(self.summary_key, *ids)
            _deleted, removed, _summaries = await pipe.execute()
        return int(removed)

    async def claim(self, id: str, token: str, lease: float) -> FailedJob | None:
        keys = [self.key(id), self.claim_key(id)]
        value = await self.client.eval(CLAIM, 2, *keys, token, max(1, int(lease * 1000)))  # type: ignore[no-untyped-call]
        return None if value is None else FailedJob.from_dict(json.loads(value))

    async def release(self, id: str, token: str) -> None:
        await self.client.eval(RELEASE, 1, self.claim_key(id), token)  # type: ignore[no-untyped-call]
