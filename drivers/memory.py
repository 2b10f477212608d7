"""In-memory driver: TaskIQ's ``InMemoryBroker``, for tests and local runs with no server.

A job runs inside the process that dispatched it; there is no worker process
and nothing survives the process.
"""

from __future__ import annotations

from taskiq import AsyncBroker, InMemoryBroker

from drivers.options import MemoryOptions
from drivers.spec import BrokerSpec


def build(spec: BrokerSpec) -> AsyncBroker:
    # TaskIQ keeps only 100 results by default: a batch of 101 jobs loses the first result.
    options = MemoryOptions.model_validate(dict(spec.options))
    return InMemoryBroker(max_stored_results=options.max_stored_results)


async def ping(spec: BrokerSpec) -> None:
    """Always reachable: it lives in this process."""
