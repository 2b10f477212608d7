"""Results in Redis for the list and stream drivers: taskiq-redis's backend with one kept client.

``RedisAsyncResultBackend`` builds a new ``Redis`` client object for every result it writes or
reads; building one costs about as much as the write itself (a profile of a worker put it at a
tenth of the worker's time). Here one client (still on the backend's pool) serves every call.
Keys, values (JSON) and expiry are the same as taskiq-redis's, so either can read the other's.

In a worker, results go out batched (``batch.RedisBatcher``): with the job's acknowledgement
when the broker is a Redis one, else in batches of their own that each job waits for. On Sentinel the pool
is redis-py's sentinel pool; on a cluster the client is a ``RedisCluster`` (``target``).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, TypeVar, cast

from redis.asyncio import Redis
from taskiq.depends.progress_tracker import TaskProgress
from taskiq.result import TaskiqResult
from taskiq_redis import RedisAsyncResultBackend
from taskiq_redis.exceptions import ResultIsMissingError
from taskiq_redis.redis_backend import PROGRESS_KEY_SUFFIX

from drivers.redis.batch import RedisBatcher
from drivers.redis.target import RedisTarget, client_for, sentinel_pool

ReturnType = TypeVar("ReturnType")


class RedisResults(RedisAsyncResultBackend[ReturnType]):
    batcher: RedisBatcher | None = None
    write_behind = False  # queued with the broker's acknowledgements, which are written after it
    target = RedisTarget("server", "")
    max_connections: int | None = None
    connection: dict[str, Any] = {}

    def use(self, target: RedisTarget, max_connections: int | None, connection: dict[str, Any]) -> None:
        """Store on ``target``'s servers (see ``RedisSending.use_target``)."""
        self.target, self.max_connections, self.connection = target, max_connections, connection
        if target.kind == "sentinel":
            self.redis_pool = sentinel_pool(target, max_connections, **connection)  # type: ignore[assignment]

    @cached_property
    def client(self) -> Redis:
        return client_for(self.target, self.redis_pool, self.max_connections, **self.connection)  # type: ignore[no-any-return]

    async def shutdown(self) -> None:
        if self.target.cluster and "client" in self.__dict__:
            await self.client.aclose()
        await super().shutdown()

    async def _store(self, key: str, value: Any) -> None:
        payload = self.serializer.dumpb(value.model_dump(mode="json"))
        await self.client.set(key, payload, ex=self.result_ex_time, px=self.result_px_time)

    async def set_result(self, task_id: str, result: TaskiqResult[ReturnType]) -> None:
        key = self._task_name(task_id)
        if self.batcher is None:
            await self._store(key, result)
            return
        payload = self.serializer.dumpb(result.model_dump(mode="json"))
        ex, px = self.result_ex_time, self.result_px_time
        if self.write_behind:
            self.batcher.add_behind(
                lambda pipe: pipe.set(key, payload, ex=ex, px=px), f"the result of job {task_id}", result=True
            )
        else:
            await self.batcher.add(lambda pipe: pipe.set(key, payload, ex=ex, px=px), result=True)

    async def is_result_ready(self, task_id: str) -> bool:
        return bool(await self.client.exists(self._task_name(task_id)))

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[ReturnType]:
        key = self._task_name(task_id)
        value = await (self.client.get(key) if self.keep_results else self.client.getdel(key))
        if value is None:
            raise ResultIsMissingError
        result = TaskiqResult[ReturnType].model_validate(self.serializer.loadb(cast(bytes, value)))
        if not with_logs:
            result.log = None
        return result

    async def set_progress(self, task_id: str, progress: TaskProgress[ReturnType]) -> None:
        await self._store(self._task_name(task_id) + PROGRESS_KEY_SUFFIX, progress)

    async def get_progress(self, task_id: str) -> TaskProgress[ReturnType] | None:
        value = await self.client.get(self._task_name(task_id) + PROGRESS_KEY_SUFFIX)
        if value is None:
            return None
        return TaskProgress[ReturnType].model_validate(self.serializer.loadb(cast(bytes, value)))
