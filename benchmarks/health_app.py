"""The web app ``benchmarks.health`` serves: FastAPI and QueueProvider, on the local Redis, RabbitMQ and NATS."""

from __future__ import annotations

import tempfile

from fastapi_startkit import Application
from fastapi_startkit.fastapi import FastAPIProvider

from queue_manager import QueueProvider

app = Application(base_path=tempfile.mkdtemp(prefix="queue-health-bench-"), providers=[FastAPIProvider, QueueProvider])

# The app dispatches on these too, so the web process resolves (and its lifespan starts) them.
for name in ("rabbitmq", "nats"):
    app.make("queue.manager").connection(name)
