"""Real Redis topologies for the tests and the benchmarks, started from the
machine's `redis-server` and `redis-cli` in temporary directories, on free
ports, bound to 127.0.0.1:

    SentinelTopology   one primary, one replica, three sentinels
    ClusterTopology    three primaries (with a replica each, by default)
    SingleRedis        one primary, on plain TCP or only on TLS (certificates
                       made by make_tls_files() with `openssl`)

Sentinel and Cluster run over TLS too when given the TlsFiles. Helpers:
SentinelTopology.kill_primary / wait_for_new_primary / restart_as_replica;
ClusterTopology.graceful_failover / kill_primary / restart / move_slots /
wait_ok; Node.kill (SIGKILL), pause/resume (SIGSTOP: a hung server). Probe
runs a loop of calls in a thread, records every failure and checks that each
acknowledged write survived. The pytest fixtures are in tests/topologies/conftest.py;
bench/topologies.py and bench/memory.py start them too.

Each is a context manager: entering starts every process and waits until the
topology is usable; leaving (or a failure half-way through starting) stops
every process it started. An atexit hook kills whatever a crashed test run
left behind. Nothing here touches the machine's own Redis on 6379.

Every wait is on a condition (dev.waiting.wait_until), never a guessed
sleep; the timeouts are only upper bounds.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import redis

from dev.waiting import wait_until

HOST = "127.0.0.1"
TOOLS = ("redis-server", "redis-cli", "openssl")
_running: set[subprocess.Popen] = set()


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if not shutil.which(tool)]


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_running):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    _running.clear()


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen, so
    one call never hands out the same port twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


T = TypeVar("T")


def settling(condition: Callable[..., T]) -> Callable[..., T | None]:
    """A condition polled while a topology changes: a connection the change
    cut (sentinels and failovers kill client connections on a role change) or
    a node still loading means "not yet", not an error."""

    @functools.wraps(condition)
    def polled(*args: Any) -> T | None:
        try:
            return condition(*args)
        except redis.RedisError:
            return None

    return polled


class StartError(RuntimeError):
    """A process of a topology did not come up; the message ends with its log."""


# -- TLS material ---------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """A private CA and a server certificate it signed, valid for 127.0.0.1
    and localhost (Redis nodes also use it as their client certificate)."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60
    )


def make_tls_files(
    directory: Path, names: tuple[str, ...] = ("IP:127.0.0.1", "DNS:localhost")
) -> TlsFiles:
    """Generate the CA and a server certificate for `names` with `openssl` (EC
    P-256 keys: fast to make). The extensions are the ones strict verifiers
    insist on."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        cert=directory / "server.crt",
        key=directory / "server.key",
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", files.ca_key, "-out", files.ca_cert, "-days", "2",
        "-subj", "/CN=topologies test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", files.key, "-out", "server.csr", "-subj", "/CN=localhost",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        f"subjectAltName={','.join(names)}\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", files.ca_cert, "-CAkey", files.ca_key,
        "-CAcreateserial", "-out", files.cert, "-days", "2", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    return files


# -- one process ------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """One redis-server (or sentinel) process with its own directory, config
    file and log. Its config is written once; Redis may rewrite it (sentinels
    and cluster nodes do), and a restart reads what Redis wrote."""

    name: str
    directory: Path
    port: int
    config: list[str]
    tls: TlsFiles | None = None
    password: str | None = None
    sentinel: bool = False
    process: subprocess.Popen | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("\n".join(self.config) + "\n")

    @property
    def config_file(self) -> Path:
        return self.directory / ("sentinel.conf" if self.sentinel else "redis.conf")

    @property
    def log_file(self) -> Path:
        return self.directory / "log.txt"

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        command = ["redis-server", str(self.config_file)]
        if self.sentinel:
            command.append("--sentinel")
        with self.log_file.open("ab") as log:
            # Own process group: the atexit hook can kill it, and a Ctrl-C on
            # the test run does not reach it before the teardown does.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _running.add(self.process)
        try:
            wait_until(self._answers, timeout=timeout, what=f"{self.name} to answer PING")
        except AssertionError as exc:
            self.kill()
            raise StartError(f"{self.name} did not start: {exc}\n{self.log_tail()}") from None

    def _answers(self) -> bool:
        if not self.running:
            raise StartError(f"{self.name} exited at start-up\n{self.log_tail()}")
        try:
            with self.client(timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A direct connection to this one process, for controlling the topology."""
        tls = (
            {"ssl": True, "ssl_ca_certs": str(self.tls.ca_cert), "ssl_check_hostname": False}
            if self.tls
            else {}
        )
        return redis.Redis(
            *self.address,
            password=self.password,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=None,
            **tls,
        )

    def call(self, *args: Any, timeout: float = 2.0) -> Any:
        with self.client(timeout) as client:
            return client.execute_command(*args)

    def info(self, section: str) -> dict[str, Any]:
        with self.client() as client:
            return client.info(section)

    def signal(self, sig: signal.Signals) -> None:
        if self.running:
            assert self.process is not None
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save, connections cut as a crash cuts them."""
        self.signal(signal.SIGKILL)
        self._reap(5)

    def pause(self) -> None:
        """SIGSTOP: the process holds its port and the kernel still accepts
        connections, but nothing answers; what a hung server or a network
        partition looks like to a client."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()  # a stopped process ignores SIGTERM until continued
        self.signal(signal.SIGTERM)
        try:
            self._reap(5)
        except subprocess.TimeoutExpired:
            self.kill()

    def _reap(self, timeout: float) -> None:
        if self.process is None:
            return
        self.process.wait(timeout)
        _running.discard(self.process)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(f"  {self.name}| {line}" for line in text.splitlines()[-lines:])


