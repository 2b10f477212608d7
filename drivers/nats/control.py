"""The NATS broker's control state (``base.control``): a key-value bucket beside the connection's stream
(``<stream>_control``), and counters and claims in buckets of their own whose entries expire, all made on first
use."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from drivers.base.control import MAX_CLAIM_TTL, ControlState, Entry, Pushed
from drivers.nats.job_state import NatsJobState
from drivers.nats.results import open_bucket

_ESCAPED = re.compile(r"[^-/=a-zA-Z0-9]+")


def nats_key(name: str) -> str:
    """A key-value key may hold letters, digits and ``-/_=.``: anything else is written ``_xx``, one per UTF-8 byte,
    and so are ``_`` (two names never share a key: U+3ABC was ``_3abc``, as ``:bc`` was) and ``.`` (no key has an
    empty token)."""
    return _ESCAPED.sub(lambda found: "".join(f"_{byte:02x}" for byte in found.group().encode()), name)


class NatsControl(ControlState):
    METRICS_TTL = 3600.0  # counters live in a bucket of their own, whose entries expire
    # Insight lives in buckets whose entries expire: a value goes to the first whose age limit covers its ttl. A map's
    # field is a key (``m.<map>.<field>``); a push is one key holding the pushed values (``l.<list>.<time><id>``),
    # and a list is read by watching its keys (one request), newest first, dropping the keys past its cap.
    INSIGHT_TIERS = (3900, 86_400, 604_800)
    keeps_insight = True
    METRICS, CLAIMS = "_metrics", "_claims"  # the buckets' suffixes; claims expire after MAX_CLAIM_TTL

    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.bucket = f"{broker.options.stream}_control"
        self._kv: dict[str, Any] = {}

    async def _store(self, suffix: str = "") -> Any:
        if suffix not in self._kv:
            ttl = {self.METRICS: self.METRICS_TTL, self.CLAIMS: float(MAX_CLAIM_TTL)}.get(suffix)
            if suffix.startswith("_insight"):
                ttl = float(suffix.removeprefix("_insight"))
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

    # -- job state (unique jobs, job middleware): drivers.nats.job_state ------------------------------------------
    async def _job_state(self) -> NatsJobState:
        if "_job_state_made" not in self.__dict__:
            # a connection that keeps another's job state (STATE=nats) may not be started in this process yet
            async with self.__dict__.setdefault("_starting", asyncio.Lock()):
                if not hasattr(self.broker, "js"):
                    await self.broker.startup()
            setting = self.broker.spec.setting("options", "replicas")
            replicas = self.broker.options.replicas
            self.__dict__["_job_state_made"] = NatsJobState(self.broker.js, self.bucket, replicas, setting)
        state: NatsJobState = self.__dict__["_job_state_made"]
        return state

    async def lock(self, name: str, owner: str, ttl: float) -> bool:
        return await (await self._job_state()).lock(nats_key(name), owner, ttl)

    async def unlock(self, name: str, owner: str) -> bool:
        return await (await self._job_state()).unlock(nats_key(name), owner)

    async def hit(self, name: str, limit: int, window: float) -> float:
        return await (await self._job_state()).hit(nats_key(name), limit, window)

    async def counters(self, names: list[str]) -> list[int] | None:
        store, values = await self._store(self.METRICS), []
        for name in names:
            try:
                values.append(int((await store.get(nats_key(name))).value or b"0"))
            except KeyNotFoundError:
                values.append(0)
        return values

    # -- insight ------------------------------------------------------------------------------------------------
    def _tier(self, ttl: int) -> str:
        return f"_insight{next((tier for tier in self.INSIGHT_TIERS if tier >= ttl), self.INSIGHT_TIERS[-1])}"

    async def write(self, writes: Sequence[Entry | Pushed]) -> None:
        """Every put at once (a JetStream publish each, awaited together: one round trip's wait). A process deletes
        its own pushes to a list once its newer ones hold the list's cap, so a list holds at most about a cap per
        writing process (and a read trims it to what it returns)."""
        puts = []
        pushed: dict[str, deque[tuple[Any, str, int]]] = self.__dict__.setdefault("_pushed", {})
        for write in writes:
            store = await self._store(self._tier(write.ttl))
            if isinstance(write, Entry):
                puts.append(store.put(f"m.{nats_key(write.name)}.{nats_key(write.field)}", write.value.encode()))
                continue
            key = f"l.{nats_key(write.name)}.{time.time_ns():020d}{uuid.uuid4().hex[:8]}"
            values = list(write.values[-write.cap :])
            puts.append(store.put(key, json.dumps(values).encode()))
            own = pushed.setdefault(write.name, deque())
            own.append((store, key, len(values)))
            held = sum(count for _store, _key, count in own)
            while len(own) > 1 and held - own[0][2] >= write.cap:
                old_store, old_key, count = own.popleft()
                held -= count
                puts.append(old_store.delete(old_key))
        await asyncio.gather(*puts)

    async def _watched(self, subject: str) -> list[tuple[str, bytes, Any]]:
        """The live keys under ``subject`` in every tier, with their store."""
        found: list[tuple[str, bytes, Any]] = []
        for tier in self.INSIGHT_TIERS:
            store = await self._store(f"_insight{tier}")
            watcher = await store.watch(subject, ignore_deletes=True)
            try:
                async for entry in watcher:
                    if entry is None:
                        break
                    if entry.value:
                        found.append((entry.key, entry.value, store))
            finally:
                await watcher.stop()
        return found

    async def entries(self, names: list[str]) -> list[dict[str, str]]:
        """Every map key read in one watch per bucket, then sorted into the maps asked for."""
        found: dict[str, dict[str, str]] = {nats_key(name): {} for name in names}
        for key, value, _store in await self._watched("m.>"):
            _m, name, field = key.split(".", 2)
            if name in found:
                found[name][_unescaped(field)] = value.decode()
        return [found[nats_key(name)] for name in names]

    async def listed(self, name: str, count: int) -> list[str]:
        chunks = sorted(await self._watched(f"l.{nats_key(name)}.>"), key=lambda found: found[0], reverse=True)
        values: list[str] = []
        for index, (_key, value, _store) in enumerate(chunks):
            if len(values) >= count:
                await asyncio.gather(*(store.delete(key) for key, _value, store in chunks[index:]))
                break
            values.extend(reversed(json.loads(value)))
        return values[:count]

    async def forget(self, name: str, fields: list[str]) -> None:
        for tier in self.INSIGHT_TIERS:
            store = await self._store(f"_insight{tier}")
            await asyncio.gather(*(store.delete(f"m.{nats_key(name)}.{nats_key(field)}") for field in fields))


def _unescaped(key: str) -> str:
    """``nats_key`` undone."""
    return re.sub(rb"_([0-9a-f]{2})", lambda found: bytes([int(found.group(1), 16)]), key.encode()).decode()
