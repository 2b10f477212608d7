# Dispatch a chain or a batch as an app would, and print its id.
# Usage: python dispatch_bus.py '{"chain": [[KEY, NAME, {step kwargs}], ...], "connections": [..per link..],
#                                 "catch": true, "finally": true}'
#        python dispatch_bus.py '{"batch": [[KEY, NAME, {...}] | [[KEY, NAME, {...}], ...] (a chain)], "then": true,
#                                 "catch": true, "finally": true, "allow_failures": false, "name": "Import",
#                                 "adder": [KEY, MORE], "cancel": false}'
import asyncio
import json
import sys

from app import bus_jobs
from bootstrap.application import app
from queue_manager import Bus


def member(spec, connection=None, queue=None):
    key, name, kwargs = spec
    pending = bus_jobs.step.dispatch(key, name, **kwargs)
    if queue:
        pending.on_queue(queue)
    return pending.on_connection(connection) if connection else pending


async def main(spec: dict) -> str:
    manager = app.make("queue.manager")
    try:
        if "chain" in spec:
            connections = spec.get("connections") or [None] * len(spec["chain"])
            chain = Bus.chain([member(link, c) for link, c in zip(spec["chain"], connections, strict=True)])
            if spec.get("catch"):
                chain.catch(bus_jobs.chain_catch)
            if spec.get("finally"):
                chain.finally_(bus_jobs.chain_finally)
            return await chain.dispatch()
        jobs = [
            [member(link) for link in item] if isinstance(item[0], list) else member(item, queue=spec.get("jobs_queue"))
            for item in spec["batch"]
        ]
        if spec.get("adder"):
            jobs.append(bus_jobs.AddsToItsBatch(*spec["adder"]))
        pending = Bus.batch(jobs).name(spec.get("name", ""))
        if spec.get("then"):
            pending.then(bus_jobs.on_then)
        if spec.get("catch"):
            pending.catch(bus_jobs.on_catch)
        if spec.get("finally"):
            pending.finally_(bus_jobs.on_finally)
        if spec.get("allow_failures"):
            pending.allow_failures()
        batch = await pending.dispatch()
        if spec.get("cancel"):
            await batch.cancel()
        return batch.id
    finally:
        await manager.shutdown()


print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))))