def _data_node_config(
    directory: Path, port: int, tls: TlsFiles | None, password: str | None
) -> list[str]:
    lines = [
        f"bind {HOST}",
        f"dir {directory}",
        'save ""',
        "appendonly no",
        "daemonize no",
        'logfile ""',
        # Tests see every failover; nothing to gain from a slower replica sync.
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",
    ]
    if password:
        lines += [f"requirepass {password}", f"masterauth {password}"]
    return lines + _listen(port, tls)


def _listen(port: int, tls: TlsFiles | None) -> list[str]:
    if tls is None:
        return [f"port {port}"]
    return [
        "port 0",
        f"tls-port {port}",
        f"tls-cert-file {tls.cert}",
        f"tls-key-file {tls.key}",
        f"tls-ca-cert-file {tls.ca_cert}",
        # Managed platforms hand out server-authenticated TLS, no client certificates.
        "tls-auth-clients no",
        # Replicas, sentinels and the cluster bus talk to each other over TLS too.
        "tls-replication yes",
    ]


class Topology:
    """What every topology shares: its processes, and stopping all of them."""

    nodes: list[Node]

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()

    def logs(self) -> str:
        return "\n".join(node.log_tail() for node in self.nodes)


# -- Sentinel ---------------------------------------------------------------------


class SentinelTopology(Topology):
    """One primary, one replica, three sentinels (quorum 2).

    A SIGKILLed primary is declared down after `down_after_ms`, and the
    failover completes within about 2-4 s. Sentinel refuses a second failover
    of the same master within 2 x failover-timeout of the previous one, so
    `failover_timeout_ms` is short too."""

    service = "mymaster"

    def __init__(
        self,
        directory: Path,
        *,
        tls: TlsFiles | None = None,
        password: str | None = None,
        sentinel_password: str | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.directory = directory
        self.tls = tls
        self.password = password
        self.sentinel_password = sentinel_password
        ports = free_ports(5)
        self.data = [
            self._data_node(f"redis-{i}", port, replica_of=None if i == 0 else ports[0])
            for i, port in enumerate(ports[:2])
        ]
        self.sentinels = [
            self._sentinel(f"sentinel-{i}", port, ports[0], down_after_ms, failover_timeout_ms)
            for i, port in enumerate(ports[2:])
        ]
        self.nodes = [*self.data, *self.sentinels]

    def _data_node(self, name: str, port: int, replica_of: int | None) -> Node:
        directory = self.directory / name
        config = _data_node_config(directory, port, self.tls, self.password)
        if replica_of is not None:
            config.append(f"replicaof {HOST} {replica_of}")
        return Node(name, directory, port, config, tls=self.tls, password=self.password)

    def _sentinel(
        self, name: str, port: int, primary: int, down_after: int, failover_timeout: int
    ) -> Node:
        directory = self.directory / name
        config = [
            f"bind {HOST}",
            f"dir {directory}",
            "daemonize no",
            'logfile ""',
            *_listen(port, self.tls),
            f"sentinel monitor {self.service} {HOST} {primary} 2",
            f"sentinel down-after-milliseconds {self.service} {down_after}",
            f"sentinel failover-timeout {self.service} {failover_timeout}",
            f"sentinel parallel-syncs {self.service} 1",
        ]
        if self.password:
            config.append(f"sentinel auth-pass {self.service} {self.password}")
        if self.sentinel_password:
            # Sentinels authenticate to each other with their own requirepass.
            config.append(f"requirepass {self.sentinel_password}")
        password = self.sentinel_password
        return Node(name, directory, port, config, tls=self.tls, password=password, sentinel=True)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        wait_until(
            self._settled, timeout=20, what="the sentinels to know each other and the replica"
        )

    @settling
    def _settled(self) -> bool:
        """A failover needs the sentinels to know each other (they learn it
        from hello messages every 2 s) and a replica in sync: until then a
        SIGKILLed primary is never replaced."""
        for sentinel in self.sentinels:
            state = self.master_state(sentinel)
            if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                return False
        return all(
            node.info("replication").get("master_link_status") == "up"
            for node in self.data
            if node.running and node.info("replication")["role"] == "slave"
        )

    def master_state(self, sentinel: Node) -> dict[str, Any]:
        with sentinel.client() as client:
            return client.sentinel_master(self.service)

    def url(self, db: int = 0, *, scheme: str = "redis+sentinel", query: str = "") -> str:
        hosts = ",".join(f"{HOST}:{node.port}" for node in self.sentinels)
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}{hosts}/{self.service}/{db}" + (f"?{query}" if query else "")

    def reported_primary(self, sentinel: Node) -> tuple[str, int] | None:
        with sentinel.client() as client:
            address = client.sentinel_get_master_addr_by_name(self.service)
        return (address[0], int(address[1])) if address else None

    def primary(self) -> Node:
        """The data node every sentinel currently names as the primary."""
        reported = {self.reported_primary(sentinel) for sentinel in self.sentinels}
        assert len(reported) == 1, f"the sentinels disagree: {reported}"
        return self._node_at(reported.pop())

    def replica(self) -> Node:
        primary = self.primary()
        return next(node for node in self.data if node is not primary)

    def _node_at(self, address: tuple[str, int] | None) -> Node:
        return next(node for node in self.data if node.address == address)

    def kill_primary(self) -> Node:
        primary = self.primary()
        primary.kill()
        return primary

    def wait_for_new_primary(self, old: Node, timeout: float = 20.0) -> Node:
        """Until every sentinel names another node and that node says it is a
        primary (the sentinels switch before the promoted node has finished
        its own role change, and the other way round)."""

        @settling
        def switched() -> Node | None:
            reported = {self.reported_primary(sentinel) for sentinel in self.sentinels}
            if len(reported) != 1 or old.address in reported:
                return None
            node = self._node_at(reported.pop())
            return node if node.info("replication")["role"] == "master" else None

        return wait_until(switched, timeout=timeout, what="the sentinels to report a new primary")

    def restart_as_replica(self, node: Node, timeout: float = 30.0) -> None:
        """Start a killed node again. It boots as a primary with no data (no
        persistence here) until a sentinel turns it into a replica of the
        current primary: about 10 s, as a sentinel waits 4 hello periods (8 s)
        of an instance reporting the wrong role before reconfiguring it, so as
        not to act on a stale INFO. Waits for that and for its sync."""
        node.start()

        @settling
        def rejoined() -> bool:
            replication = node.info("replication")
            return replication["role"] == "slave" and replication.get("master_link_status") == "up"

        wait_until(rejoined, timeout=timeout, what=f"{node.name} to rejoin as a replica")
        wait_until(self._settled, timeout=timeout, what="the sentinels to see the replica again")


