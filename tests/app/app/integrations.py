# taskiq-fastapi on every connection: a task can ask for the FastAPI Request, whichever worker runs it.
from fastapi import Request
from taskiq import TaskiqDepends

from bootstrap.application import app
from queue_manager import task

try:
    import taskiq_fastapi
except ImportError:  # the integration is optional for the example app
    taskiq_fastapi = None

if taskiq_fastapi is not None:
    app.make("queue.manager").each_broker(lambda broker: taskiq_fastapi.init(broker, app.fastapi))


@task
async def which_app(request: Request = TaskiqDepends()) -> str:
    return str(request.app.title)
