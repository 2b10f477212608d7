"""The README's "A whole small app, end to end", built from its own code blocks in a fresh directory and run as a
new user would: the framework's server, a real `queue:work`, and a POST to the route."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from redis import Redis

from tests.helpers import PYTHON, ROOT, WorkerProcess, clean_environ, unique, wait_for
from tests.servers import free_port

pytestmark = pytest.mark.e2e


def readme_app(target: Path) -> list[str]:
    """Write every block of the README whose first line is ``# myapp/<path>``; returns the paths written."""
    section = (ROOT / "README.md").read_text().split("## A whole small app, end to end", 1)[1].split("\n## ", 1)[0]
    written = []
    for block in re.findall(r"```(?:python|bash)\n(.*?)```", section, flags=re.S):
        first, _, body = block.partition("\n")
        match = re.match(r"# myapp/(\S+)", first)
        if match:
            path = target / match.group(1)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
            written.append(match.group(1))
    for package in ("app", "app/http", "bootstrap"):
        (target / package / "__init__.py").touch()
    return written


def test_the_readme_app_serves_a_route_that_queues_a_job_a_worker_runs(tmp_path: Path) -> None:
    app = tmp_path / "myapp"
    written = readme_app(app)
    assert {"bootstrap/application.py", "app/jobs.py", "app/http/routes.py", "artisan", ".env"} <= set(written)
    prefix = f"{unique('readme')}:"
    port = free_port()
    env = clean_environ({"QUEUE_CONNECTIONS__REDIS__OPTIONS__PREFIX": prefix, "APP_RELOAD": "false"})
    server = subprocess.Popen(
        [PYTHON, "artisan", "serve", "--port", str(port)],
        cwd=app,
        env=env,
        stdout=(tmp_path / "serve.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = WorkerProcess(
        env={"QUEUE_CONNECTIONS__REDIS__OPTIONS__PREFIX": prefix},
        cwd=app,
        log=tmp_path / "worker.log",
        command=[PYTHON, "artisan", "queue:work", "--queue=emails"],
    )
    try:
        worker.wait_ready()
        url = f"http://127.0.0.1:{port}/users/42/welcome"

        def post() -> dict[str, str] | None:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as answer:
                    return dict(json.loads(answer.read()))
            except OSError:
                return None

        deadline = time.monotonic() + 60
        body = post()
        while body is None and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
            body = post()
        assert body is not None, (tmp_path / "serve.log").read_text()
        assert body["queued"] and body["reminder"]
        assert wait_for(lambda: "app.jobs:send_welcome_email" in worker.output() and "DONE" in worker.output(), 60), (
            worker.output()
        )
    finally:
        worker.stop()
        server.terminate()
        server.wait(timeout=30)
        with Redis.from_url("redis://127.0.0.1:6379/0") as redis:
            keys = list(redis.scan_iter(f"{prefix}*"))
            if keys:
                redis.delete(*keys)