# -- Cluster ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterView:
    """Who serves what, as one node sees it (CLUSTER NODES)."""

    ids: dict[str, tuple[str, int]]  # node id -> address
    primaries: dict[str, tuple[tuple[int, int], ...]]  # primary id -> its slot ranges
    replica_of: dict[str, str]  # replica id -> primary id
    failed: set[str]


def parse_cluster_nodes(text: str) -> ClusterView:
    ids, primaries, replica_of, failed = {}, {}, {}, set()
    for line in text.splitlines():
        parts = line.split()
        node_id, address, flags, master = parts[0], parts[1], parts[2].split(","), parts[3]
        host, port = address.split("@")[0].rsplit(":", 1)
        ids[node_id] = (host, int(port))
        if "fail" in flags or "fail?" in flags:
            failed.add(node_id)
        if "master" in flags:
            # Entries in brackets are slots being imported or migrated.
            primaries[node_id] = tuple(_slot_range(item) for item in parts[8:] if "[" not in item)
        elif master != "-":
            replica_of[node_id] = master
    return ClusterView(ids, primaries, replica_of, failed)


def _slot_range(item: str) -> tuple[int, int]:
    first, _, last = item.partition("-")
    return int(first), int(last or first)


class ClusterTopology(Topology):
    """`primaries` primaries with `replicas` replicas each, made by
    `redis-cli --cluster create`. With cluster-node-timeout 1000 ms a
    SIGKILLed primary is replaced within about 2-3 s."""

    def __init__(
        self,
        directory: Path,
        *,
        primaries: int = 3,
        replicas: int = 1,
        tls: TlsFiles | None = None,
        password: str | None = None,
        node_timeout_ms: int = 1000,
    ) -> None:
        self.directory = directory
        self.tls = tls
        self.password = password
        self.replicas = replicas
        count = primaries * (1 + replicas)
        ports = free_ports(2 * count)
        self.nodes = [
            self._node(f"node-{i}", ports[i], ports[count + i], node_timeout_ms)
            for i in range(count)
        ]

    def _node(self, name: str, port: int, bus_port: int, node_timeout: int) -> Node:
        directory = self.directory / name
        config = _data_node_config(directory, port, self.tls, self.password)
        config += [
            "cluster-enabled yes",
            "cluster-config-file nodes.conf",
            f"cluster-node-timeout {node_timeout}",
            # The bus port would otherwise be port + 10000, which may be taken.
            f"cluster-port {bus_port}",
        ]
        if self.tls:
            config.append("tls-cluster yes")
        return Node(name, directory, port, config, tls=self.tls, password=self.password)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        self.redis_cli(
            "--cluster", "create", *(f"{HOST}:{node.port}" for node in self.nodes),
            "--cluster-replicas", str(self.replicas), "--cluster-yes",
        )  # fmt: skip
        self.wait_ok()

    def redis_cli(self, *args: str, timeout: float = 60) -> str:
        extra: list[str] = []
        if self.tls:
            extra += ["--tls", "--cacert", str(self.tls.ca_cert)]
        if self.password:
            extra += ["-a", self.password, "--no-auth-warning"]
        done = subprocess.run(
            ["redis-cli", *extra, *args], capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise StartError(f"redis-cli {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def url(self, *, scheme: str = "redis+cluster", query: str = "") -> str:
        hosts = ",".join(f"{HOST}:{node.port}" for node in self.nodes[:3])
        auth = f":{self.password}@" if self.password else ""
        return f"{scheme}://{auth}{hosts}" + (f"?{query}" if query else "")

    def live(self) -> list[Node]:
        return [node for node in self.nodes if node.running]

    def view(self, node: Node | None = None) -> ClusterView:
        node = node or self.live()[0]
        return parse_cluster_nodes(node.call("CLUSTER", "NODES"))

    def node_id(self, node: Node) -> str:
        return node.call("CLUSTER", "MYID")

    def _node_by_id(self, view: ClusterView, node_id: str) -> Node:
        return next(node for node in self.nodes if node.address == view.ids[node_id])

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every live node says cluster_state:ok, they all agree on who
        serves which slots, every replica is in sync, and nobody is flagged as
        failing (a restarted node is `fail` in the others' tables for a while)."""
        wait_until(self._healthy, timeout=timeout, what="cluster_state:ok on every node")

    @settling
    def _healthy(self) -> bool:
        live = self.live()
        live_ids = {node.address for node in live}
        if any("cluster_state:ok" not in node.call("CLUSTER", "INFO") for node in live):
            return False
        views = [self.view(node) for node in live]
        if len({tuple(sorted(view.primaries.items())) for view in views}) != 1:
            return False
        if any(view.ids[failed] in live_ids for view in views for failed in view.failed):
            return False
        return all(
            node.info("replication").get("master_link_status") == "up"
            for node in live
            if node.info("replication")["role"] == "slave"
        )

    def primary_for_slot(self, slot: int) -> Node:
        view = self.view()
        for node_id, ranges in view.primaries.items():
            if any(first <= slot <= last for first, last in ranges):
                return self._node_by_id(view, node_id)
        raise LookupError(f"no primary serves slot {slot}")

    def replica_of(self, primary: Node) -> Node:
        view = self.view()
        primary_id = self.node_id(primary)
        for replica_id, master_id in view.replica_of.items():
            if master_id == primary_id:
                replica = self._node_by_id(view, replica_id)
                if replica.running:
                    return replica
        raise LookupError(f"{primary.name} has no live replica")

    def graceful_failover(self, primary: Node, timeout: float = 20.0) -> Node:
        """CLUSTER FAILOVER on the replica: the primary stops taking writes,
        the replica catches up, then they swap roles. No acknowledged write is
        lost."""
        replica = self.replica_of(primary)
        assert replica.call("CLUSTER", "FAILOVER") == "OK"
        self._wait_promoted(replica, timeout)
        return replica

    def kill_primary(self, primary: Node, timeout: float = 20.0) -> Node:
        """SIGKILL a primary and wait until its replica was elected in its place."""
        replica = self.replica_of(primary)
        primary.kill()
        self._wait_promoted(replica, timeout)
        return replica

    def _wait_promoted(self, replica: Node, timeout: float) -> None:
        replica_id = self.node_id(replica)

        @settling
        def promoted() -> bool:
            return all(
                replica_id in self.view(node).primaries
                and "cluster_state:ok" in node.call("CLUSTER", "INFO")
                for node in self.live()
            )

        wait_until(promoted, timeout=timeout, what=f"{replica.name} to be promoted")

    def restart(self, node: Node, timeout: float = 30.0) -> None:
        """Start a killed node again: it reads its nodes.conf, learns that it
        lost its slots, and becomes a replica of its replacement."""
        node.start()
        self.wait_ok(timeout)

    def move_slots(
        self,
        slots: Iterable[int],
        to: Node,
        *,
        batch: int = 10,
        between_batches: Callable[[], None] | None = None,
    ) -> None:
        """Migrate slots to another primary while clients keep running, the way
        `redis-cli --cluster reshard` does it, slot by slot: IMPORTING on the
        target, MIGRATING on the source, MIGRATE the keys in batches (clients
        meanwhile get ASK for keys already moved, TRYAGAIN for multi-key
        commands split across both), then SETSLOT NODE everywhere (clients
        then get MOVED)."""
        target_id = self.node_id(to)
        for slot in slots:
            source = self.primary_for_slot(slot)
            if source is to:
                continue
            source_id = self.node_id(source)
            to.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := source.call("CLUSTER", "GETKEYSINSLOT", slot, batch):
                self._migrate(source, to, keys)
                if between_batches:
                    between_batches()
            # The target first, so it never bounces a client back to the source.
            for node in [to, source, *self._other_primaries(to, source)]:
                node.call("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def _migrate(self, source: Node, to: Node, keys: list[str]) -> None:
        auth = ["AUTH", self.password] if self.password else []
        source.call("MIGRATE", HOST, to.port, "", 0, 5000, "REPLACE", *auth, "KEYS", *keys)

    def _other_primaries(self, *exclude: Node) -> list[Node]:
        view = self.view()
        nodes = [self._node_by_id(view, node_id) for node_id in view.primaries]
        return [node for node in nodes if node.running and node not in exclude]


# -- one primary ------------------------------------------------------------------------


class SingleRedis(Topology):
    """One primary. With `tls` it listens only on a TLS port (port 0 turns
    plain TCP off), server-authenticated as managed platforms run it."""

    def __init__(self, directory: Path, tls: TlsFiles | None = None) -> None:
        self.tls = tls
        (port,) = free_ports(1)
        config = _data_node_config(directory, port, tls, None)
        self.node = Node("redis", directory, port, config, tls=tls)
        self.nodes = [self.node]

    def start(self) -> None:
        self.node.start()

    def url(self, query: str = "") -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{HOST}:{self.node.port}/0" + (f"?{query}" if query else "")

    def url_trusting_ca(self) -> str:
        """Verify the certificate and the host name against our CA."""
        assert self.tls
        return self.url(f"ssl_ca_certs={self.tls.ca_cert}")

    def url_without_verification(self) -> str:
        """Encrypt, accept any certificate (Heroku Redis: a self-signed certificate)."""
        return self.url("ssl_cert_reqs=none")

    def url_verifying_without_ca(self) -> str:
        """Verify against the system's CAs only: must be refused."""
        return self.url("ssl_cert_reqs=required")


# -- clients under fire ---------------------------------------------------------------


@dataclass
class Outcome:
    at: float  # time.monotonic()
    error: str | None  # exception class name, None for success
    message: str = ""


@dataclass
class ProbeReport:
    attempts: int
    errors: int
    error_kinds: dict[str, int]
    examples: dict[str, str]  # error kind -> one message
    error_window: float  # first failure to last failure, seconds (0 when none)
    longest_call: float
    lost: dict[str, float]  # key whose acknowledged write is gone -> when it was acknowledged


class Probe:
    """A loop of writes and reads through one client in a background thread,
    recording when each call failed and with what; afterwards, every write the
    client saw acknowledged is checked. `op(i)` does one round and returns
    the key and value it wrote."""

    def __init__(self, op: Callable[[int], tuple[str, str]]) -> None:
        self.op = op
        self.outcomes: list[Outcome] = []
        self.durations: list[float] = []
        self.acknowledged: dict[str, tuple[str, float]] = {}  # key -> (value, when)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        wait_until(lambda: self.successes() >= 5, timeout=10, what="the probe's first writes")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                key, value = self.op(i)
            except Exception as exc:  # recording every failure is the point
                self.outcomes.append(Outcome(time.monotonic(), type(exc).__name__, str(exc)))
            else:
                self.acknowledged[key] = (value, time.monotonic())
                self.outcomes.append(Outcome(time.monotonic(), None))
            self.durations.append(time.monotonic() - started)

    def successes(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.error is None)

    def successes_since(self, moment: float) -> int:
        return sum(1 for o in self.outcomes if o.error is None and o.at > moment)

    def report(self, read: Callable[[str], str | None]) -> ProbeReport:
        failures = [outcome for outcome in self.outcomes if outcome.error]
        kinds: dict[str, int] = {}
        examples: dict[str, str] = {}
        for failure in failures:
            kind = failure.error or ""
            kinds[kind] = kinds.get(kind, 0) + 1
            examples.setdefault(kind, failure.message[:120])
        lost = {key: at for key, (value, at) in self.acknowledged.items() if read(key) != value}
        return ProbeReport(
            attempts=len(self.outcomes),
            errors=len(failures),
            error_kinds=kinds,
            examples=examples,
            error_window=(failures[-1].at - failures[0].at) if failures else 0.0,
            longest_call=max(self.durations, default=0.0),
            lost=lost,
        )
