"""A queue's typical job run time, for balancing by time to clear: the median run time the ``queue:work`` workers
recorded in the connection's metrics (``Connection.metrics``) over the last ``MINUTES``, read at most once per
``KEEP`` seconds per queue. None when the connection keeps no metrics (insight off, RabbitMQ without them) or
nothing ran yet: the balance then goes by jobs waiting."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("queue_manager.supervisor")

MINUTES = 15
KEEP = 60.0


class Runtimes:
    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.known: dict[str, tuple[float, float | None]] = {}  # queue -> (read at, seconds)

    async def __call__(self, queue: str) -> float | None:
        read_at, seconds = self.known.get(queue, (float("-inf"), None))
        if time.monotonic() - read_at < KEEP:
            return seconds
        seconds = await self._read(queue)
        self.known[queue] = (time.monotonic(), seconds)
        return seconds

    async def _read(self, queue: str) -> float | None:
        metrics = getattr(self.connection, "metrics", None)
        if metrics is None:
            return None
        try:
            found = await metrics(queue=queue, minutes=MINUTES)
            rows = [row for row in found.get("queues", []) if row.get("queue") == queue]
            median = rows[0]["runtime_ms"]["p50"] if rows else None
        except Exception as error:  # no metrics here: balance by jobs waiting
            logger.debug("No run times for queue %s: %s", queue, error)
            return None
        return float(median) / 1000 if isinstance(median, int | float) and median > 0 else None
