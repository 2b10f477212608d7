"""The one queue-name check: the rule every driver shares, then the driver's own (``DriverInfo.queue_rule``).

A queue name becomes a Redis key, an AMQP queue name and a NATS subject token, so every driver keeps it plain:
1 to 200 characters, no whitespace, no ``*`` or ``>``. A broker that refuses more says so in its rule, exactly
what it refuses (RabbitMQ: any character its client cannot send, ``amq.`` names; NATS: dots, path separators, NUL,
consumer names over 255 bytes; Redis: braces, which would break a Cluster hash tag), which its package defines
and its registry entry carries. The check runs at boot (settings), at dispatch, when a worker starts and in every
command.

No queue name holds whitespace, so the control state (``base.control``) marks its own names with a space
(``CONTROL_MARK``: ``queues:control restart:app`` on Redis, the queue ``queues.control paused:emails`` on
RabbitMQ) and no queue, whatever its name, shares a key or a queue with a control value.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.base.errors import QueueConfigurationError

MAX_LENGTH = 200
CONTROL_MARK = " "  # in every control value's key, and in no queue name (the check below refuses whitespace)

QueueRule = Callable[[str], str | None]  # what a broker refuses in a queue name (a sentence), or None


def queue_name_problem(queue: str, rule: QueueRule | None = None) -> str | None:
    """What is wrong with ``queue`` (a sentence without the name, for the caller to prefix), or None."""
    if not isinstance(queue, str) or not queue or len(queue) > MAX_LENGTH:
        return f"a queue name must be 1 to {MAX_LENGTH} characters long"
    if any(ch.isspace() for ch in queue) or "*" in queue or ">" in queue:
        return "a queue name may not contain spaces, '*' or '>'"
    return rule(queue) if rule is not None else None


def check_queue_name(queue: str, rule: QueueRule | None = None, driver: str | None = None) -> str:
    """``queue``, or QueueConfigurationError naming the rule it breaks (and the driver whose rule it is)."""
    problem = queue_name_problem(queue, None)
    if problem is not None:
        raise QueueConfigurationError(f"Invalid queue name {str(queue)[:MAX_LENGTH]!r}: {problem}.")
    problem = rule(queue) if rule is not None else None
    if problem is not None:
        raise QueueConfigurationError(f"Queue name {queue!r} cannot be used on {driver or 'this driver'}: {problem}.")
    return queue
