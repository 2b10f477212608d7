# The seed guide's bootstrap/application.py, with our QueueProvider.
from pathlib import Path

from fastapi_startkit import Application
from fastapi_startkit.fastapi import FastAPIProvider

from queue_manager import QueueProvider

app: Application = Application(
    base_path=Path(__file__).resolve().parent.parent,
    providers=[
        FastAPIProvider,
        QueueProvider,
    ],
)

from app.http import routes  # noqa: E402,F401  (registers the routes on app.fastapi)
