"""Real local clusters on loopback, for the tests of scaling out: NATS JetStream, Redis Sentinel, Redis Cluster,
and a private vhost on the shared RabbitMQ node (for quorum queues).

Every cluster runs as local processes on free loopback ports, in a temp dir of its own under ``tmp_path``; each
process is the leader of its own process group. The context managers stop every process (SIGKILL to the group:
the data is thrown away anyway) and delete the temp dir on the way out, also when the startup fails half-way.
The shared servers on the default ports (6379, 5672, 4222) are never touched, except that ``rabbitmq_vhost``
adds and deletes one uniquely named vhost on the shared RabbitMQ node.

They are plain (sync) context managers so that sync and async tests can use them; what they wait on they poll
with generous deadlines, never with fixed sleeps. A missing executable raises ``MissingBinaryError`` naming it.

    with nats_cluster(tmp_path) as nats:          # nats.urls, nats.url, nats.kill(i), nats.start(i)
    with redis_sentinel(tmp_path) as sentinel:    # .master_name, .sentinels, .master_port(), .kill_master()
    with redis_cluster(tmp_path) as cluster:      # cluster.nodes, cluster.url, cluster.kill(i), cluster.start(i)
    with rabbitmq_vhost() as vhost:               # vhost.name, vhost.url
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

T = TypeVar("T")

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0  # the machine is small and often busy: generous deadlines, polled
DOWN_AFTER_MS = 5000  # how long the sentinels wait before they call a silent server down (see RedisSentinel)
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin", "/sbin", "/bin")
_PORT_CLASH = ("address already in use", "bind: address in use")


class MissingBinaryError(RuntimeError):
    """An executable a cluster needs is not installed."""


class ClusterStartupError(RuntimeError):
    """A cluster process exited, or the cluster did not become ready in time."""


class _PortClash(ClusterStartupError):
    """A port picked as free was taken before the server bound it: the caller retries with new ports."""


def find_binary(name: str, needed_by: str) -> str:
    """The path of executable ``name``, on PATH or in the usual sbin/bin dirs; else ``MissingBinaryError``."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _EXTRA_BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise MissingBinaryError(
        f"{needed_by} needs the '{name}' executable, which is not installed: it is neither on PATH "
        f"({os.environ.get('PATH', '')}) nor in {', '.join(_EXTRA_BIN_DIRS)}."
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free right now (all sockets are held open together, then released)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class ClusterProcess:
    """One server process of a cluster, in its own process group, with its output appended to ``log``."""

    def __init__(self, name: str, command: list[str], log: Path, cwd: Path) -> None:
        self.name, self.command, self.log, self.cwd = name, command, log, cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self.killed = False  # by kill(): its exit is no error

    def start(self) -> None:
        self.killed = False
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the process group (no shutdown at all) and reap it. Does nothing if it is not running."""
        self.killed = True
        popen = self.popen
        if popen is None:
            return
        # Until it is reaped the pid (a zombie at worst) cannot be reused, so the group is still ours.
        if popen.returncode is None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(popen.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=30)

    def output(self, last: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-last:]
        except OSError:
            return ""

    def check(self) -> None:
        """Raise if the process has exited without ``kill()``: ``_PortClash`` when its port was taken meanwhile."""
        if self.killed or self.popen is None or self.popen.poll() is None:
            return
        output = self.output()
        kind = _PortClash if any(clash in output.lower() for clash in _PORT_CLASH) else ClusterStartupError
        raise kind(f"{self.name} exited with code {self.popen.returncode}: {' '.join(self.command)}\n{output}")


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float = STARTUP_TIMEOUT,
    processes: Callable[[], list[ClusterProcess]] = list,
    interval: float = 0.1,
) -> T:
    """Poll ``probe`` until it returns something truthy (exceptions count as "not yet"), checking meanwhile
    that every one of ``processes()`` still runs; ``ClusterStartupError`` with the last error and the logs
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        for process in processes():
            process.check()
        try:
            result = probe()
        except Exception as error:
            last, result = error, None
        if result:
            return result
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name} ({p.log}):\n{p.output(1500)}" for p in processes())
            raise ClusterStartupError(f"{what}: not within {timeout:.0f}s (last error: {last!r})\n{logs}")
        time.sleep(interval)


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30) -> T:
    """Run a coroutine on a fresh event loop in a thread of its own: works from sync code and from inside a
    running loop (an async test) alike."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(asyncio.wait_for(factory(), timeout))
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, name="cluster-probe", daemon=True)
    thread.start()
    thread.join(timeout + 15)
    if thread.is_alive():
        raise TimeoutError(f"the probe did not finish in {timeout + 15:.0f}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _redis(port: int, timeout: float = 3) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: a probe is polled anyway, and redis-py's default retries turn one stuck port into half a minute.
    return redis.Redis(
        host=HOST,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


def _redis_ping(port: int) -> bool:
    with _redis(port) as client:
        return bool(client.ping())


def _info(port: int, section: str) -> dict[str, Any]:
    with _redis(port) as client:
        return dict(client.info(section))


@contextmanager
def _booted(make: Callable[[], Any], attempts: int = 3) -> Iterator[Any]:
    """``make()`` a cluster object and ``_boot()`` it; on a port clash stop it and retry on new ports. The
    cluster is stopped (processes killed, files deleted) whatever happens, startup failures included."""
    for attempt in range(1, attempts + 1):
        cluster = make()
        try:
            started = time.monotonic()
            cluster._boot()
            cluster.startup_seconds = time.monotonic() - started
        except _PortClash:
            cluster.stop()
            if attempt == attempts:
                raise
            continue
        except BaseException:
            cluster.stop()
            raise
        break
    try:
        yield cluster
    finally:
        cluster.stop()


# --------------------------------------------------------------------------------------------- NATS JetStream


class NatsCluster:
    """A NATS cluster with JetStream, one ``nats-server`` per node; node ``i`` is named ``n{i + 1}``."""

    def __init__(self, binary: str, root: Path, nodes: int, name: str, timeout: float) -> None:
        self.binary, self.root, self.name, self.timeout = binary, root, name, timeout
        ports = free_ports(3 * nodes)
        self.ports, self.cluster_ports, self.http_ports = ports[:nodes], ports[nodes : 2 * nodes], ports[2 * nodes :]
        self.server_names = [f"n{i + 1}" for i in range(nodes)]
        self.stores = [root / name for name in self.server_names]
        self.processes = [self._process(i) for i in range(nodes)]
        self.startup_seconds = 0.0

    @property
    def urls(self) -> list[str]:
        return [f"nats://{HOST}:{port}" for port in self.ports]

    @property
    def url(self) -> str:
        return ",".join(self.urls)

    def _process(self, i: int) -> ClusterProcess:
        routes = ",".join(f"nats://{HOST}:{port}" for j, port in enumerate(self.cluster_ports) if j != i)
        command = [self.binary, "-js", "-sd", str(self.stores[i]), "--server_name", self.server_names[i]]
        command += ["-a", HOST, "-p", str(self.ports[i]), "-m", str(self.http_ports[i])]
        command += ["--cluster_name", self.name, "--cluster", f"nats://{HOST}:{self.cluster_ports[i]}"]
        if routes:
            command += ["--routes", routes]
        return ClusterProcess(
            f"nats {self.server_names[i]}", command, self.root / f"{self.server_names[i]}.log", self.root
        )

    def _boot(self) -> None:
        for store in self.stores:
            store.mkdir(parents=True, exist_ok=True)
        for process in self.processes:
            process.start()
        for i in range(len(self.processes)):
            self._wait_joined(i)
        # The meta leader is elected: now retry until a stream with one replica per node can really be made.
        wait_until(
            f"a {len(self.ports)}-replica JetStream stream on NATS cluster {self.name}",
            self._replicated_stream_works,
            self.timeout,
            self._running,
            interval=0.25,
        )

    def _running(self) -> list[ClusterProcess]:
        return self.processes  # killed ones are skipped by their check()

    def _monitor(self, i: int, path: str) -> Any:
        with urllib.request.urlopen(f"http://{HOST}:{self.http_ports[i]}{path}", timeout=3) as response:
            return json.loads(response.read())

    def _joined(self, i: int) -> bool:
        """Node ``i`` has a route to every other running node and JetStream says it is healthy: it knows the meta
        leader, is current with it, and every stream and consumer replica it holds has caught up."""
        others = sum(1 for j, process in enumerate(self.processes) if j != i and process.alive)
        routes = {route.get("remote_id") for route in self._monitor(i, "/routez").get("routes") or []}
        if len(routes) < others:
            return False
        try:
            health = self._monitor(i, "/healthz")
        except urllib.error.HTTPError:  # 503 while JetStream is not current
            return False
        if health.get("status") != "ok":
            return False
        meta = self._monitor(i, "/jsz").get("meta_cluster") or {}
        return bool(meta.get("leader"))

    def _wait_joined(self, i: int) -> None:
        wait_until(
            f"NATS node {self.server_names[i]} joining cluster {self.name}",
            lambda: self._joined(i),
            self.timeout,
            self._running,
        )

    def _replicated_stream_works(self) -> bool:
        import nats
        from nats.js.api import StorageType

        replicas = len(self.ports)
        urls = [url for url, process in zip(self.urls, self.processes, strict=True) if process.alive]

        async def quiet(_: Exception) -> None:
            return None

        async def probe() -> bool:
            client = await nats.connect(servers=urls, connect_timeout=3, allow_reconnect=False, error_cb=quiet)
            name = f"PROBE_{uuid.uuid4().hex[:10]}"
            try:
                js = client.jetstream(timeout=5)
                await js.add_stream(
                    name=name, subjects=[f"probe.{name}"], num_replicas=replicas, storage=StorageType.MEMORY
                )
                await js.publish(f"probe.{name}", b"probe")
                info = await js.stream_info(name)
                return info.state.messages == 1
            finally:
                with suppress(Exception):
                    await client.jetstream(timeout=5).delete_stream(name)
                await client.close()

        return run_coroutine(probe, timeout=20)

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (no shutdown: its JetStream store stays as it was on disk)."""
        self.processes[i].kill()

    def start(self, i: int) -> None:
        """Start node ``i`` again on the same ports and store dir; wait until it has rejoined and caught up."""
        if self.processes[i].alive:
            raise RuntimeError(f"NATS node {self.server_names[i]} is already running")
        self.processes[i] = self._process(i)
        self.processes[i].start()
        self._wait_joined(i)

    def leader_index(self, stream: str) -> int:
        """The index of the node that leads ``stream`` now (asked through any running node)."""
        for i, process in enumerate(self.processes):
            if not process.alive:
                continue
            with suppress(Exception):
                for account in self._monitor(i, "/jsz?streams=true").get("account_details") or []:
                    for detail in account.get("stream_detail") or []:
                        leader = (detail.get("cluster") or {}).get("leader")
                        if detail.get("name") == stream and leader in self.server_names:
                            return self.server_names.index(leader)
        raise LookupError(f"no running node of NATS cluster {self.name} knows a leader for stream {stream!r}")

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def nats_cluster(tmp_path: Path, nodes: int = 3, timeout: float = STARTUP_TIMEOUT) -> Iterator[NatsCluster]:
    """A ``nodes``-node NATS cluster with JetStream on free loopback ports, ready once a ``nodes``-replica stream
    can be created (the meta leader is elected). Yields ``urls``, ``url`` (comma-joined), ``kill(i)``,
    ``start(i)`` and ``stop()``; each node also has an HTTP monitoring port (``http_ports``)."""
    binary = find_binary("nats-server", "nats_cluster")

    def make() -> NatsCluster:
        root = Path(tempfile.mkdtemp(prefix="nats-cluster-", dir=tmp_path))
        return NatsCluster(binary, root, nodes, f"c{uuid.uuid4().hex[:8]}", timeout)

    with _booted(make) as cluster:
        yield cluster


