"""Private broker servers on other loopback ports, for tests that must stop and restart a server.

The shared servers on the default ports are never touched.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any


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


def terminate(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM a server we started, SIGKILL it if it has not gone within ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PrivateServer:
    def __init__(self, command: list[str], port: int, log: Path) -> None:
        self.command, self.port, self.log = command, port, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.port, up=True)

    def stop(self) -> None:
        terminate(self.process)
        with suppress(TimeoutError):
            wait_port(self.port, up=False, timeout=5)

    def restart(self, pause: float = 1.0) -> None:
        self.stop()
        time.sleep(pause)
        self.start()


@contextmanager
def private_redis(tmp_path: Path, *options: str) -> Iterator[PrivateServer]:
    """``options``: more redis-server arguments (``--requirepass``, ``--user``, ...)."""
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
            *options,
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
def private_nats(tmp_path: Path, *options: str) -> Iterator[PrivateServer]:
    """``options``: more nats-server arguments (``--user``, ``--pass``, ...)."""
    port = free_port()
    store = tmp_path / "jetstream"
    store.mkdir()
    command = ["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store), *options]
    server = PrivateServer(command, port, tmp_path / "nats.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port: trust auth, no fsync, one database.

    PostgreSQL refuses to run as root, so when the tests run as root its processes run as the ``postgres``
    user, in a temp dir of its own (pytest's tmp dirs are private to root).
    """

    READY = "database system is ready to accept connections"

    def __init__(self, root: Path, port: int, database: str, user: str = "postgres") -> None:
        self.root, self.port, self.database, self.user = root, port, database, user
        self.data, self.log = root / "data", root / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _as_user(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        return {"user": self.user, "group": pwd.getpwnam(self.user).pw_gid, "extra_groups": []}

    def _run(self, command: list[str], stdin: bytes | None = None) -> None:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=120, cwd=self.root, **self._as_user())
        if done.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({done.returncode}): {(done.stdout + done.stderr).decode()[-2000:]}"
            )

    def init(self) -> None:
        binary = shutil.which("initdb") or "/usr/local/bin/initdb"
        self._run(
            [binary, "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
        )
        # Single-user mode creates the database before the server listens: no client library needed.
        postgres = shutil.which("postgres") or "/usr/local/bin/postgres"
        self._run(
            [postgres, "--single", "-D", str(self.data), "postgres"], f"CREATE DATABASE {self.database};\n".encode()
        )

    def start(self, timeout: float = 60) -> None:
        postgres = shutil.which("postgres") or "/usr/local/bin/postgres"
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        command = [postgres, "-D", str(self.data), "-p", str(self.port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root, **self._as_user()
            )
        deadline = time.monotonic() + timeout
        while not (self.READY in self.log.read_text(errors="replace") and port_open(self.port)):
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"postgres was not ready in {timeout}s: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: SIGTERM would wait for every client
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with suppress(TimeoutError):
            wait_port(self.port, up=False, timeout=5)


@contextmanager
def private_postgres(database: str = "tests") -> Iterator[PrivatePostgres]:
    """initdb, create ``database``, start on a free port; stop and delete everything afterwards."""
    root = Path(tempfile.mkdtemp(prefix="private-postgres-"))
    try:
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(root, account.pw_uid, account.pw_gid)
        server = PrivatePostgres(root, free_port(), database)
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class PrivateMariaDB:
    """A throwaway MariaDB on a free loopback port: ``root`` without a password, one database, no binlog.

    ``mariadbd`` drops to the ``mysql`` user itself (``--user``); the database is created by ``--init-file``
    at startup, so no client library is needed.
    """

    READY = "ready for connections"

    def __init__(self, root: Path, port: int, database: str) -> None:
        self.root, self.port, self.database = root, port, database
        self.data, self.log = root / "data", root / "mariadb.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql+aiomysql://root@127.0.0.1:{self.port}/{self.database}"

    def init(self) -> None:
        install = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        command = [install, "--no-defaults", f"--datadir={self.data}", "--auth-root-authentication-method=normal"]
        command += ["--skip-test-db", "--skip-name-resolve", *self._user()]
        done = subprocess.run(command, capture_output=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {(done.stdout + done.stderr).decode()[-2000:]}")
        (self.root / "init.sql").write_text(f"CREATE DATABASE IF NOT EXISTS {self.database};\n")

    def _user(self) -> list[str]:
        return ["--user=mysql"] if os.geteuid() == 0 else []

    def start(self, timeout: float = 60) -> None:
        server = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        command = [
            server,
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.root / 'mariadb.sock'}",
            f"--pid-file={self.root / 'mariadb.pid'}",
            f"--init-file={self.root / 'init.sql'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",
            *self._user(),
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + timeout
        while not (self.READY in self.log.read_text(errors="replace") and port_open(self.port)):
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"mariadbd was not ready in {timeout}s: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.process, timeout=30)
        with suppress(TimeoutError):
            wait_port(self.port, up=False, timeout=5)


@contextmanager
def private_mariadb(database: str = "tests") -> Iterator[PrivateMariaDB]:
    """mariadb-install-db, start on a free port with ``database``; stop and delete everything afterwards."""
    root = Path(tempfile.mkdtemp(prefix="private-mariadb-"))
    try:
        if os.geteuid() == 0:
            account = pwd.getpwnam("mysql")
            os.chown(root, account.pw_uid, account.pw_gid)
        server = PrivateMariaDB(root, free_port(), database)
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


class TcpProxy:
    """A TCP proxy on a free loopback port in front of a server, to play a network partition.

    ``black_hole()`` keeps every connection open (and accepts new ones) but stops forwarding bytes both
    ways, as a partition where TCP stays up and nothing answers; ``heal()`` forwards again, bytes held
    meanwhile included (TCP retransmits them after a real partition). Runs its own event loop in a thread,
    so sync and async tests can use it.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._loop: Any = None
        self._gate: Any = None
        self._stopping: Any = None
        self._thread: Any = None
        self._writers: set[Any] = set()
        self._handlers: set[Any] = set()
        self.sent = bytearray()  # every byte clients sent through the proxy, to check what went over the wire

    def start(self) -> None:
        import asyncio
        import threading

        ready = threading.Event()

        async def main() -> None:
            self._gate, self._stopping = asyncio.Event(), asyncio.Event()
            self._gate.set()
            server = await asyncio.start_server(self._connected, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            await self._stopping.wait()
            server.close()
            self._gate.set()
            for writer in list(self._writers):
                writer.close()
            await asyncio.gather(*self._handlers, return_exceptions=True)

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(main())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="tcp-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise TimeoutError("the TCP proxy did not start")

    async def _connected(self, reader: Any, writer: Any) -> None:
        import asyncio

        current = asyncio.current_task()
        self._handlers.add(current)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            self._handlers.discard(current)
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer, self.sent), self._pipe(upstream_reader, writer), return_exceptions=True
        )
        for each in (writer, upstream_writer):
            self._writers.discard(each)
            each.close()
        self._handlers.discard(current)

    async def _pipe(self, reader: Any, writer: Any, record: bytearray | None = None) -> None:
        try:
            while data := await reader.read(65536):
                if record is not None:
                    record.extend(data)
                await self._gate.wait()  # black-holed: hold the bytes (and stop reading) until healed
                if self._stopping.is_set():
                    break
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def black_hole(self) -> None:
        self._loop.call_soon_threadsafe(self._gate.clear)

    def heal(self) -> None:
        self._loop.call_soon_threadsafe(self._gate.set)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)


@contextmanager
def tcp_proxy(target_port: int, target_host: str = "127.0.0.1") -> Iterator[TcpProxy]:
    """A ``TcpProxy`` in front of ``target_host:target_port`` for the duration of the block."""
    proxy = TcpProxy(target_port, target_host)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


class PrivateUnixRedis:
    """A redis-server listening only on a unix socket (``--port 0``), in a short temp dir of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self, timeout: float = 20) -> None:
        command = ["redis-server", "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server on {self.socket} did not start: {(self.root / 'redis.log').read_text()}"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(str(self.socket))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def stop(self) -> None:
        terminate(self.process)


@contextmanager
def private_unix_redis() -> Iterator[PrivateUnixRedis]:
    """A private redis-server on a unix socket (the path stays short: sockets are limited to ~100 bytes)."""
    root = Path(tempfile.mkdtemp(prefix="qredis-"))
    server = PrivateUnixRedis(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
