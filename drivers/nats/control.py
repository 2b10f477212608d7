"""The NATS broker's control state (``base.control``): a key-value bucket beside the connection's stream
(``<stream>_control``), and counters in a bucket of their own whose entries expire, both made on first use."""

from __future__ import annotations

import re
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from drivers.base.control import ControlState
from drivers.nats.results import open_bucket


def nats_key(name: str) -> str:
    """A key-value key may hold letters, digits and ``-/_=.``: anything else is written as ``_<hex>``."""
    return re.sub(r"[^-/=.a-zA-Z0-9]", lambda found: f"_{ord(found.group()):02x}", name)


class NatsControl(ControlState):
    METRICS_TTL = 3600.0  # counters live in a bucket of their own, whose entries expire

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.bucket = f"{broker.options.stream}_control"
        self._kv: dict[bool, Any] = {}

    async def _store(self, metrics: bool = False) -> Any:
        if metrics not in self._kv:
            bucket = f"{self.bucket}_metrics" if metrics else self.bucket
            ttl = self.METRICS_TTL if metrics else None
            replicas = self.broker.options.replicas
            setting = self.broker.spec.setting("options", "replicas")
            self._kv[metrics] = await open_bucket(self.broker.js, bucket, replicas, setting, ttl=ttl)
        return self._kv[metrics]

    async def get(self, name: str) -> str | None:
        try:
            entry = await (await self._store()).get(nats_key(name))
        except KeyNotFoundError:  # also a deleted key
            return None
        return entry.value.decode() if entry.value is not None else None

    async def set(self, name: str, value: str) -> None:
        await (await self._store()).put(nats_key(name), value.encode())

    async def delete(self, name: str) -> None:
        await (await self._store()).delete(nats_key(name))

    async def add(self, name: str, amount: int, ttl: int) -> None:
        """Read, add, write back only if nobody wrote meanwhile (the key's revision), else again."""
        store, key = await self._store(metrics=True), nats_key(name)
        for _ in range(20):
            try:
                entry = await store.get(key)
            except KeyNotFoundError:
                try:
                    await store.create(key, str(amount).encode())
                    return
                except KeyWrongLastSequenceError:
                    continue
            try:
                await store.update(key, str(int(entry.value or b"0") + amount).encode(), last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue

    async def counters(self, names: list[str]) -> list[int] | None:
        store, values = await self._store(metrics=True), []
        for name in names:
            try:
                values.append(int((await store.get(nats_key(name))).value or b"0"))
            except KeyNotFoundError:
                values.append(0)
        return values
