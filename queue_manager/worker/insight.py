"""The insight recorder ``queue:work`` adds to its broker (``queue_manager.insight.recorder``), unless the settings
turn every part of it off."""

from __future__ import annotations

from functools import partial
from typing import Any

from drivers import QueueConfigurationError
from queue_manager.insight.recorder import InsightRecorder
from queue_manager.insight.state import insight_state
from queue_manager.manager import current_manager


def insight_recorder(broker: Any, queues: list[str], default_queue: str) -> InsightRecorder | None:
    """The recorder for this worker's connection, or None (insight off, or no app: a bare TaskIQ broker)."""
    spec = getattr(broker, "spec", None)
    try:
        manager = current_manager()
    except QueueConfigurationError:
        return None
    settings = manager.settings.insight
    if spec is None or not settings.enabled or not (settings.metrics or settings.recent or settings.workers):
        return None
    connection = manager.connection(spec.name)
    return InsightRecorder(settings, spec.name, queues, default_queue, partial(insight_state, connection))
