"""What a chain link and a callback carry on the wire, and how a worker turns it back into a call.

A chain travels with its jobs: each link's message holds the rest of the chain (``CHAIN``, JSON), so no store
is needed to know what comes next and a worker that runs link ``i`` sends link ``i + 1`` only after ``i``
succeeded. Link ``i``'s task id is derived from the chain's id and ``i`` (``link_id``), and each send of a link
carries a fresh ``NONCE``: when it starts, a link claims ``chain:<id>:<i>:run`` for its nonce, so a second copy
of the link (sent again by a worker killed between sending it and noting that it had) finds the claim taken and
skips itself, while the same message delivered again after a crash finds its own nonce and runs again.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

from pydantic_core import to_jsonable_python
from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask

from drivers.base import labels as wire
from drivers.base.errors import QueueConfigurationError
from queue_manager.dispatch import PendingDispatch

BATCH = "batch_id"  # the batch a job belongs to
CHAIN = "chain"  # a chain link's chain: JSON {id, i, rest, catch, finally, batch}
NONCE = "bus_nonce"  # one send of a chain link or a callback (what its run claim is owned by)
_NAMESPACE = uuid.UUID("6f2b8a43-5bf4-4d52-9d1e-1c6e8a7f0b21")


def link_id(chain_id: str, index: int) -> str:
    """The task id of link ``index`` of a chain: the same in every process that sends it (a uuid)."""
    return str(uuid.uuid5(_NAMESPACE, f"{chain_id}:{index}"))


def callback_id(owner: str, kind: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{owner}:{kind}"))


def new_nonce() -> str:
    return uuid.uuid4().hex


def link_of(pending: PendingDispatch, connection: str, queue: str | None) -> dict[str, Any]:
    """A pending dispatch as a chain link: its task, arguments, labels, connection and delay (in seconds from
    when it is sent, not from when the chain was made)."""
    pending.close()  # handed to Bus: it counts as used (no never-awaited warning), and is sent by the bus
    labels = {key: value for key, value in {**pending.task.labels, **pending.labels}.items() if value is not None}
    eta = labels.pop(wire.ETA, None)
    if queue is not None and wire.QUEUE not in pending.labels:
        labels[wire.QUEUE] = queue
    try:
        args = to_jsonable_python(list(pending.args))
        kwargs = to_jsonable_python(pending.kwargs)
    except Exception as error:
        raise QueueConfigurationError(
            f"A chain or batch member ({pending.task.task_name}) has arguments that cannot be sent as JSON: {error}."
        ) from None
    own = pending.connection_name or (pending._connection.name if pending._connection is not None else None)
    return {
        "t": pending.task.task_name,
        "a": args,
        "k": kwargs,
        "l": labels,
        "c": own or connection,
        "d": max(0.0, float(eta) - time.time()) if eta is not None else None,
    }


def chain_state(message_labels: dict[str, Any]) -> dict[str, Any] | None:
    raw = message_labels.get(CHAIN)
    if not raw:
        return None
    try:
        state = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


# -- callbacks -----------------------------------------------------------------------------------------------
def callback_spec(callback: Any, where: str) -> dict[str, str]:
    """A callback as a worker finds it again: a task (by name) or a job class (by its task's name, its import path).
    Anything else (a plain function, a lambda) is refused here: a worker runs only what the app declared as a job."""
    if isinstance(callback, AsyncTaskiqDecoratedTask):
        return _spec("task", callback, getattr(callback.original_func, "__module__", ""), where)
    declared = getattr(callback, "task", None)
    if isinstance(callback, type) and isinstance(declared, AsyncTaskiqDecoratedTask):
        return _spec("job", declared, callback.__module__, where)
    raise QueueConfigurationError(
        f"{where}: {callback!r} cannot be a callback. Callbacks run on a worker, which runs only declared jobs: pass a "
        "task (a function decorated with @task) or a job class (a queue_manager.Job subclass), defined at module "
        "level in a module the worker imports."
    )


def _spec(kind: str, task: AsyncTaskiqDecoratedTask[Any, Any], module: str, where: str) -> dict[str, str]:
    """What a worker needs to find the callback again, and the queue it declares (where its job is sent)."""
    if module == "__main__":  # defined in the dispatching script: no worker imports it
        raise QueueConfigurationError(
            f"{where}: {task.task_name} is defined in the script that runs (__main__), which no worker imports. "
            "Define the callback in a module of the app (app/jobs.py) that queue:work imports (--tasks or QUEUE_TASKS)."
        )
    spec = {kind: task.task_name}
    queue = task.labels.get(wire.QUEUE)
    if queue:
        spec["q"] = str(queue)
    return spec


def declared_queue(*groups: list[dict[str, str]]) -> str | None:
    """The first queue the callbacks declare (``@task(queue=...)``, a job class's ``queue``), if any."""
    return next((spec["q"] for group in groups for spec in group if spec.get("q")), None)


def _loaded(path: str) -> Any:
    """The object ``module:qualname`` names, from a module this worker has imported already: a message never
    makes a worker import a module (as an unknown task is refused, not looked for)."""
    module, _, qualname = path.partition(":")
    found: Any = sys.modules.get(module)
    for part in qualname.split(".") if found is not None else []:
        found = getattr(found, part, None)
    return found


def _unknown(name: str) -> QueueConfigurationError:
    return QueueConfigurationError(
        f"Callback {name} is not known to this worker: add its module ({name.partition(':')[0]}) to queue:work "
        "--tasks (or QUEUE_TASKS)."
    )


def resolve_callback(spec: dict[str, str], broker: AsyncBroker) -> Any:
    """The function to call with the callback's arguments (a job class: one that makes and handles the job)."""
    if "task" in spec:
        task = broker.find_task(spec["task"]) or AsyncBroker.global_task_registry.get(spec["task"])
        if task is None:
            raise _unknown(spec["task"])
        return task.original_func
    cls = _loaded(spec["job"])
    if cls is None:
        raise _unknown(spec["job"])
    declared = getattr(cls, "task", None)
    if not isinstance(cls, type) or getattr(declared, "task_name", None) != spec["job"]:
        raise QueueConfigurationError(f"Callback {spec['job']} is not a job class.")

    def run_job(*args: Any) -> Any:
        return cls(*args).handle()

    return run_job
