# Dispatch a batch of one quick job whose `then` is callback_jobs.slow_then, as an app would; print its id.
# Run with cwd tests/app and PYTHONPATH holding tests/app and tests/e2e/bus.
import asyncio
import json

from app import bus_jobs
from bootstrap.application import app
from callback_jobs import slow_then

from queue_manager import Bus


async def main() -> str:
    manager = app.make("queue.manager")
    try:
        batch = await Bus.batch([bus_jobs.step.dispatch("b", "only")]).then(slow_then).dispatch()
        return batch.id
    finally:
        await manager.shutdown()


print(json.dumps(asyncio.run(main())))
