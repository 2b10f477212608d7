"""Results in a NATS JetStream key-value bucket: one publish per result, kept ``result_ttl`` seconds.

taskiq-nats stores results in an object store, where a write costs several round trips (a lookup,
a chunk, the metadata) and nothing ever expires: the bucket grows with every job. A key-value
bucket with a TTL stores a result in one acknowledged publish, reads it with one request, and lets
the server drop it when it is old, as the Redis and RabbitMQ drivers do. Stored as JSON. In a JetStream
cluster the bucket is kept on ``replicas`` servers.
"""

from __future__ import annotations

from typing import Any, TypeVar

from nats.aio.client import Client
from nats.js.errors import APIError, BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue
from taskiq import AsyncResultBackend
from taskiq.depends.progress_tracker import TaskProgress
from taskiq.result import TaskiqResult
from taskiq.serializers import JSONSerializer

from drivers.base.errors import ResultBackendNotStartedError, ResultMissingError
from drivers.nats.client import connect
from drivers.nats.replicas import about_replicas, match_replicas, refused

ReturnType = TypeVar("ReturnType")
PROGRESS_SUFFIX = ".progress"


class NatsResults(AsyncResultBackend[ReturnType]):
    def __init__(
        self,
        servers: str | list[str],
        bucket: str,
        ttl: float,
        replicas: int | None = None,
        replicas_setting: str = "replicas",
        **connect_options: Any,
    ) -> None:
        self.servers = servers
        self.bucket = bucket
        self.ttl = ttl
        self.replicas = replicas
        self.replicas_setting = replicas_setting
        self.connect_options = connect_options
        self.serializer = JSONSerializer()
        self.client: Client | None = None
        self._kv: KeyValue | None = None

    async def startup(self) -> None:
        self.client = await connect(self.servers, **self.connect_options)
        try:
            self._kv = await open_bucket(
                self.client.jetstream(), self.bucket, self.replicas, self.replicas_setting, ttl=self.ttl
            )
        except BaseException:  # e.g. replicas refused: a startup tried again must not leave this client open
            await self.shutdown()
            raise

    async def shutdown(self) -> None:
        if self.client is not None and not self.client.is_closed:
            await self.client.close()
        self.client = self._kv = None

    @property
    def kv(self) -> KeyValue:
        if self._kv is None:
            raise ResultBackendNotStartedError
        return self._kv

    async def _read(self, key: str) -> bytes | None:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:  # also a deleted or expired key
            return None
        return entry.value

    async def set_result(self, task_id: str, result: TaskiqResult[ReturnType]) -> None:
        await self.kv.put(task_id, self.serializer.dumpb(result.model_dump(mode="json")))

    async def is_result_ready(self, task_id: str) -> bool:
        return await self._read(task_id) is not None

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[ReturnType]:
        value = await self._read(task_id)
        if value is None:
            raise ResultMissingError(task_id=task_id)
        result = TaskiqResult[ReturnType].model_validate(self.serializer.loadb(value))
        if not with_logs:
            result.log = None
        return result

    async def set_progress(self, task_id: str, progress: TaskProgress[ReturnType]) -> None:
        await self.kv.put(task_id + PROGRESS_SUFFIX, self.serializer.dumpb(progress.model_dump(mode="json")))

    async def get_progress(self, task_id: str) -> TaskProgress[ReturnType] | None:
        value = await self._read(task_id + PROGRESS_SUFFIX)
        return None if value is None else TaskProgress[ReturnType].model_validate(self.serializer.loadb(value))


async def open_bucket(js: Any, bucket: str, replicas: int | None, setting: str, ttl: float | None = None) -> KeyValue:
    """The bucket, made (history 1, ``ttl``, ``replicas`` or 1) if missing; an existing one gets ``replicas``
    when it is set."""
    what = f"key-value bucket '{bucket}'"
    try:
        kv: KeyValue = await js.key_value(bucket)
    except BucketNotFoundError:
        try:
            created: KeyValue = await js.create_key_value(bucket=bucket, ttl=ttl, history=1, replicas=replicas or 1)
        except APIError as error:
            if replicas is not None and replicas > 1 and about_replicas(error):
                raise refused(f"the {what}", replicas, error, setting) from None
            raise
        return created
    await match_replicas(js, f"KV_{bucket}", replicas, what, setting)
    return kv
