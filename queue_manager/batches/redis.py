"""Batches in Redis, for apps without a database.

Keys: ``<prefix>:<id>`` (a hash: the batch's fields and its three counts), ``<prefix>:<id>:jobs`` (a hash, job id
-> outcome), ``<prefix>:index`` (id -> created_at, newest first in listings) and ``<prefix>:claim:<key>`` (a
callback's or chain link's owner, expiring after ``CLAIM_TTL``, deleted by ``prune`` once older than its longest
window). Recording a job is one Lua script: the outcome is
set under its job id only if it is new (or a failed job now succeeded), the count moves only then, and the batch
moves to finished with ``HSETNX``, so the counts are exact under any number of workers and re-deliveries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from drivers.base.urls import host_port, mask_url
from queue_manager.batches.store import BatchRow, BatchStore, Outcome, Recorded, oldest, utc_now

MAX_CONNECTIONS = 20
POOL_TIMEOUT = 30.0
CLAIM_TTL = 30 * 86_400

# KEYS: the batch, its jobs. ARGV: job id, outcome, now. -> {new, finished_now} or false for an unknown batch.
RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local before = redis.call('HGET', KEYS[2], ARGV[1])
local new = 0
if not before then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
  new = 1
elseif before == 'f' and ARGV[2] == 'd' then
  redis.call('HSET', KEYS[2], ARGV[1], 'd')
  redis.call('HINCRBY', KEYS[1], 'f', -1)
  redis.call('HINCRBY', KEYS[1], 'd', 1)
end
local v = redis.call('HMGET', KEYS[1], 'total', 'd', 'f', 's')
local pending = tonumber(v[1] or '0') - tonumber(v[2] or '0') - tonumber(v[3] or '0') - tonumber(v[4] or '0')
local finished_now = 0
if pending <= 0 and redis.call('HSETNX', KEYS[1], 'finished', ARGV[3]) == 1 then finished_now = 1 end
return {new, finished_now}
"""
# KEYS: the batch, its jobs. ARGV: how many failed job ids, they, then skipped job ids. Those are pending again.
FORGET = """
local failed = tonumber(ARGV[1])
for i = 2, #ARGV do
  local state = 's'
  if i <= failed + 1 then state = 'f' end
  if redis.call('HGET', KEYS[2], ARGV[i]) == state then
    redis.call('HDEL', KEYS[2], ARGV[i])
    redis.call('HINCRBY', KEYS[1], state, -1)
  end
end
redis.call('HDEL', KEYS[1], 'finished')
return 1
"""
# KEYS: the batch. ARGV: count.
ADD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'total', ARGV[1])
redis.call('HDEL', KEYS[1], 'finished')
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _when(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(_text(value)), UTC)


