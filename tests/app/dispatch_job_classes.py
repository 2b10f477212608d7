# Dispatch job classes the ways a Laravel user would, and print the task ids (null: a unique job already queued).
# Usage: python dispatch_job_classes.py '{"job": "SendWelcomeEmail", "args": [42], "kwargs": {...},
#                                        "form": "class|instance|push|bulk", "times": 1, "wait": false}'
#   form class:    await SendWelcomeEmail.dispatch(42)
#        instance: await dispatch(SendWelcomeEmail(42))
#        push:     await Queue.push(SendWelcomeEmail(42))      (fastapi-startkit's Queue facade)
#        bulk:     await manager.connection().bulk([SendWelcomeEmail(42), ...])   ("times" jobs)
#   "times": that many dispatches at once (asyncio.gather); "job" may name a @task function of app.job_classes.
import asyncio
import json
import sys
from datetime import datetime

from fastapi_startkit.facades import Queue

from app import job_classes
from bootstrap.application import app
from queue_manager import Job, dispatch


def typed(name: str, kwargs: dict) -> dict:
    """The JSON spec's values as the job takes them (a pydantic model, a dataclass, a datetime)."""
    kwargs = dict(kwargs)
    if name == "SendWelcomeEmail":
        if kwargs.get("user"):
            kwargs["user"] = job_classes.User(**kwargs["user"])
        if kwargs.get("address"):
            kwargs["address"] = job_classes.Address(**kwargs["address"])
        if kwargs.get("sent_at"):
            kwargs["sent_at"] = datetime.fromisoformat(kwargs["sent_at"])
    return kwargs


def make(name: str, args: list, kwargs: dict):
    return getattr(job_classes, name)(*args, **typed(name, kwargs))


async def send(spec: dict):
    found = getattr(job_classes, spec["job"])
    args, kwargs = spec.get("args", []), dict(spec.get("kwargs", {}))
    form = spec.get("form", "class")
    if not (isinstance(found, type) and issubclass(found, Job)):
        return await dispatch(found, *args, **kwargs)
    if form == "class":
        return await found.dispatch(*args, **typed(spec["job"], kwargs))
    if form == "instance":
        return await dispatch(make(spec["job"], args, kwargs))
    if form == "push":
        [handle] = await Queue.push(make(spec["job"], args, kwargs))
        return handle
    raise ValueError(form)


async def main(spec: dict) -> None:
    manager = app.make("queue.manager")
    times = spec.get("times", 1)
    try:
        if spec.get("form") == "bulk":
            jobs = [make(spec["job"], spec.get("args", []), dict(spec.get("kwargs", {}))) for _ in range(times)]
            handles = await manager.connection().bulk(jobs)
        else:
            handles = await asyncio.gather(*(send(spec) for _ in range(times)))
    except BaseException:
        await manager.shutdown()
        raise
    out = []
    for handle in handles:
        row = {"task_id": handle.task_id if handle is not None else None}
        if spec.get("wait") and handle is not None:
            result = await handle.wait_result(timeout=60, check_interval=0.05)
            row.update(is_err=result.is_err, value=result.return_value, error=repr(result.error))
        out.append(row)
    print(json.dumps(out))
    await manager.shutdown()


asyncio.run(main(json.loads(sys.argv[1])))
