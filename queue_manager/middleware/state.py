"""What a job middleware needs of the running job: its delivery (``Interactions``), its task's name, and where its
connection keeps job state (the connection's own server, or the one its ``STATE`` setting names).

A middleware that needs state on a connection that keeps none fails the job, with the fix named, rather than run it
unguarded (``guarded``); ``queue:work`` refuses to start on such a connection (``RetryMiddleware.startup``).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from drivers.base import labels
from drivers.base.control import ControlState, JobStateUnsupported
from drivers.base.errors import QueueConfigurationError
from queue_manager.running.interactions import _CURRENT, Interactions, count

_PLAIN = re.compile(r"[A-Za-z0-9_.@=-]{1,64}")


class NoJobState(QueueConfigurationError):
    """The job's connection keeps no job state: the job fails (never runs unlocked), saying which setting fixes it."""


def running(job: Any) -> Interactions:
    """The delivery of ``job`` a worker is running (a job class's or a ``FunctionJob``'s)."""
    found = getattr(job, "_interactions", None) or _CURRENT.get()
    if not isinstance(found, Interactions):
        raise QueueConfigurationError(
            f"{job!r} is not a job a worker runs: job middleware runs inside a worker (or the memory driver), "
            "where the job has a connection to keep its state on."
        )
    return found


def task_name(job: Any) -> str:
    return running(job).message.task_name


def timeout_of(job: Any) -> float | None:
    """The job's ``timeout`` (its task's, or the message's label), in seconds."""
    value = running(job).message.labels.get(labels.TIMEOUT)
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def exceptions_of(job: Any) -> int:
    return count(running(job).message, labels.EXCEPTIONS)


def state_of(job: Any, what: str) -> ControlState:
    """Where the job's connection keeps job state; ``NoJobState`` naming the fix when it keeps none."""
    interactions = running(job)
    if interactions.job_state is None:
        raise NoJobState(
            f"{what} needs job state, and job {interactions.message.task_name} runs outside a queue connection "
            "(a broker made without QueueManager): run it through QueueManager's connections."
        )
    try:
        return interactions.job_state()
    except QueueConfigurationError as error:
        raise NoJobState(f"{what}: {error}") from None


async def guarded(job: Any, what: str, method: str, *args: Any) -> Any:
    """``await state.<method>(*args)`` on the job's state; a state the server cannot keep (a custom driver's) is a
    ``NoJobState`` too."""
    state = state_of(job, what)
    try:
        return await getattr(state, method)(*args)
    except JobStateUnsupported as error:
        raise NoJobState(
            f"{what} needs job state (locks, rate limits), and job {task_name(job)}'s connection keeps none "
            f"({error}): set QUEUE_CONNECTIONS__<NAME>__STATE to a Redis, NATS or memory connection."
        ) from None


MIN_RELEASE = 0.1  # a middleware's release waits at least this long (the memory driver runs a shorter one inline)


def release(job: Any, delay: float) -> None:
    """Back on its queue for ``delay`` seconds (at least ``MIN_RELEASE``): a release, not an attempt."""
    running(job).release(max(MIN_RELEASE, delay))


def fail_unguarded(job: Any, error: NoJobState) -> None:
    """The job fails for good with the fix named: it never runs without the lock or limit it asked for."""
    running(job).fail(error)


def key_part(value: Any) -> str:
    """A user's key (an id, a name) as part of a state name: itself when short and plain, else a digest (a name
    never holds braces, spaces or control characters, and stays short on every server)."""
    text = str(value)
    if not text or _PLAIN.fullmatch(text):
        return text
    return "h" + hashlib.sha256(text.encode()).hexdigest()[:32]
