# The seed guide's app/tasks.py, plus a task that records its run (tests count what ran).
import os

from bootstrap.broker import broker


@broker.task
async def send_welcome_email(user_id: int) -> str:
    # ... do the work, e.g. load the user and send mail ...
    return f"welcomed {user_id}"


@broker.task
async def record(job_id: int) -> int:
    """Append the job id to $RECORD_FILE so a test can count what really ran."""
    path = os.environ["RECORD_FILE"]
    with open(path, "a") as handle:
        handle.write(f"{job_id}\n")
    return job_id
