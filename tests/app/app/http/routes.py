# Dispatch from a FastAPI route, as the seed's users_controller does.
from bootstrap.application import app


@app.fastapi.post("/users/{user_id}/welcome")
async def store(user_id: int) -> dict[str, str]:
    from app.tasks import send_welcome_email

    task = await send_welcome_email.kiq(user_id)
    result = await task.wait_result(timeout=20)
    return {"task_id": task.task_id, "result": result.return_value}
