"""A local multi-broker and/or secured Apache Kafka cluster (KRaft), from the same Maven jars.

The embedded single-node plaintext broker (:mod:`ioc.infra.local_kafka`, ``ioc kafka up``) stays
the demo's default. This sibling runs what production looks like, on one machine, for the fault
and security tests and for operators who want to try the secured setup
(``ioc kafka cluster up --brokers 3 --secure``):

- ``brokers`` combined broker+controller nodes (KRaft quorum of all of them). With 3 nodes:
  ``default.replication.factor=3`` and ``min.insync.replicas=2``, so an ``acks=all`` write is
  acknowledged only once two replicas hold it, and one node may die without losing anything
  acknowledged or stopping the quorum.
- ``secure=True``: the client listener is ``SASL_SSL`` with ``SCRAM-SHA-512`` only (no plaintext
  listener at all); the controller listener is TLS with client certificates (mutual TLS, the
  nodes' own principal ``User:ioc-kafka-node``); the ``StandardAuthorizer`` denies everything not
  allowed by an ACL (``allow.everyone.if.no.acl.found=false``), with ``User:admin`` and the nodes
  as super users. The SCRAM credential of ``admin`` is written into the KRaft bootstrap metadata
  when the log dirs are formatted (``kafka-storage format --add-scram``): there is no window in
  which the cluster runs without it. Every other user (the platform, each agency) is created
  through the admin API by ``ioc acl apply``.

TLS material is generated at the first start with the JDK's ``keytool`` (no extra dependency):
a local CA (``tls/ca.pem``, the file clients trust via ``IOC_KAFKA_CA_FILE``), one node key pair
signed by it (``tls/node.p12``, SAN ``localhost`` and ``127.0.0.1``) and a PKCS12 trust store.
Passwords are random, kept in ``secrets.json`` (mode 0600) and never printed. ``client.env``
(mode 0600) has the ``IOC_KAFKA_*`` settings of the admin user, for ``set -a; . client.env``.

Layout under the cluster dir: ``cluster.json`` (brokers, ports, mode), ``node-<id>/``
(``server.properties``, ``data/``, ``broker.log``, ``broker.pid``), ``tls/``. Nodes are
formatted once; a restart keeps topics, ACLs, users and quotas. Linux only.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from ioc.infra.local_kafka import (
    LOG4J_CONFIG,
    KafkaLauncherError,
    LocalKafka,
    _escape_property,
    _marker,
    _new_cluster_id,
    _port_accepts,
    _tail,
    port_free,
)
from ioc.infra.settings import Secret, Settings

ADMIN_USER = "admin"
NODE_PRINCIPAL = "ioc-kafka-node"
SCRAM_MECHANISM = "SCRAM-SHA-512"
NODE_JVM_OPTIONS = (
    "-Xmx384m",
    "-Xms128m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
)
KEYTOOL_TIMEOUT_S = 60.0
FORMAT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Node:
    node_id: int
    port: int  # client listener
    controller_port: int
    dir: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class LocalKafkaCluster:
    """Formats, starts, kills and stops the nodes of one local cluster dir.

    ``base_port``: node ``i`` (1-based) listens on ``base_port + 2(i-1)`` for clients and on the
    next port for the controller quorum. ``jars_dir`` holds the cached classpath (default: the
    cluster dir; tests share one between clusters). A cluster dir keeps the brokers, ports and
    mode it was created with (``cluster.json``); asking for different ones is an error.
    """

    def __init__(self, directory: Path, *, brokers: int = 3, base_port: int = 19192,
                 secure: bool = False, log: Callable[[str], None] = print,
                 env: Mapping[str, str] | None = None, jars_dir: Path | None = None) -> None:
        self.dir = directory.resolve()
        self._log = log
        self._env = dict(os.environ if env is None else env)
        wanted = {"brokers": brokers, "base_port": base_port, "secure": secure}
        existing = self._read_json(self.dir / "cluster.json")
        if existing and existing != wanted:
            raise KafkaLauncherError(
                f"The cluster in {self.dir} was created with {existing}, not {wanted}. Use "
                "those options, or remove the folder (after `down`) to start afresh.")
        if not 1 <= brokers <= 9:
            raise KafkaLauncherError("brokers must be between 1 and 9")
        self.brokers, self.base_port, self.secure = brokers, base_port, secure
        self.nodes = [Node(i, base_port + 2 * (i - 1), base_port + 2 * (i - 1) + 1,
                           self.dir / f"node-{i}") for i in range(1, brokers + 1)]
        self.bootstrap = ",".join(n.address for n in self.nodes)
        self.tls_dir = self.dir / "tls"
        self.ca_file = self.tls_dir / "ca.pem"
        # The classpath Maven resolved is cached in <jars_dir>/kafka (shareable between clusters).
        self._jars = LocalKafka(Settings(data_dir=jars_dir or self.dir), log=log, env=self._env)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # ----------------------------------------------------------------- public API

    @property
    def admin_password(self) -> Secret:
        return Secret(self._secrets()["admin"])

    def client_config(self, username: str | None = ADMIN_USER, password: str | None = None,
                      **extra: Any) -> dict[str, Any]:
        """confluent-kafka config for ``username`` (default: the super user ``admin``)."""
        return self.settings(username, password).kafka_config(**extra)

    def settings(self, username: str | None = ADMIN_USER, password: str | None = None,
                 **changes: Any) -> Settings:
        """Platform settings that reach this cluster as ``username``."""
        if not self.secure:
            return Settings(kafka_bootstrap=self.bootstrap, **changes)
        if username == ADMIN_USER and password is None:
            password = self.admin_password.get()
        return Settings(kafka_bootstrap=self.bootstrap, kafka_security_protocol="SASL_SSL",
                        kafka_sasl_mechanism=SCRAM_MECHANISM, kafka_username=username,
                        kafka_password=Secret(password or ""), kafka_ca_file=self.ca_file,
                        **changes)

    def client_env(self, username: str = ADMIN_USER, password: str | None = None
                   ) -> dict[str, str]:
        """``IOC_KAFKA_*`` environment for platform processes connecting as ``username``."""
        env = {"IOC_KAFKA_BOOTSTRAP": self.bootstrap}
        if self.secure:
            if password is None:
                password = self.admin_password.get() if username == ADMIN_USER else ""
            env.update({"IOC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                        "IOC_KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
                        "IOC_KAFKA_USERNAME": username, "IOC_KAFKA_PASSWORD": password,
                        "IOC_KAFKA_CA_FILE": str(self.ca_file)})
        return env

    def running(self) -> dict[int, int]:
        """node id → pid of its running JVM."""
        out = {}
        for node in self.nodes:
            pid = self._pid(node)
            if pid is not None:
                out[node.node_id] = pid
        return out

    def up(self, timeout: float = 120.0) -> None:
        """Start every node not running yet; return once all brokers are registered."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "cluster.json").write_text(json.dumps(
            {"brokers": self.brokers, "base_port": self.base_port, "secure": self.secure}))
        java = self._jars.java_executable()
        classpath = self._jars.ensure_jars()
        if self.secure:
            self._ensure_tls(java)
            self._write_client_env()
        running = self.running()
        for node in self.nodes:
            if node.node_id in running:
                continue
            for port in (node.port, node.controller_port):
                if not port_free(port):
                    raise KafkaLauncherError(f"Port {port} (node {node.node_id}) is in use by "
                                             "another program; choose another base port.")
            self._write_properties(node)
            self._format_once(java, classpath, node)
        for node in self.nodes:
            if node.node_id not in running:
                self._launch(java, classpath, node)
        self.wait_ready(timeout)

    def start(self, node_id: int, timeout: float = 120.0) -> None:
        """(Re)start one node (after :meth:`kill`) and wait until all brokers are back."""
        node = self.nodes[node_id - 1]
        if self._pid(node) is None:
            self._launch(self._jars.java_executable(), self._jars.ensure_jars(), node)
        self.wait_ready(timeout)

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: no clean shutdown, no leadership hand-over (a crash)."""
        node = self.nodes[node_id - 1]
        pid = self._pid(node)
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        self._wait_gone(node, pid, 10.0)
        self._log(f"Kafka node {node_id} (pid {pid}) killed.")

    def down(self, timeout: float = 30.0) -> None:
        """SIGTERM every node (clean shutdown), SIGKILL after ``timeout`` seconds."""
        pids = {n.node_id: (n, pid) for n in self.nodes if (pid := self._pid(n)) is not None}
        for _node, pid in pids.values():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        for node, pid in pids.values():
            if not self._wait_gone(node, pid, max(0.1, deadline - time.monotonic())):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._wait_gone(node, pid, 10.0)
            (node.dir / "broker.pid").unlink(missing_ok=True)

    def wait_ready(self, timeout: float = 120.0, brokers: int | None = None) -> None:
        """Until ``brokers`` (default: all running nodes) answer metadata as registered."""
        want = brokers if brokers is not None else len(self.running())
        deadline = time.monotonic() + timeout
        admin = AdminClient(self.client_config(log_level=0))
        seen = 0
        while time.monotonic() < deadline:
            for node in self.nodes:
                if self._pid(node) is None and node.node_id in self._procs:
                    raise KafkaLauncherError(f"Kafka node {node.node_id} exited during startup."
                                             f"\n{_tail(node.dir / 'broker.log')}")
            if any(_port_accepts(n.port) for n in self.nodes):
                try:
                    seen = len(admin.list_topics(timeout=5).brokers)
                except KafkaException:
                    seen = 0
                if seen >= want:
                    self._log(f"Kafka cluster ready: {seen} brokers on {self.bootstrap}"
                              + (" (SASL_SSL)" if self.secure else ""))
                    return
            time.sleep(0.5)
        raise KafkaLauncherError(
            f"The Kafka cluster in {self.dir} did not become ready within {timeout:.0f} s "
            f"({seen} of {want} brokers).\n{_tail(self.nodes[0].dir / 'broker.log')}")

    # ----------------------------------------------------------------- configuration

    def _write_properties(self, node: Node) -> None:
        n = self.brokers
        replication = str(min(3, n))
        values = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": ",".join(
                f"{m.node_id}@127.0.0.1:{m.controller_port}" for m in self.nodes),
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(node.dir / "data"),
            "num.partitions": "3",
            "default.replication.factor": replication,
            "min.insync.replicas": str(min(2, n)),
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": str(min(2, n)),
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": str(min(2, n)),
            "group.initial.rebalance.delay.ms": "0",
            "unclean.leader.election.enable": "false",
            "auto.create.topics.enable": "false",  # topics come from `ioc setup` only
        }
        if not self.secure:
            values.update({
                "listeners": f"PLAINTEXT://127.0.0.1:{node.port},"
                             f"CONTROLLER://127.0.0.1:{node.controller_port}",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            })
        else:
            sec = self._secrets()
            store = str(self.tls_dir / "node.p12")
            trust = str(self.tls_dir / "truststore.p12")
            values.update({
                "listeners": f"SASL_SSL://127.0.0.1:{node.port},"
                             f"CONTROLLER://127.0.0.1:{node.controller_port}",
                "advertised.listeners": f"SASL_SSL://127.0.0.1:{node.port}",
                "inter.broker.listener.name": "SASL_SSL",
                "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
                "sasl.enabled.mechanisms": SCRAM_MECHANISM,
                "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{ADMIN_USER}" password="{sec["admin"]}";'),
                "ssl.keystore.type": "PKCS12",
                "ssl.keystore.location": store,
                "ssl.keystore.password": sec["store"],
                "ssl.key.password": sec["store"],
                "ssl.truststore.type": "PKCS12",
                "ssl.truststore.location": trust,
                "ssl.truststore.password": sec["store"],
                # Nodes prove who they are to the controller quorum with their certificate.
                "listener.name.controller.ssl.client.auth": "required",
                "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)(,.*)?$/$1/,DEFAULT",
                "authorizer.class.name":
                    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": f"User:{ADMIN_USER};User:{NODE_PRINCIPAL}",
                "allow.everyone.if.no.acl.found": "false",
            })
        node.dir.mkdir(parents=True, exist_ok=True)
        lines = ["# Generated by infra/kafka_cluster.py on every start; edits are overwritten.",
                 *(f"{k}={_escape_property(v)}" for k, v in values.items())]
        path = node.dir / "server.properties"
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)  # holds the admin password in secure mode
        tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
        tmp.replace(path)

    def _format_once(self, java: str, classpath: str, node: Node) -> None:
        data = node.dir / "data"
        if (data / "meta.properties").exists():
            return
        id_file = self.dir / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(_new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        data.mkdir(parents=True, exist_ok=True)
        cmd = [java, "-Xmx256m", *self._logging(node), "-cp", classpath,
               "kafka.tools.StorageTool", "format", "-t", cluster_id,
               "-c", str(node.dir / "server.properties")]
        if self.secure:
            cmd += ["--add-scram",
                    f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={self._secrets()['admin']}]"]
        log_file = node.dir / "broker.log"
        with open(log_file, "ab") as out:
            out.write(_marker(f"formatting node {node.node_id}"))
            out.flush()
            try:
                rc: int | None = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=node.dir, env=self._env, timeout=FORMAT_TIMEOUT_S, check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                rc = None
        if rc != 0:
            raise KafkaLauncherError(f"Formatting Kafka node {node.node_id} failed.\n"
                                     f"{_tail(log_file)}")

    def _launch(self, java: str, classpath: str, node: Node) -> None:
        cmd = [java, *NODE_JVM_OPTIONS, *self._logging(node), "-cp", classpath,
               "kafka.Kafka", str(node.dir / "server.properties")]
        with open(node.dir / "broker.log", "ab") as out:
            out.write(_marker(f"Kafka node {node.node_id} on {node.address}"))
            out.flush()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=node.dir, env=self._env,
                                    start_new_session=True)
        self._procs[node.node_id] = proc
        (node.dir / "broker.pid").write_text(f"{proc.pid}\n")
        self._log(f"Started Kafka node {node.node_id} (pid {proc.pid}) on {node.address}")

    def _logging(self, node: Node) -> list[str]:
        return [f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={node.dir}"]

    # ----------------------------------------------------------------- TLS and secrets

    def _secrets(self) -> dict[str, str]:
        """Random passwords of this cluster: the admin user's and the key stores'."""
        path = self.dir / "secrets.json"
        found = self._read_json(path)
        if found:
            return {str(k): str(v) for k, v in found.items()}
        self.dir.mkdir(parents=True, exist_ok=True)
        values = {"admin": secrets.token_hex(16), "store": secrets.token_hex(16)}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(values, handle)
        return values

    def _ensure_tls(self, java: str) -> None:
        if (self.tls_dir / "truststore.p12").is_file() and self.ca_file.is_file():
            return
        keytool = str(Path(java).resolve().parent / "keytool")
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        for old in self.tls_dir.iterdir():
            old.unlink()
        pw = self._secrets()["store"]
        san = "SAN=dns:localhost,ip:127.0.0.1"
        ca, node = str(self.tls_dir / "ca.p12"), str(self.tls_dir / "node.p12")
        csr, crt = str(self.tls_dir / "node.csr"), str(self.tls_dir / "node.crt")
        steps = [
            ["-genkeypair", "-alias", "ca", "-dname", "CN=IOC local Kafka CA,O=IOC",
             "-keyalg", "RSA", "-keysize", "2048", "-validity", "3650", "-ext", "bc:c",
             "-keystore", ca, "-storetype", "PKCS12", "-storepass", pw],
            ["-exportcert", "-rfc", "-alias", "ca", "-keystore", ca, "-storepass", pw,
             "-file", str(self.ca_file)],
            ["-genkeypair", "-alias", "node", "-dname", f"CN={NODE_PRINCIPAL},O=IOC",
             "-keyalg", "RSA", "-keysize", "2048", "-validity", "825", "-ext", san,
             "-keystore", node, "-storetype", "PKCS12", "-storepass", pw],
            ["-certreq", "-alias", "node", "-keystore", node, "-storepass", pw, "-file", csr],
            ["-gencert", "-rfc", "-alias", "ca", "-keystore", ca, "-storepass", pw,
             "-infile", csr, "-outfile", crt, "-validity", "825", "-ext", san,
             "-ext", "ku:c=digitalSignature,keyEncipherment",
             "-ext", "eku=serverAuth,clientAuth"],
            ["-importcert", "-noprompt", "-alias", "ca", "-keystore", node, "-storepass", pw,
             "-file", str(self.ca_file)],
            ["-importcert", "-alias", "node", "-keystore", node, "-storepass", pw,
             "-file", crt],
            ["-importcert", "-noprompt", "-alias", "ca", "-keystore",
             str(self.tls_dir / "truststore.p12"), "-storetype", "PKCS12", "-storepass", pw,
             "-file", str(self.ca_file)],
        ]
        self._log(f"Generating the local CA and node certificate in {self.tls_dir} ...")
        for args in steps:
            proc = subprocess.run([keytool, *args], capture_output=True, env=self._env,
                                  timeout=KEYTOOL_TIMEOUT_S, check=False)
            if proc.returncode != 0:
                raise KafkaLauncherError(f"keytool {args[0]} failed: "
                                         f"{proc.stderr.decode(errors='replace')[-500:]}")

    def _write_client_env(self) -> None:
        path = self.dir / "client.env"
        lines = [f"{k}={v}" for k, v in self.client_env().items()]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    # ----------------------------------------------------------------- processes

    def _pid(self, node: Node) -> int | None:
        proc = self._procs.get(node.node_id)
        if proc is not None:
            return proc.pid if proc.poll() is None else None
        try:
            pid = int((node.dir / "broker.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_node(pid, node) else None

    def _wait_gone(self, node: Node, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._pid(node) == pid:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _is_node(pid: int, node: Node) -> bool:
    """True if ``pid`` is a live ``kafka.Kafka`` JVM started with this node's properties."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if b"kafka.Kafka" not in args or os.fsencode(node.dir / "server.properties") not in args:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])
