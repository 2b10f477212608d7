"""Chains and batches (Laravel's ``Bus::chain`` / ``Bus::batch``): ``facade`` (``Bus``), ``chain``
(``PendingChain`` and how a link is sent), ``batch`` (``Batch``, ``PendingBatch``), ``wire`` (what travels with a
job), ``running`` (the worker's middleware that records outcomes and moves chains on), ``callbacks`` (callbacks as
jobs, each run once). The store is ``queue_manager.batches``'s."""

from __future__ import annotations

from queue_manager.bus.batch import Batch, PendingBatch
from queue_manager.bus.callbacks import JobError
from queue_manager.bus.chain import PendingChain
from queue_manager.bus.facade import Bus
from queue_manager.bus.running import BusMiddleware

__all__ = ["Batch", "Bus", "BusMiddleware", "JobError", "PendingBatch", "PendingChain"]
