# tests/test_job_classes_example.py: an app's own tests of its job classes, with the plugin's fixtures
# (.env.testing sets QUEUE_DRIVER=memory: no server, jobs run before dispatch returns).
from app.job_classes import Address, Interacts, SendWelcomeEmail, User


async def test_signup_queues_the_welcome_email(queue_fake):
    await SendWelcomeEmail.dispatch(42, User(id=42, email="ada@example.com"), Address(city="Lyon"))

    queue_fake.assert_pushed(SendWelcomeEmail, times=1, where=lambda job: job.user.email == "ada@example.com")
    queue_fake.assert_not_pushed(SendWelcomeEmail, where=lambda job: job.user_id == 7)
    queue_fake.assert_not_pushed(Interacts)


async def test_a_job_class_runs_in_process(queue, tmp_path, monkeypatch):
    monkeypatch.setenv("RECORD_DIR", str(tmp_path))
    handle = await SendWelcomeEmail.dispatch(7)
    result = await handle.wait_result(timeout=1)
    assert result.return_value == "welcomed 7"


async def test_a_job_that_is_not_done_releases_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("RECORD_DIR", str(tmp_path))
    job = Interacts("report", "release", delay=30).with_fake_queue_interactions()
    await job.handle()
    job.assert_released(30)
    job.assert_not_failed()