class RedisBatchStore(BatchStore):
    def __init__(self, url: str, prefix: str = "queues:batches") -> None:
        self.url = url
        self.prefix = prefix
        self.index = f"{prefix}:index"
        self._client: Redis | None = None

    @property
    def client(self) -> Redis:
        if self._client is None:
            pool = BlockingConnectionPool.from_url(self.url, max_connections=MAX_CONNECTIONS, timeout=POOL_TIMEOUT)
            self._client = Redis.from_pool(pool)
        return self._client

    @property
    def where(self) -> str:
        return f"Redis at {host_port(self.url, 6379)} ({mask_url(self.url)}), prefix {self.prefix}"

    def key(self, id: str) -> str:
        return f"{self.prefix}:{id}"

    def jobs_key(self, id: str) -> str:
        return f"{self.prefix}:{id}:jobs"

    def claim_key(self, key: str) -> str:
        return f"{self.prefix}:claim:{key}"

    async def create(self, row: BatchRow) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(
                self.key(row.id),
                mapping={
                    "name": row.name,
                    "total": row.total_jobs,
                    "created": row.created_at.timestamp(),
                    "options": json.dumps(row.options),
                    **({"finished": row.finished_at.timestamp()} if row.finished_at is not None else {}),
                },
            )
            pipe.zadd(self.index, {row.id: row.created_at.timestamp()})
            await pipe.execute()

    async def add_jobs(self, id: str, count: int) -> None:
        await self.client.eval(ADD, 1, self.key(id), count)  # type: ignore[misc]

    async def record(self, id: str, job_id: str, outcome: Outcome) -> Recorded | None:
        now = utc_now()
        answer = await self.client.eval(  # type: ignore[misc]
            RECORD, 2, self.key(id), self.jobs_key(id), job_id, outcome, str(now.timestamp())
        )
        if not answer:
            return None
        row = await self.find(id, with_failed_ids=False)
        if row is None:
            return None
        return Recorded(row, bool(int(answer[1])), bool(int(answer[0])))

    def _row(self, id: str, fields: dict[Any, Any]) -> BatchRow:
        values = {_text(key): value for key, value in fields.items()}
        created = _when(values.get("created"))
        return BatchRow(
            id=id,
            name=_text(values.get("name", "")),
            total_jobs=int(_text(values.get("total", 0))),
            options=json.loads(_text(values.get("options", "{}"))),
            created_at=created or utc_now(),
            done=int(_text(values.get("d", 0))),
            failed=int(_text(values.get("f", 0))),
            skipped=int(_text(values.get("s", 0))),
            cancelled_at=_when(values.get("cancelled")),
            finished_at=_when(values.get("finished")),
        )

    async def find(self, id: str, with_failed_ids: bool = True) -> BatchRow | None:
        fields = await self.client.hgetall(self.key(id))  # type: ignore[misc]
        if not fields:
            return None
        row = self._row(id, fields)
        if with_failed_ids and row.failed:
            jobs = await self.client.hgetall(self.jobs_key(id))  # type: ignore[misc]
            row.failed_job_ids = [_text(job) for job, state in jobs.items() if _text(state) == "f"]
        return row

    async def all(self, limit: int = 50) -> list[BatchRow]:
        ids = [_text(id) for id in await self.client.zrevrange(self.index, 0, max(0, limit - 1))]
        async with self.client.pipeline(transaction=False) as pipe:
            for id in ids:
                pipe.hgetall(self.key(id))
            found = await pipe.execute()
        return [self._row(id, fields) for id, fields in zip(ids, found, strict=True) if fields]

    async def cancel(self, id: str) -> bool:
        if not await self.client.exists(self.key(id)):
            return False
        return bool(await self.client.hsetnx(self.key(id), "cancelled", str(utc_now().timestamp())))  # type: ignore[misc]

    async def resume(self, id: str) -> bool:
        return bool(await self.client.hdel(self.key(id), "cancelled"))  # type: ignore[misc]

    async def forget_failures(self, id: str, job_ids: list[str], skipped: Sequence[str] = ()) -> None:
        await self.client.eval(  # type: ignore[misc]
            FORGET, 2, self.key(id), self.jobs_key(id), len(job_ids), *job_ids, *skipped
        )
        await self.client.delete(self.claim_key(f"batch:{id}:finish:sent"))  # so the batch finishes again

    async def claim(self, key: str, owner: str) -> bool:
        await self.client.set(self.claim_key(key), owner, nx=True, ex=CLAIM_TTL)
        return await self.owner(key) == owner

    async def owner(self, key: str) -> str | None:
        value = await self.client.get(self.claim_key(key))
        return None if value is None else _text(value)

    async def prune(self, finished_before: datetime, unfinished_before: datetime, cancelled_before: datetime) -> int:
        gone = 0
        for row in await self.all(limit=1_000_000):
            if (
                (row.finished_at is not None and row.finished_at < finished_before)
                or (row.finished_at is None and row.created_at < unfinished_before)
                or (row.cancelled_at is not None and row.cancelled_at < cancelled_before)
            ):
                await self.delete(row.id)
                gone += 1
        await self._prune_claims(oldest(finished_before, unfinished_before, cancelled_before))
        return gone

    async def _prune_claims(self, cutoff: datetime) -> None:
        """Chains' claims (a batch's go with the batch); a claim's age is what its TTL has run down (each is set
        with ``CLAIM_TTL``); one without a TTL stays."""
        window_ms = (utc_now() - cutoff).total_seconds() * 1000
        keys = [key async for key in self.client.scan_iter(match=self.claim_key("chain:*"), count=500)]
        for first in range(0, len(keys), 500):
            chunk = keys[first : first + 500]
            async with self.client.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.pttl(key)
                left = await pipe.execute()
            old = [key for key, ms in zip(chunk, left, strict=True) if ms > 0 and CLAIM_TTL * 1000 - ms > window_ms]
            if old:
                await self.client.delete(*old)

    async def delete(self, id: str) -> None:
        claims = [key async for key in self.client.scan_iter(match=self.claim_key(f"batch:{id}:*"), count=500)]
        await self.client.delete(self.key(id), self.jobs_key(id), *claims)
        await self.client.zrem(self.index, id)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
