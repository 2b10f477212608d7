# The example app listening to queue:monitor's alerts (Laravel's QueueBusy, Horizon's LongWaitDetected) with an
# EventServiceProvider; each listener writes what it heard to $RECORD_DIR/alerts. Run as: python alerts_artisan ...
import json
import os
from dataclasses import asdict
from pathlib import Path

from fastapi_startkit import Application
from fastapi_startkit.events import EventServiceProvider
from fastapi_startkit.fastapi import FastAPIProvider

from queue_manager import QueueProvider
from queue_manager.events import LongWaitDetected, QueueBusy


def remember_alert(event) -> None:
    with open(os.path.join(os.environ["RECORD_DIR"], "alerts"), "a") as handle:
        handle.write(json.dumps({"event": type(event).__name__, **asdict(event)}) + "\n")


class AlertsEventServiceProvider(EventServiceProvider):
    listen = {QueueBusy: [remember_alert], LongWaitDetected: [remember_alert]}


app: Application = Application(
    base_path=Path(__file__).resolve().parent.parent,
    providers=[FastAPIProvider, AlertsEventServiceProvider, QueueProvider],
)
