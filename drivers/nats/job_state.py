"""Job state on NATS (``ControlState.lock``/``unlock``/``hit``): locks and sliding-window rate limits in JetStream
key-value buckets beside the connection's control bucket (``<stream>_control_locks``, ``<stream>_control_hits``).

JetStream has no server-side script, so each is a compare-and-set on the key's revision: a lock's value is its
owner and when it expires, a limit's value is the times of its hits in the window. The buckets' own age limit
sweeps keys nobody wrote for longer than any lock or window may last. What this process last wrote or read of a key
(and its revision) is remembered, so the common case is one request: a free lock is taken, or a hit counted, by
one update that succeeds only if nobody wrote meanwhile; a full window is answered from what is known without
asking (others only add hits, so a window known full is full); on a conflict, or a lock known held by another (it
may have been freed since), the key is read and tried again. A key that another process wrote since we did is read
before it is written from then on (two requests rather than a failed update and two more), until we find nobody
else wrote it.
Times are the workers' clocks (JetStream keeps none of its own in a value).
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, TypeVar

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from drivers.nats.results import open_bucket

T = TypeVar("T")
LOCKS_TTL = 30 * 86_400.0  # the longest a lock may last (a unique job's unique_for is at most 30 days)
HITS_TTL = 86_400.0  # the longest rate-limit window (Limit.per_day)
MAX_HITS = 20_000  # hits a window may hold on NATS (its value, one time each, stays well under 1 MB)
_TRIES = 50  # compare-and-set rounds before a busy key is answered with a short wait
_KNOWN = 10_000  # keys whose last revision this process remembers (per-user keys come and go)


class NatsJobState:
    """Locks and rate limits for one NATS connection (``NatsControl`` hands its ``lock``/``unlock``/``hit`` here)."""

    def __init__(self, js: Any, bucket: str, replicas: int | None, setting: str) -> None:
        self.js, self.bucket, self.replicas, self.setting = js, bucket, replicas, setting
        self._kv: dict[str, Any] = {}
        self._locks: dict[str, tuple[int, str, float]] = {}  # key -> (revision, owner, expires) this process wrote
        self._hits: dict[str, tuple[int, list[float]]] = {}  # key -> (revision, hit times) this process wrote/read
        self._shared: dict[str, None] = {}  # keys another process wrote since we did: read before writing

    async def _store(self, suffix: str, ttl: float) -> Any:
        if suffix not in self._kv:
            self._kv[suffix] = await open_bucket(self.js, self.bucket + suffix, self.replicas, self.setting, ttl=ttl)
        return self._kv[suffix]

    def _remember(self, cache: dict[str, T], key: str, value: T) -> T:
        """Keep what we know of ``key``, newest last, forgetting the oldest beyond ``_KNOWN`` keys."""
        cache.pop(key, None)
        cache[key] = value
        if len(cache) > _KNOWN:
            del cache[next(iter(cache))]
        return value

    def _conflicted(self, key: str) -> None:
        """Another process writes this key too: read it before writing, sparing an update bound to fail."""
        self._remember(self._shared, key, None)

    async def _first_read(self, key: str, cache: dict[str, Any], read: Any) -> tuple[Any, bool]:
        """(what we know of ``key``, whether it was just read): a key others write is read first; when nobody
        else wrote it since our last write, the next try is optimistic again."""
        known = cache.get(key)
        if key not in self._shared:
            return known, False
        current = await read()
        if known is not None and current is not None and current[0] == known[0]:
            self._shared.pop(key, None)
        return current, True

    # -- locks ----------------------------------------------------------------------------------------------------
    async def lock(self, key: str, owner: str, ttl: float) -> bool:
        if ttl > LOCKS_TTL:
            raise ValueError(f"a lock lasts at most {LOCKS_TTL:g} s on NATS, asked for {ttl:g} s")
        store = await self._store("_locks", LOCKS_TTL)
        known, fresh = await self._first_read(key, self._locks, lambda: self._read_lock(store, key))
        for _ in range(_TRIES):
            now = time.time()
            value = json.dumps([owner, now + ttl]).encode()
            if known is not None and known[1] not in ("", owner) and known[2] > now:
                if fresh:
                    return False  # held by another
                known, fresh = await self._read_lock(store, key), True  # what we knew may be stale: freed since?
                continue
            try:
                revision = (
                    await store.update(key, value, last=known[0])
                    if known is not None
                    else await store.create(key, value)
                )
            except KeyWrongLastSequenceError:
                self._conflicted(key)
                known, fresh = await self._read_lock(store, key), True
                continue
            self._remember(self._locks, key, (revision, owner, now + ttl))
            return True
        return False

    async def unlock(self, key: str, owner: str) -> bool:
        """Written free (not deleted: the next lock is then one update), only by its owner, only if unexpired."""
        store = await self._store("_locks", LOCKS_TTL)
        known = self._locks.get(key)
        for _ in range(_TRIES):
            if known is None or known[1] != owner or known[2] <= time.time():
                if known is not None and known[1] == owner:  # expired: maybe still ours, maybe taken since
                    self._locks.pop(key, None)
                known = await self._read_lock(store, key)
                if known is None or known[1] != owner or known[2] <= time.time():
                    return False
            try:
                revision = await store.update(key, json.dumps(["", 0]).encode(), last=known[0])
            except KeyWrongLastSequenceError:
                known = None
                continue
            self._remember(self._locks, key, (revision, "", 0.0))
            return True
        return False

    async def _read_lock(self, store: Any, key: str) -> tuple[int, str, float] | None:
        try:
            entry = await store.get(key)
        except KeyNotFoundError:  # never written (a deleted key is written again by create)
            self._locks.pop(key, None)
            return None
        owner, expires = json.loads(entry.value or b'["", 0]')
        return self._remember(self._locks, key, (entry.revision, str(owner), float(expires)))

    # -- sliding-window rate limits ---------------------------------------------------------------------------------
    async def hit(self, key: str, limit: int, window: float) -> float:
        if window > HITS_TTL:
            raise ValueError(f"a rate-limit window is at most {HITS_TTL:g} s on NATS, asked for {window:g} s")
        if limit > MAX_HITS:
            raise ValueError(
                f"a rate limit on NATS allows at most {MAX_HITS:,} per window (the window's value holds one time per "
                f"hit), asked for {limit:,}: keep this connection's job state on Redis (STATE) for larger limits"
            )
        store = await self._store("_hits", HITS_TTL)
        known: tuple[int, list[float]] | None
        known, _ = await self._first_read(key, self._hits, lambda: self._read_hits(store, key))
        for _ in range(_TRIES):
            now = time.time()
            hits = [at for at in known[1] if at > now - window] if known is not None else []
            if len(hits) >= limit:
                return max(0.001, hits[-limit] + window - now)  # known full is full: others only add hits
            counted = [*hits, now][-limit:]
            value = json.dumps([round(at, 4) for at in counted]).encode()
            try:
                if known is not None and known[0]:
                    revision = await store.update(key, value, last=known[0])
                else:
                    revision = await store.create(key, value)
            except KeyWrongLastSequenceError:
                self._conflicted(key)
                known = await self._read_hits(store, key)
                continue
            self._remember(self._hits, key, (revision, counted))
            return 0.0
        return random.uniform(0.05, 0.25)  # contended beyond reason: try again shortly, counted nothing

    async def _read_hits(self, store: Any, key: str) -> tuple[int, list[float]] | None:
        try:
            entry = await store.get(key)
        except KeyNotFoundError:
            self._hits.pop(key, None)
            return None
        hits = sorted(float(at) for at in json.loads(entry.value or b"[]"))
        return self._remember(self._hits, key, (entry.revision, hits))
