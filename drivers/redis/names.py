"""The Redis drivers' queue rule: no ``{`` or ``}`` in a queue name.

On a Redis Cluster every key of a queue carries the queue's name as its hash tag (``queues:{emails}``,
``queues:{emails}:delayed``, ``:reserved``), so they share one slot and one script or transaction may use them
all. A brace in the name moves the tag (``}x{`` made ``queues:{}x{}``, which has none): the keys fell into
different slots, counting raised CrossSlotTransactionError and a worker's fetch script was refused. The rule holds
on one server too, so an app keeps its queue names when it moves to a cluster.
"""

from __future__ import annotations

from drivers.base.names import check_queue_name


def queue_problem(queue: str) -> str | None:
    """The driver's queue rule (``DriverInfo.queue_rule``)."""
    if "{" in queue or "}" in queue:
        return (
            "Redis queue names may not contain '{' or '}', which on a Redis Cluster would break the hash tag that "
            "keeps a queue's keys in one slot: use '-' or '_' instead"
        )
    return None


def check_queue(queue: str, driver: str) -> str:
    """``queue``, or QueueConfigurationError (the brokers check what reaches them without a ``Connection``)."""
    return check_queue_name(queue, queue_problem, driver)
