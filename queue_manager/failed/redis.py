"""Failed jobs in Redis, for apps without a database: one JSON key per job plus a sorted set by failed_at.

Keys: ``<prefix>:<id>`` (the job, ``FailedJob.to_dict`` as JSON) and ``<prefix>:index`` (id -> failed_at as a
Unix timestamp). The bare prefix is never a key, so the list driver's queue named ``failed`` (``queues:failed``)
cannot collide with the default prefix. A job and its index entry are written and removed in one MULTI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from queue_manager.failed.record import FailedJob
from queue_manager.failed.store import FailedJobStore

BATCH = 500  # ids per MGET / DEL round trip
MAX_CONNECTIONS = 20
POOL_TIMEOUT = 30.0  # seconds a caller waits for a free connection
_GLOB = re.compile(r"([\\*?\[\]])")


def _ids(members: Iterable[Any]) -> list[str]:
    return [member.decode() if isinstance(member, bytes) else str(member) for member in members]


class RedisStore(FailedJobStore):
    def __init__(self, url: str, prefix: str = "queues:failed") -> None:
        self.url = url
        self.prefix = prefix
        self.index = f"{prefix}:index"
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

    def key(self, id: str) -> str:
        return f"{self.prefix}:{id}"

    async def log(self, job: FailedJob) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.key(job.id), json.dumps(job.to_dict()))
            pipe.zadd(self.index, {job.id: job.failed_at.timestamp()})
            await pipe.execute()

    async def all(
        self, connection: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> list[FailedJob]:
        if limit is not None and limit <= 0:
            return []
        unfiltered = connection is None and queue is None
        stop = limit - 1 if unfiltered and limit is not None else -1  # a filter reads on until it has enough
        ids = _ids(await self.client.zrevrange(self.index, 0, stop))
        jobs: list[FailedJob] = []
        for start in range(0, len(ids), BATCH):
            for value in await self.client.mget([self.key(id) for id in ids[start : start + BATCH]]):
                if value is None:  # forgotten between the two reads
                    continue
                job = FailedJob.from_dict(json.loads(value))
                if (connection is None or job.connection == connection) and (queue is None or job.queue == queue):
                    jobs.append(job)
                    if limit is not None and len(jobs) >= limit:
                        return jobs
        return jobs

    async def count(self, connection: str | None = None, queue: str | None = None) -> int:
        if connection is None and queue is None:
            return int(await self.client.zcard(self.index))
        return len(await self.all(connection, queue))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def get(self, id: str) -> FailedJob | None:
        value = await self.client.get(self.key(id))
        return None if value is None else FailedJob.from_dict(json.loads(value))

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
            pipe.delete(*[self.key(id) for id in ids])
            pipe.zrem(self.index, *ids)
            _deleted, removed = await pipe.execute()
        return int(removed)
