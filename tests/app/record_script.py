# Dispatch N `record` jobs (ids FIRST..FIRST+N-1) from a script, the seed's way, and exit.
import asyncio
import sys

from app.tasks import record
from bootstrap.broker import broker


async def main(first: int, count: int) -> None:
    await broker.startup()
    try:
        for job_id in range(first, first + count):
            await record.kiq(job_id)
    finally:
        await broker.shutdown()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
