"""Where a connection's insight is kept: map and list names in its control state, each under the connection's
name (a RabbitMQ connection may keep its insight on the Redis another connection uses)."""

from __future__ import annotations

METRICS_TTL = 3900  # a minute's metrics are kept an hour, and a little more for the minute being read


def metrics_map(connection: str, minute: int) -> str:
    """Each worker's metrics of one minute (minutes since the epoch): one field per worker."""
    return f"insight:{connection}:metrics:{minute}"


def workers_map(connection: str) -> str:
    """Each live worker's heartbeat: one field per worker."""
    return f"insight:{connection}:workers"


def recent_list(connection: str) -> str:
    return f"insight:{connection}:completed"


def failed_list(connection: str) -> str:
    return f"insight:{connection}:failed"


def tag_list(connection: str, tag: str) -> str:
    """The jobs of a monitored tag, kept longer."""
    return f"insight:{connection}:tag:{tag}"


def monitored_map(connection: str) -> str:
    """The tags monitored at run time (``conn.monitor_tag``): one field per tag, valued when it was added."""
    return f"insight:{connection}:monitored"
