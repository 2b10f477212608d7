"""The NATS broker's control state (``base.control``): a key-value bucket beside the connection's stream
(``<stream>_control``), and counters and claims in buckets of their own whose entries expire, all made on first
use."""

from __future__ import annotations

import re
import time
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from drivers.base.control import MAX_CLAIM_TTL, ControlState
from drivers.nats.results import open_bucket

_ESCAPED = re.compile(r"[^-/=a-zA-Z0-9]+")


def nats_key(name: str) -> str:
    """A key-value key may hold letters, digits and ``-/_=.``: anything else is written ``_xx``, one per UTF-8 byte,
    and so are ``_`` (two names never share a key: U+3ABC was ``_3abc``, as ``:bc`` was) and ``.`` (no key has an
    empty token)."""
    return _ESCAPED.sub(lambda found: "".join(f"_{byte:02x}" for byte in found.group().encode()), name)


class NatsControl(ControlState):
    METRICS_TTL = 3600.0  # counters live in a bucket of their own, whose entries expire
    METRICS, CLAIMS = "_metrics", "_claims"  # the buckets' suffixes; claims expire after MAX_CLAIM_TTL

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.bucket = f"{broker.options.stream}_control"
        self._kv: dict[str, Any] = {}

    async def _store(self, suffix: str = "") -> Any:
        if suffix not in self._kv:
            ttl = {self.METRICS: self.METRICS_TTL, self.CLAIMS: float(MAX_CLAIM_TTL)}.get(suffix)
            replicas = self.broker.options.replicas
            setting = self.broker.spec.setting("options", "replicas")
            self._kv[suffix] = await open_bucket(self.broker.js, self.bucket + suffix, replicas, setting, ttl=ttl)
        return self._kv[suffix]

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
        store, key = await self._store(self.METRICS), nats_key(name)
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

    async def claim(self, name: str, ttl: int) -> bool:
        """Create the key (JetStream refuses a second create); one that is there but whose time has passed (its
        value) is taken over only if nobody wrote it meanwhile (its revision). The bucket's own expiry tidies up."""
        store, key, until = await self._store(self.CLAIMS), nats_key(name), time.time() + ttl
        try:
            await store.create(key, str(until).encode())
            return True
        except KeyWrongLastSequenceError:
            pass
        try:
            entry = await store.get(key)
        except KeyNotFoundError:
            return False
        if float(entry.value or b"0") > time.time():
            return False
        try:
            await store.update(key, str(until).encode(), last=entry.revision)
        except KeyWrongLastSequenceError:
            return False
        return True

    async def counters(self, names: list[str]) -> list[int] | None:
        store, values = await self._store(self.METRICS), []
        for name in names:
            try:
                values.append(int((await store.get(nats_key(name))).value or b"0"))
            except KeyNotFoundError:
                values.append(0)
        return values
