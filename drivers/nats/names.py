"""Names NATS would refuse, caught before they reach it (at boot and at dispatch).

JetStream stream, consumer and key-value bucket names may not hold spaces, dots, ``*``, ``>`` or path
separators, and a subject is dot-separated tokens, none empty or holding a space or wildcard. A queue becomes
the subject ``<prefix>.<queue>`` and the durable consumer ``workers_<queue>``.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^[^\s.*>/\\]+$")  # streams and consumers (JetStream's own rule)
_BUCKET = re.compile(r"^[a-zA-Z0-9_-]+$")  # key-value buckets (nats-py's VALID_BUCKET_RE)
_TOKEN = re.compile(r"^[^\s.*>]+$")


def name_problem(name: str) -> str | None:
    """A stream or consumer name."""
    if not _NAME.match(name):
        return "NATS stream and consumer names may not contain spaces, '.', '*', '>', '/' or '\\'"
    return None


def queue_problem(queue: str) -> str | None:
    """The driver's queue rule: a queue name becomes a durable consumer name."""
    if not _NAME.match(queue):
        return (
            "a NATS queue name becomes a durable consumer name (workers_<queue>), which may not contain spaces, "
            "'.', '*', '>', '/' or '\\': use '-' or '_' instead (e.g. 'emails-high')"
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
