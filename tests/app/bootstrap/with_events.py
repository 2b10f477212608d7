# The example app with fastapi-startkit's events (an EventServiceProvider, Laravel's way): the queue's job events
# reach its listeners in the worker process. The events tests run workers with QUEUE_APP=bootstrap.with_events:app.
from pathlib import Path

from fastapi_startkit import Application
from fastapi_startkit.events import EventServiceProvider
from fastapi_startkit.fastapi import FastAPIProvider

from app.job_classes import remember_event
from queue_manager import QueueProvider
from queue_manager.events import JobExceptionOccurred, JobFailed, JobProcessed, JobProcessing, JobReleased


class AppEventServiceProvider(EventServiceProvider):
    listen = {
        JobProcessing: [remember_event],
        JobProcessed: [remember_event],
        JobReleased: [remember_event],
        JobExceptionOccurred: [remember_event],
        JobFailed: [remember_event],
    }


app: Application = Application(
    base_path=Path(__file__).resolve().parent.parent,
    providers=[FastAPIProvider, AppEventServiceProvider, QueueProvider],
)
