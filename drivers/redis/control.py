"""The Redis brokers' control state (``base.control``): plain keys beside the queues, counters that expire.

A value's key is ``<prefix>control <name>`` (``queues:control paused:emails``): a queue's keys are ``<prefix><queue>``
and a queue name may hold ``:`` but no space (``base.names.CONTROL_MARK``), so no queue can be named like a control
value. (They were ``<prefix>control:<name>``: ``queue:pause redis:foo`` overwrote the queue ``control:paused:foo``.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from drivers.base.control import ControlState, Entry, Pushed
from drivers.base.names import CONTROL_MARK
from drivers.redis import lua


class RedisControl(ControlState):
    keeps_insight = True

    def __init__(self, redis: Any, prefix: str, cluster: bool) -> None:
        self.redis = redis
        self.prefix = f"{prefix}control{CONTROL_MARK}"
        self.cluster = cluster

    async def get(self, name: str) -> str | None:
        value = await self.redis.get(self.prefix + name)
        return value.decode() if isinstance(value, bytes) else value

    async def set(self, name: str, value: str) -> None:
        await self.redis.set(self.prefix + name, value)

    async def delete(self, name: str) -> None:
        await self.redis.delete(self.prefix + name)

    async def add(self, name: str, amount: int, ttl: int) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(self.prefix + name, amount)
            pipe.expire(self.prefix + name, ttl, nx=True)
            await pipe.execute()

    async def claim(self, name: str, ttl: int) -> bool:
        return bool(await self.redis.set(self.prefix + name, "1", nx=True, ex=ttl))

    async def lock(self, name: str, owner: str, ttl: float) -> bool:
        return bool(await self._script("lock")(keys=[self.prefix + name], args=[owner, max(1, int(ttl * 1000))]))

    async def unlock(self, name: str, owner: str) -> bool:
        return bool(await self._script("unlock")(keys=[self.prefix + name], args=[owner]))

    async def hit(self, name: str, limit: int, window: float) -> float:
        args = [max(1, int(window * 1000)), limit, uuid.uuid4().hex]
        return int(await self._script("hit")(keys=[self.prefix + name], args=args)) / 1000

    def _script(self, name: str) -> Any:
        """One Lua script, registered once per client (EVALSHA, loaded again if the server forgot it)."""
        scripts: dict[str, Any] = self.__dict__.setdefault("_scripts", {})
        if name not in scripts:
            scripts[name] = self.redis.register_script(lua.source(name))
        return scripts[name]

    async def counters(self, names: list[str]) -> list[int] | None:
        keys = [self.prefix + name for name in names]
        # A cluster refuses MGET across slots; redis-py's mget_nonatomic asks each slot's node and keeps the order.
        values = await (self.redis.mget_nonatomic(keys) if self.cluster else self.redis.mget(keys))
        return [int(value or 0) for value in values]

    async def write(self, writes: Sequence[Entry | Pushed]) -> None:
        """Insight: one pipeline (not a transaction: a cluster sends each slot's commands to its node)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for write in writes:
                key = self.prefix + write.name
                if isinstance(write, Entry):
                    pipe.hset(key, write.field, write.value)
                else:
                    pipe.lpush(key, *write.values)
                    pipe.ltrim(key, 0, write.cap - 1)
                pipe.expire(key, write.ttl)
            await pipe.execute()

    async def entries(self, names: list[str]) -> list[dict[str, str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.prefix + name)
            found = await pipe.execute()
        return [{_text(field): _text(value) for field, value in (each or {}).items()} for each in found]

    async def listed(self, name: str, count: int) -> list[str]:
        return [_text(value) for value in await self.redis.lrange(self.prefix + name, 0, count - 1)]

    async def forget(self, name: str, fields: list[str]) -> None:
        if fields:
            await self.redis.hdel(self.prefix + name, *fields)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
