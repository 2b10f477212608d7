# The example app with fastapi-startkit's LogProvider too (its logs under $RECORD_DIR/logs), for the logging test.
import os
from pathlib import Path

from fastapi_startkit import Application
from fastapi_startkit.fastapi import FastAPIProvider
from fastapi_startkit.logging.providers.log_provider import LogProvider

from queue_manager import QueueProvider

os.environ.setdefault("LOG_DAILY_PATH", str(Path(os.environ.get("RECORD_DIR", "storage")) / "logs"))

app: Application = Application(
    base_path=Path(__file__).resolve().parent.parent,
    providers=[FastAPIProvider, LogProvider, QueueProvider],
)
