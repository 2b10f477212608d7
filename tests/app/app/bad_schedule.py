# A schedule with a cron expression TaskIQ cannot run: queue:schedule refuses it at start.
from queue_manager import task


@task(schedule=[{"cron": "61 * * * *"}])
async def never() -> None:
    return None
