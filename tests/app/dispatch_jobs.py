# Dispatch jobs described in JSON, the Laravel way, and print what came back (for the e2e tests).
# Usage: python dispatch_jobs.py '[{"task": "remember", "args": [1], "connection": "nats", "queue": "q", "delay": 2}]'
#        (a task of app.jobs by name, or any task as "module:name", e.g. the guide's "app.tasks:record")
#        ("labels": {"delay": 2} sends TaskIQ's own delay label instead)
#        add --wait to wait for every result.
import asyncio
import importlib
import json
import sys
import time

from app import jobs
from bootstrap.application import app
from queue_manager import dispatch


async def main(specs: list[dict], wait: bool) -> None:
    manager = app.make("queue.manager")
    handles = []
    for spec in specs:
        module, _, name = spec["task"].rpartition(":")
        found = getattr(importlib.import_module(module), name) if module else getattr(jobs, name)
        if isinstance(found, type):  # a job class (queue_manager.Job): made with the args, then dispatched
            pending = dispatch(found(*spec.get("args", [])))
        else:
            pending = dispatch(found, *spec.get("args", []))
        if spec.get("connection"):
            pending = pending.on_connection(spec["connection"])
        if spec.get("queue"):
            pending = pending.on_queue(spec["queue"])
        if spec.get("delay") is not None:
            pending = pending.delay(spec["delay"])
        if spec.get("labels"):
            pending = pending.with_labels(**spec["labels"])
        handles.append((time.time(), await pending))
    out = []
    for sent_at, handle in handles:
        row = {"task_id": handle.task_id, "sent_at": sent_at}
        if wait:
            result = await handle.wait_result(timeout=60, check_interval=0.05)
            row.update(is_err=result.is_err, value=result.return_value, error=repr(result.error))
        out.append(row)
    print(json.dumps(out))
    await manager.shutdown()


asyncio.run(main(json.loads(sys.argv[1]), "--wait" in sys.argv))
