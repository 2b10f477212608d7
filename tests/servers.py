"""Private broker servers on other loopback ports, for tests that must stop and restart a server.

The shared servers on the default ports are never touched.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, up: bool, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} did not go {'up' if up else 'down'} in {timeout}s")
        time.sleep(0.05)


class PrivateServer:
    def __init__(self, command: list[str], port: int, log: Path) -> None:
        self.command, self.port, self.log = command, port, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with suppress(TimeoutError):
            wait_port(self.port, up=False, timeout=5)

    def restart(self, pause: float = 1.0) -> None:
        self.stop()
        time.sleep(pause)
        self.start()


@contextmanager
def private_redis(tmp_path: Path) -> Iterator[PrivateServer]:
    port = free_port()
    server = PrivateServer(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        port,
        tmp_path / "redis.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def private_nats(tmp_path: Path) -> Iterator[PrivateServer]:
    port = free_port()
    store = tmp_path / "jetstream"
    store.mkdir()
    server = PrivateServer(
        ["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)], port, tmp_path / "nats.log"
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
