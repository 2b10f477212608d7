"""Names NATS would refuse, caught before they reach it (at boot and at dispatch).

JetStream stream, consumer and key-value bucket names may not hold spaces, dots, ``*``, ``>``, path separators
or NUL (the server keeps each in a directory of that name), and a consumer name is at most 255 bytes; a subject
is dot-separated tokens, none empty or holding a space or wildcard. A queue becomes the subject
``<prefix>.<queue>`` and the durable consumer ``workers_<queue>``, so its name may hold none of those and at most
247 bytes (a test tries every character class on the real server). Anything else may be in a queue name: a
control value's key is written with escapes (``control.nats_key``).
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^[^\s.*>/\\\x00]+$")  # streams and consumers (JetStream's own rule)
CONSUMER_PREFIX = "workers_"  # a queue's durable consumer is workers_<queue>
MAX_CONSUMER_BYTES = 255
_BUCKET = re.compile(r"^[a-zA-Z0-9_-]+$")  # key-value buckets (nats-py's VALID_BUCKET_RE)
_TOKEN = re.compile(r"^[^\s.*>]+$")


def name_problem(name: str) -> str | None:
    """A stream or consumer name."""
    if not _NAME.match(name):
        return "NATS stream and consumer names may not contain spaces, '.', '*', '>', '/', '\\' or NUL"
    return None


def queue_problem(queue: str) -> str | None:
    """The driver's queue rule: a queue name becomes a durable consumer name."""
    if not _NAME.match(queue):
        return (
            "a NATS queue name becomes a durable consumer name (workers_<queue>), which may not contain spaces, "
            "'.', '*', '>', '/', '\\' or NUL: use '-' or '_' instead (e.g. 'emails-high')"
        )
    size = len((CONSUMER_PREFIX + queue).encode())
    if size > MAX_CONSUMER_BYTES:
        return (
            f"a NATS queue name becomes a durable consumer name (workers_<queue>), which NATS allows at most "
            f"{MAX_CONSUMER_BYTES} bytes; this one would be {size} (UTF-8): use a shorter name"
        )
    return None


def bucket_problem(name: str) -> str | None:
    if not _BUCKET.match(name):
        return "NATS key-value bucket names may contain only letters, digits, '_' and '-'"
    return None


def subject_problem(subject: str) -> str | None:
    if not all(_TOKEN.match(token) for token in subject.split(".")):
        return (
            "a NATS subject is tokens separated by single dots, none empty or holding a space, '*' or '>' "
            "(e.g. 'queues' or 'app.queues')"
        )
    return None
