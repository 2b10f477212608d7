"""Names RabbitMQ would refuse, caught before they reach it (at boot and at dispatch).

RabbitMQ reserves every queue and exchange name starting with ``amq.``: declaring one closes the channel
with ACCESS_REFUSED, failing every publish sharing it. Names are at most 255 bytes (AMQP's shortstr).
"""

from __future__ import annotations

AMQP_RESERVED = "amq."


def name_problem(name: str) -> str | None:
    """A queue or exchange name RabbitMQ refuses (a sentence), or None; also the driver's queue rule."""
    if name.lower().startswith(AMQP_RESERVED):
        return (
            "RabbitMQ reserves names starting with 'amq.' for its own queues and exchanges (declaring one is "
            "refused with ACCESS_REFUSED): pick a name without that prefix"
        )
    if len(name.encode()) > 255:
        return "RabbitMQ names are at most 255 bytes long"
    return None
