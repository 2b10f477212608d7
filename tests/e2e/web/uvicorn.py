"""The example app (tests/app, ``bootstrap.application:app``) under a real uvicorn, for the web e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.helpers import PYTHON, SEED_APP, clean_environ, wait_for
from tests.servers import free_port


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def uvicorn(env: Mapping[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start it on a free port; yields its URL and process (which may have exited: a refused boot), and stops it."""
    port = free_port()
    argv = [PYTHON, "-m", "uvicorn", "bootstrap.application:app.fastapi", "--log-level", "warning"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*argv, "--host", "127.0.0.1", "--port", str(port)],
            cwd=SEED_APP,
            env=clean_environ(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the app answers its health route (the servers it checks are up)."""
    up = wait_for(lambda: answers(f"{url}/queue/health") or process.poll() is not None, timeout=90)
    assert up and process.poll() is None, log.read_text()
