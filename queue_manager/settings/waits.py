"""``QUEUE_WAITS``: the seconds a queue may wait before ``queue:monitor`` fires ``LongWaitDetected`` (Horizon's
``waits``): ``QUEUE_WAITS='{"redis:default": 60, "redis:*": 300, "nats": 120}'``. A key is ``connection:queue``,
``connection:*`` (every queue of it not named) or a bare ``connection`` (its own queue)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from drivers.base.errors import did_you_mean


def check_waits(waits: Mapping[str, float], connections: Iterable[str]) -> None:
    """Every key names a known connection and every threshold is a number of seconds > 0 (a ValueError that
    the settings report as the field's error)."""
    known = list(connections)
    for key, seconds in waits.items():
        name, _, queue = key.partition(":")
        if name not in known:
            raise ValueError(
                f"QUEUE_WAITS names an unknown connection {name!r} (in {key!r}).{did_you_mean(name, known)} "
                f"Keys are connection:queue, connection:* or connection; connections: {', '.join(known)}"
            )
        if ":" in key and not queue:
            raise ValueError(f"QUEUE_WAITS key {key!r} has no queue after the colon: write {name}:<queue> or {name}:*")
        if not seconds > 0:
            raise ValueError(f"QUEUE_WAITS[{key!r}] must be a number of seconds > 0, got {seconds!r}")