# --------------------------------------------------------------------------------------------- Redis Sentinel


class RedisSentinel:
    """A Redis master, one replica and three sentinels watching them under ``master_name``."""

    def __init__(self, binary: str, root: Path, master_name: str, timeout: float) -> None:
        self.binary, self.root, self.master_name, self.timeout = binary, root, master_name, timeout
        ports = free_ports(5)
        self.redis_ports, self.sentinel_ports = ports[:2], ports[2:]
        self.sentinels: list[tuple[str, int]] = [(HOST, port) for port in self.sentinel_ports]
        self.servers: dict[int, ClusterProcess] = {}
        self.sentinel_processes: list[ClusterProcess] = []
        self.startup_seconds = 0.0

    @property
    def processes(self) -> list[ClusterProcess]:
        """Every process started so far: the Redis servers, then the sentinels."""
        return [*self.servers.values(), *self.sentinel_processes]

    def _all(self) -> list[ClusterProcess]:
        return self.processes

    def _server(self, port: int, *extra: str) -> ClusterProcess:
        command = [self.binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.root), "--dbfilename", f"dump-{port}.rdb", *extra]
        return ClusterProcess(f"redis {port}", command, self.root / f"redis-{port}.log", self.root)

    def _sentinel(self, port: int, master_port: int) -> ClusterProcess:
        config = self.root / f"sentinel-{port}.conf"  # sentinels rewrite their config file: each has its own
        # down-after is kept well above the sentinels' 1 s PING period. At 1000 ms a CI run saw two sentinels
        # call the just-promoted master down within a second of its promotion (a promotion drops the other
        # sentinels' links to it with CLIENT KILL, and a busy machine is slow to answer) and fail over again, to
        # the old master as it restarted.
        config.write_text(
            f"port {port}\nbind {HOST}\ndir {self.root}\ndaemonize no\n"
            f"sentinel monitor {self.master_name} {HOST} {master_port} 2\n"
            f"sentinel down-after-milliseconds {self.master_name} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {self.master_name} 5000\n"
            f"sentinel parallel-syncs {self.master_name} 1\n"
        )
        return ClusterProcess(
            f"sentinel {port}", [self.binary, str(config), "--sentinel"], self.root / f"sentinel-{port}.log", self.root
        )

    def _boot(self) -> None:
        master, replica = self.redis_ports
        # No 5 s diskless-sync delay before the replica (and, after a failover, the old master) gets its copy.
        self.servers[master] = self._server(master, "--repl-diskless-sync-delay", "0")
        self.servers[master].start()
        wait_until(f"redis master {master}", lambda: _redis_ping(master), self.timeout, self._all)
        self.servers[replica] = self._server(
            replica, "--replicaof", HOST, str(master), "--repl-diskless-sync-delay", "0"
        )
        self.servers[replica].start()
        wait_until(
            f"redis replica {replica} in sync with {master}",
            lambda: _info(replica, "replication").get("master_link_status") == "up",
            self.timeout,
            self._all,
        )
        for port in self.sentinel_ports:
            self.sentinel_processes.append(self._sentinel(port, master))
            self.sentinel_processes[-1].start()
        for port in self.sentinel_ports:
            wait_until(
                f"sentinel {port} knowing master {master}, replica {replica} and the other sentinels",
                lambda port=port: self._sentinel_ready(port, master, replica),  # type: ignore[misc]
                self.timeout,
                self._all,
                interval=0.2,
            )

    def _sentinel_ready(self, port: int, master: int, replica: int) -> bool:
        with _redis(port) as client:
            state = client.sentinel_master(self.master_name)
            if int(state["port"]) != master or state["flags"] != "master":
                return False
            if int(state.get("num-other-sentinels", 0)) < len(self.sentinel_ports) - 1:
                return False
            replicas = client.sentinel_slaves(self.master_name)
            if not any(
                int(r["port"]) == replica and r.get("master-link-status") == "ok" and not r.get("is_sdown")
                for r in replicas
            ):
                return False
            # Raises NOQUORUM unless enough sentinels are reachable to reach the quorum and authorize a
            # failover (redis-py turns its "OK 3 usable Sentinels..." answer into False: only the error counts).
            client.sentinel_ckquorum(self.master_name)
            return True

    def _ask(self, port: int) -> int:
        with _redis(port) as client:
            address = client.sentinel_get_master_addr_by_name(self.master_name)
        return int(address[1])

    def master_port(self) -> int:
        """The port of the master now, as the first sentinel that answers reports it."""
        errors: list[str] = []
        for port in self.sentinel_ports:
            try:
                return self._ask(port)
            except Exception as error:
                errors.append(f"{port}: {error!r}")
        raise ClusterStartupError(f"no sentinel of {self.master_name} answered: {'; '.join(errors)}")

    def replica_ports(self) -> list[int]:
        """The ports of the replicas the sentinels know now (killed ones included, until they are forgotten)."""
        for port in self.sentinel_ports:
            with suppress(Exception), _redis(port) as client:
                return [int(r["port"]) for r in client.sentinel_slaves(self.master_name)]
        return []

    def wait_replicated(self, timeout: float | None = None) -> None:
        """Wait until every replica has acknowledged everything the master has written so far. Replication is
        asynchronous: a master killed before that takes its last writes with it."""
        master = self.master_port()
        written = int(_info(master, "replication")["master_repl_offset"])

        def caught_up() -> bool:
            info = _info(master, "replication")
            replicas = [value for key, value in info.items() if key.startswith("slave") and isinstance(value, dict)]
            return bool(replicas) and all(int(replica["offset"]) >= written for replica in replicas)

        wait_until(
            f"the replicas of redis {master} acknowledging its writes (offset {written})",
            caught_up,
            timeout or self.timeout,
            self._all,
        )

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        port = self.master_port()
        self.servers[port].kill()
        return port

    def kill(self, port: int) -> None:
        """SIGKILL the Redis server (master or replica) on ``port``."""
        self.servers[port].kill()

    def start(self, port: int) -> None:
        """Start the killed Redis server on ``port`` again, as a replica of the current master (nothing persists: it
        comes back empty, so it must not come back as a master); wait until it is in sync and every sentinel
        lists it as a healthy replica."""
        if self.servers[port].alive:
            raise RuntimeError(f"redis {port} is already running")
        master = self.master_port()
        if master == port:
            raise RuntimeError(f"the sentinels still report {port} as the master: wait_failover() first")
        self.servers[port] = self._server(port, "--replicaof", HOST, str(master), "--repl-diskless-sync-delay", "0")
        self.servers[port].start()
        wait_until(
            f"redis {port} in sync with {master}",
            lambda: _info(port, "replication").get("master_link_status") == "up",
            self.timeout,
            self._all,
        )

        def listed(sentinel: int) -> bool:
            with _redis(sentinel) as client:
                return any(
                    int(r["port"]) == port and r.get("master-link-status") == "ok" and r["flags"] == "slave"
                    for r in client.sentinel_slaves(self.master_name)
                )

        for sentinel in self.sentinel_ports:
            wait_until(
                f"sentinel {sentinel} seeing redis {port} as a replica of {master}",
                lambda sentinel=sentinel: listed(sentinel),  # type: ignore[misc]
                self.timeout,
                self._all,
                interval=0.2,
            )

    def failover(self) -> int:
        """``SENTINEL FAILOVER``: the master is demoted to a replica while it runs (its blocked clients get
        ``-UNBLOCKED``), and the replica promoted; returns the old master's port (then ``wait_failover`` it)."""
        port = self.master_port()
        with _redis(self.sentinel_ports[0]) as client:
            client.execute_command("SENTINEL", "FAILOVER", self.master_name)
        return port

    def wait_failover(self, old_port: int, timeout: float = 60) -> int:
        """Wait until every sentinel reports a master other than ``old_port`` (the same one), and that server
        says it is a master; returns its port."""

        def promoted() -> int | None:
            reported = {self._ask(port) for port in self.sentinel_ports}
            if len(reported) != 1 or old_port in reported:
                return None
            (new,) = reported
            with _redis(new) as client:
                role = client.execute_command("ROLE")
            return new if role[0] == "master" else None

        return wait_until(
            f"sentinels of {self.master_name} failing over from {old_port}",
            promoted,
            timeout,
            lambda: self.sentinel_processes,
            interval=0.2,
        )

    def stop(self) -> None:
        for process in [*self.sentinel_processes, *self.servers.values()]:
            process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def redis_sentinel(
    tmp_path: Path, master_name: str = "queue-master", timeout: float = STARTUP_TIMEOUT
) -> Iterator[RedisSentinel]:
    """A Redis master, a replica (``--replicaof``) and three sentinels (quorum 2, down after ``DOWN_AFTER_MS``),
    ready once every sentinel knows the master, the replica and the two other sentinels. Yields
    ``master_name``, ``sentinels`` (``(host, port)`` pairs), ``master_port()``, ``replica_ports()``,
    ``wait_replicated()``, ``kill_master()``, ``wait_failover(old_port)``, ``start(port)`` and ``stop()``."""
    binary = find_binary("redis-server", "redis_sentinel")

    def make() -> RedisSentinel:
        return RedisSentinel(
            binary, Path(tempfile.mkdtemp(prefix="redis-sentinel-", dir=tmp_path)), master_name, timeout
        )

    with _booted(make) as sentinel:
        yield sentinel


