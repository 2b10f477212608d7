"""Errors of the result backends we ship (RabbitMQ, NATS): TaskIQ's ResultGetError, with the fix."""

from __future__ import annotations

from taskiq import ResultGetError


class ResultBackendNotStartedError(ResultGetError):
    __template__ = "The result backend is not started: call broker.startup() first (the web app's lifespan does)."


class ResultMissingError(ResultGetError):
    __template__ = "No result is stored for task {task_id} (it has not finished, or its result expired)."

    task_id: str
