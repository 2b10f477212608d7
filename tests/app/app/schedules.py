# For the queue:schedule tests: $SCHEDULE (a JSON list) is the schedule of `beat`, so one module serves every
# case, good and bad. Each run appends the tick it was sent for and the scheduled time to $RECORD_DIR/beats.
import json
import os
import time

from taskiq import Context, TaskiqDepends

from queue_manager import task


@task(schedule=json.loads(os.environ.get("SCHEDULE", "[]")))
async def beat(context: Context = TaskiqDepends()) -> None:
    labels = context.message.labels
    with open(os.path.join(os.environ["RECORD_DIR"], "beats"), "a") as handle:
        handle.write(f"{labels.get('scheduled_for')} {labels.get('schedule_id')} {time.time():.3f}\n")
