"""JetStream replicas of what a NATS connection keeps: the work stream, the results bucket, the control buckets.

``replicas`` (1-5) is JetStream's ``num_replicas``: in a cluster each stream (a key-value bucket is a stream,
``KV_<bucket>``) is kept on that many servers, so it survives the loss of a minority of them. A stream that
already exists with another count is **updated** to the configured one (JetStream moves the replicas itself,
as ``nats stream edit --replicas`` does), and the change is logged; with ``replicas`` unset, new streams get 1
and existing ones are left as they are; a server that refuses (a single server
asked for more than 1, fewer servers than replicas) is a ``QueueConfigurationError`` naming the fix.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

from nats.js.errors import APIError

from drivers.base.errors import QueueConfigurationError

logger = logging.getLogger("queue_manager.drivers.nats")


def about_replicas(error: APIError) -> bool:
    """Does JetStream refuse because of the replica count (not clustered, too few servers)?"""
    text = f"{error.description or ''} {error}".lower()
    return any(word in text for word in ("replica", "peer", "clustered", "insufficient resources"))


def refused(what: str, wanted: int, error: APIError, setting: str) -> QueueConfigurationError:
    return QueueConfigurationError(
        f"NATS refused {what} with {wanted} replica(s): {error.description or error}. A single server (not a "
        f"cluster) keeps 1 replica, and a cluster at most as many as it has servers: set {setting} accordingly."
    )


async def match_replicas(js: Any, stream: str, wanted: int | None, what: str, setting: str) -> None:
    """Give the existing ``stream`` ``wanted`` replicas if it has another number (``None``: leave it as it is,
    so an app that never set ``replicas`` does not shrink a stream an operator replicated)."""
    if wanted is None:
        return
    config = (await js.stream_info(stream)).config
    have = config.num_replicas or 1
    if have == wanted:
        return
    config.num_replicas = wanted
    try:
        await js.update_stream(config=config)
    except APIError as error:
        raise refused(f"changing {what} from {have} to", wanted, error, setting) from None
    logger.warning("NATS %s had %d replica(s): changed to %d (%s)", what, have, wanted, setting)
    await settled(js, stream, wanted)


async def settled(js: Any, stream: str, wanted: int, deadline: float = 30.0) -> None:
    """Wait until the changed stream has a leader and its new replicas have caught up: until then JetStream
    answers nothing for it (a dispatch or a key read right after the change would time out)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        with suppress(Exception):  # no leader yet: the request itself times out
            cluster = (await js.stream_info(stream)).cluster
            if cluster is None or not cluster.name:  # a single server: nothing to elect
                return
            peers = cluster.replicas or []
            if cluster.leader and len(peers) == wanted - 1 and all(p.current for p in peers):
                return
        await asyncio.sleep(0.2)
    logger.warning("NATS stream %r has not settled on %d replicas after %.0f s; going on", stream, wanted, deadline)
