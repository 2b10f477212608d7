"""Names a broker would refuse, caught before they reach it: at boot (settings and options) and at dispatch.

Each check returns what is wrong (a sentence without the offending value, to be prefixed by the caller) or
None. The rules are the brokers' own: RabbitMQ reserves every queue and exchange name starting with
``amq.`` (declaring one closes the channel with ACCESS_REFUSED, failing every publish sharing it); NATS
stream, consumer and key-value bucket names may not hold spaces, dots, ``*``, ``>`` or path separators,
and a subject is dot-separated tokens, none empty or holding a space or wildcard.
"""

from __future__ import annotations

import re

from drivers.errors import QueueConfigurationError

AMQP_RESERVED = "amq."
_NATS_NAME = re.compile(r"^[^\s.*>/\\]+$")  # streams and consumers (JetStream's own rule)
_NATS_BUCKET = re.compile(r"^[a-zA-Z0-9_-]+$")  # key-value buckets (nats-py's VALID_BUCKET_RE)
_NATS_TOKEN = re.compile(r"^[^\s.*>]+$")


def rabbitmq_name_problem(name: str) -> str | None:
    if name.lower().startswith(AMQP_RESERVED):
        return (
            "RabbitMQ reserves names starting with 'amq.' for its own queues and exchanges (declaring one is "
            "refused with ACCESS_REFUSED): pick a name without that prefix"
        )
    if len(name.encode()) > 255:
        return "RabbitMQ names are at most 255 bytes long"
    return None


def nats_name_problem(name: str) -> str | None:
    """A stream or consumer name (a NATS queue name becomes the durable consumer ``workers_<queue>``)."""
    if not _NATS_NAME.match(name):
        return "NATS stream and consumer names may not contain spaces, '.', '*', '>', '/' or '\\'"
    return None


def nats_queue_problem(queue: str) -> str | None:
    """A queue becomes the subject ``<prefix>.<queue>`` and the durable consumer ``workers_<queue>``."""
    if not _NATS_NAME.match(queue):
        return (
            "a NATS queue name becomes a durable consumer name (workers_<queue>), which may not contain spaces, "
            "'.', '*', '>', '/' or '\\': use '-' or '_' instead (e.g. 'emails-high')"
        )
    return None


def nats_bucket_problem(name: str) -> str | None:
    if not _NATS_BUCKET.match(name):
        return "NATS key-value bucket names may contain only letters, digits, '_' and '-'"
    return None


def nats_subject_problem(subject: str) -> str | None:
    if not all(_NATS_TOKEN.match(token) for token in subject.split(".")):
        return (
            "a NATS subject is tokens separated by single dots, none empty or holding a space, '*' or '>' "
            "(e.g. 'queues' or 'app.queues')"
        )
    return None


QUEUE_RULES = {"rabbitmq": rabbitmq_name_problem, "nats": nats_queue_problem}


def queue_name_problem(driver: str, queue: str) -> str | None:
    """What the driver's broker would refuse in a queue name, if anything."""
    rule = QUEUE_RULES.get(driver)
    return rule(queue) if rule is not None else None


def check_queue_name(driver: str, queue: str) -> str:
    """``queue``, or QueueConfigurationError naming the rule it breaks (at dispatch or when a worker starts)."""
    problem = queue_name_problem(driver, queue)
    if problem is not None:
        raise QueueConfigurationError(f"Queue name {queue[:200]!r} cannot be used on {driver}: {problem}.")
    return queue
