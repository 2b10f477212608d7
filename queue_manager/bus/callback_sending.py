"""Sending a callback job (then/catch/finally of a batch or a chain), once: apart from ``callbacks`` (which runs
them and needs ``Batch``) so a batch's own dispatch can send the callbacks of an empty batch."""

from __future__ import annotations

from typing import Any

from drivers.base import labels as wire_labels
from queue_manager.bus import wire
from queue_manager.bus.context import BusManager

CALLBACK_TASK = "queue_manager.bus:callback"


async def send_callbacks(
    manager: BusManager,
    owner: str,
    kind: str,
    connection: str,
    queue: str | None,
    payload: dict[str, Any],
) -> None:
    """Send the callback job ``kind`` of ``owner`` (``batch:<id>`` or ``chain:<id>``) unless it was sent before."""
    store = manager.batches.store
    sent_key = f"{owner}:{kind}:sent"
    if await store.owner(sent_key) is not None:
        return
    labels: dict[str, Any] = {wire.NONCE: wire.new_nonce()}
    if queue:
        labels[wire_labels.QUEUE] = queue
    target = manager.connection(connection)
    await target.send_named(
        CALLBACK_TASK, [], {"owner": owner, "kind": kind, **payload}, labels, wire.callback_id(owner, kind)
    )
    await store.claim(sent_key, "1")
