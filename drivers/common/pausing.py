"""``queue:pause``: which of a worker's queues are paused, as its connection's control state says.

The state is written by ``Connection.pause`` on the connection's own server (``base.control``); every
worker reads it at most once a second while it fetches (the consume loop asks ``active``), so a paused
queue stops being fetched within about a second on every machine. A worker that cannot read it (the server
is away) keeps what it last knew.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from drivers.base.control import control_of, paused_key

logger = logging.getLogger("queue_manager.drivers")

CHECK_EVERY = 1.0  # seconds between two looks at the paused state
IDLE_WHILE_PAUSED = 0.5  # seconds a worker whose queues are all paused waits before it looks again


class PausedQueues:
    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.paused: set[str] = set()
        self._checked = 0.0

    async def active(self, queues: Sequence[str]) -> list[str]:
        """``queues`` without the paused ones, in their order."""
        paused = await self.of(queues)
        return [queue for queue in queues if queue not in paused] if paused else list(queues)

    async def of(self, queues: Sequence[str]) -> set[str]:
        """The paused ones among ``queues`` (read from the server at most every ``CHECK_EVERY`` seconds)."""
        if time.monotonic() - self._checked < CHECK_EVERY:
            return self.paused
        self._checked = time.monotonic()
        control = control_of(self.broker)
        if control is None:
            return self.paused
        try:
            values = [await control.get(paused_key(queue)) for queue in queues]
        except Exception as error:  # the server is away: the fetch that follows reports it
            logger.debug("Could not read the paused queues: %s", error)
            return self.paused
        now_paused = {queue for queue, value in zip(queues, values, strict=True) if value is not None}
        for queue in now_paused - self.paused:
            logger.info("Queue %s is paused: taking no new jobs from it", queue)
        for queue in self.paused - now_paused:
            logger.info("Queue %s is resumed", queue)
        self.paused = now_paused
        return self.paused
