"""``Bus``: Laravel's ``Bus`` facade for chains and batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queue_manager.bus.batch import Batch, PendingBatch
from queue_manager.bus.chain import PendingChain
from queue_manager.bus.context import bus_manager
from queue_manager.bus.wire import BATCH
from queue_manager.running.interactions import _CURRENT


class Bus:
    @staticmethod
    def chain(jobs: Sequence[Any]) -> PendingChain:
        """Jobs that run one after another, each only once the one before it succeeded."""
        return PendingChain(jobs)

    @staticmethod
    def batch(jobs: Sequence[Any]) -> PendingBatch:
        """Jobs that run side by side, with callbacks when they are done; a list among them is a chain."""
        return PendingBatch(jobs)

    @staticmethod
    async def find_batch(id: str) -> Batch | None:
        row = await bus_manager().batches.store.find(str(id))
        return Batch.of(row) if row is not None else None

    @staticmethod
    async def current_batch() -> Batch | None:
        """The batch of the job running here (a ``@task`` function's way to ``self.batch()``), or None."""
        interactions = _CURRENT.get()
        batch_id = interactions.message.labels.get(BATCH) if interactions is not None else None
        return await Bus.find_batch(str(batch_id)) if batch_id else None
