# tests/test_queue_example.py: an app's own tests, with the fixtures of fastapi-startkit-queue's pytest plugin.
# .env.testing sets QUEUE_DRIVER=memory, so no server is needed and jobs run before dispatch returns.
from app.jobs import remember, send_email
from app.tasks import send_welcome_email
from queue_manager import dispatch


async def test_a_job_runs_in_process(queue):
    handle = await send_welcome_email.kiq(42)
    result = await handle.wait_result(timeout=1)
    assert result.return_value == "welcomed 42"


async def test_signup_queues_the_welcome_email(queue_fake):
    await dispatch(send_email, 7).on_connection("rabbitmq").delay(60)

    queue_fake.assert_pushed(send_email, times=1, connection="rabbitmq", where=lambda job: job.args == (7,))
    queue_fake.assert_pushed_on("emails", send_email)
    queue_fake.assert_not_pushed(remember)
    assert queue_fake.pushed(send_email)[0].delay > 55