# ---------------------------------------------------------------------------------------------- Redis Cluster


class RedisClusterNodes:
    """``masters`` Redis servers in cluster mode, the 16384 slots split between them, no replicas."""

    def __init__(self, server: str, cli: str, root: Path, masters: int, node_timeout: int, timeout: float) -> None:
        self.server, self.cli, self.root, self.node_timeout, self.timeout = server, cli, root, node_timeout, timeout
        ports = free_ports(2 * masters)  # a client port and a cluster bus port (not port + 10000) per node
        self.ports, self.bus_ports = ports[:masters], ports[masters:]
        self.nodes: list[tuple[str, int]] = [(HOST, port) for port in self.ports]
        self.processes = [self._process(i) for i in range(masters)]
        self.startup_seconds = 0.0

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.ports[0]}"

    @property
    def urls(self) -> list[str]:
        return [f"redis://{HOST}:{port}" for port in self.ports]

    def _process(self, i: int) -> ClusterProcess:
        port = self.ports[i]
        command = [self.server, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
        command += ["--cluster-port", str(self.bus_ports[i]), "--cluster-node-timeout", str(self.node_timeout)]
        command += ["--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(self.root)]
        command += ["--dbfilename", f"dump-{port}.rdb"]
        return ClusterProcess(f"redis cluster node {port}", command, self.root / f"redis-{port}.log", self.root)

    def _running(self) -> list[ClusterProcess]:
        return self.processes  # killed ones are skipped by their check()

    def _boot(self) -> None:
        for process in self.processes:
            process.start()
        for port in self.ports:
            wait_until(f"redis cluster node {port}", lambda port=port: _redis_ping(port), self.timeout, self._running)  # type: ignore[misc]
        command = [self.cli, "--cluster", "create", *(f"{HOST}:{port}" for port in self.ports)]
        command += ["--cluster-replicas", "0", "--cluster-yes"]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=self.timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as error:
            raise ClusterStartupError(f"{' '.join(command)} did not finish in {self.timeout:.0f}s") from error
        if done.returncode != 0:
            raise ClusterStartupError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        self.wait_ok()

    def _ok(self, port: int) -> bool:
        info = _info_cluster(port)
        return (
            info.get("cluster_state") == "ok"
            and info.get("cluster_slots_ok") == "16384"
            and info.get("cluster_known_nodes") == str(len(self.ports))
        )

    def wait_ok(self, timeout: float | None = None) -> None:
        """Wait until every running node says ``cluster_state:ok``, knows every node and sees all slots served."""
        for process, port in zip(self.processes, self.ports, strict=True):
            if process.alive:
                wait_until(
                    f"cluster_state:ok on redis cluster node {port}",
                    lambda port=port: self._ok(port),  # type: ignore[misc]
                    timeout or self.timeout,
                    self._running,
                )

    def slot_owner(self, slot: int) -> int:
        """The port of the node serving hash slot ``slot`` (as the first running node reports it)."""
        for process, port in zip(self.processes, self.ports, strict=True):
            if not process.alive:
                continue
            with _redis(port) as client:
                for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                    if int(start) <= slot <= int(end):
                        return int(master[1])
        raise LookupError(f"no running node serves slot {slot}")

    def kill(self, i: int) -> None:
        """SIGKILL node ``i``; with no replicas its slots go unserved (``cluster_state:fail`` once detected)."""
        self.processes[i].kill()

    def start(self, i: int) -> None:
        """Start node ``i`` again (same ports and nodes-<port>.conf: same node id and slots, but its keys are gone:
        nothing is persisted); wait until every node says ``cluster_state:ok`` again."""
        if self.processes[i].alive:
            raise RuntimeError(f"redis cluster node {self.ports[i]} is already running")
        self.processes[i] = self._process(i)
        self.processes[i].start()
        self.wait_ok()

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _info_cluster(port: int) -> dict[str, str]:
    with _redis(port) as client:
        raw = client.execute_command("CLUSTER INFO")
    if isinstance(raw, dict):  # redis-py parses CLUSTER INFO itself
        return {str(key): str(value) for key, value in raw.items()}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@contextmanager
def redis_cluster(
    tmp_path: Path, masters: int = 3, node_timeout: int = 5000, timeout: float = STARTUP_TIMEOUT
) -> Iterator[RedisClusterNodes]:
    """``masters`` Redis servers in cluster mode joined by ``redis-cli --cluster create`` (no replicas), ready once
    every node says ``cluster_state:ok``. Yields ``nodes`` (``(host, port)`` pairs), ``url`` (the first node),
    ``urls``, ``slot_owner(slot)``, ``kill(i)``, ``start(i)`` and ``stop()``."""
    server = find_binary("redis-server", "redis_cluster")
    cli = find_binary("redis-cli", "redis_cluster")

    def make() -> RedisClusterNodes:
        root = Path(tempfile.mkdtemp(prefix="redis-cluster-", dir=tmp_path))
        return RedisClusterNodes(server, cli, root, masters, node_timeout, timeout)

    with _booted(make) as cluster:
        yield cluster


# ------------------------------------------------------------------------------------------ RabbitMQ vhost


class RabbitVhost:
    """A vhost of its own on the shared RabbitMQ node, where guest may do everything."""

    def __init__(self, ctl: str, name: str, host: str, port: int, user: str, password: str) -> None:
        self.ctl, self.name, self.host, self.port, self.user, self.password = ctl, name, host, port, user, password
        self.startup_seconds = 0.0

    @property
    def url(self) -> str:
        return f"amqp://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}/" + quote(
            self.name, safe=""
        )

    def rabbitmqctl(self, *args: str, timeout: float = 60) -> str:
        """Run ``rabbitmqctl <args>`` (``-q``); its output, or ``ClusterStartupError`` with it."""
        command = [self.ctl, "-q", *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as error:
            raise ClusterStartupError(f"{' '.join(command)} did not finish in {timeout:.0f}s") from error
        if done.returncode != 0:
            raise ClusterStartupError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def queues(self) -> dict[str, dict[str, str]]:
        """The vhost's queues by name: ``{"type": ..., "messages": ...}`` as rabbitmqctl reports them."""
        output = self.rabbitmqctl("list_queues", "-p", self.name, "--no-table-headers", "name", "type", "messages")
        rows = (line.split("\t") for line in output.splitlines() if line.strip())
        return {row[0]: {"type": row[1], "messages": row[2]} for row in rows if len(row) >= 3}


@contextmanager
def rabbitmq_vhost(
    prefix: str = "qtest-", host: str = HOST, port: int = 5672, user: str = "guest", password: str = "guest"
) -> Iterator[RabbitVhost]:
    """Add a uniquely named vhost to the shared RabbitMQ node, give ``user`` every permission on it, and delete it
    (with everything in it) afterwards. Yields ``name`` and ``url`` (the vhost percent-encoded)."""
    ctl = find_binary("rabbitmqctl", "rabbitmq_vhost")
    vhost = RabbitVhost(ctl, f"{prefix}{uuid.uuid4().hex[:12]}", host, port, user, password)
    started = time.monotonic()
    try:
        vhost.rabbitmqctl("add_vhost", vhost.name)
        vhost.rabbitmqctl("set_permissions", "-p", vhost.name, user, ".*", ".*", ".*")
        vhost.startup_seconds = time.monotonic() - started
        yield vhost
    except BaseException:
        # Also when add_vhost timed out after all; an error deleting it must not hide the first error.
        with suppress(Exception):
            _delete_vhost(vhost)
        raise
    _delete_vhost(vhost)


def _delete_vhost(vhost: RabbitVhost) -> None:
    try:
        vhost.rabbitmqctl("delete_vhost", vhost.name)
    except ClusterStartupError as error:
        if "does not exist" not in str(error):
            raise
