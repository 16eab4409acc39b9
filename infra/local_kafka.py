"""Run a real single-node Apache Kafka broker (KRaft mode) from jars that Maven fetches.

This is the embedded default of the platform: no Docker, just Java 17+ and Maven. ``ioc kafka
up`` / ``down`` / ``status`` and the test suite's ``kafka_broker`` fixture drive it through
:class:`LocalKafka`.

Everything lives under ``settings.kafka_dir`` (``$IOC_DATA_DIR/kafka``):

- ``server.properties`` — generated from the settings on every start (edits are overwritten).
- ``data/`` — the broker's log dirs. Formatted once, with the cluster id kept in ``cluster.id``;
  never re-formatted once ``data/meta.properties`` exists, so a restart keeps topics and messages.
- ``broker.log`` — the broker's log4j output (``infra/kafka/log4j2.properties``) and the JVM's
  stdout/stderr. Each start appends a ``ioc: starting`` marker line.
- ``broker.pid`` — pid of the running broker.
- ``classpath-<pom hash>.txt`` — the Java classpath Maven resolved for the current
  ``infra/kafka/pom.xml``; the jars themselves stay in ``~/.m2``. Maven runs again only when the
  pom changes or a jar disappears. ``maven.log`` holds the output of the last Maven run.

The client listener is ``127.0.0.1:$IOC_KAFKA_PORT`` and the controller listener the next port.
The broker runs in its own session, so it outlives the command that started it. Linux only.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from ioc.infra.settings import Settings

KAFKA_FILES = Path(__file__).resolve().parent / "kafka"
POM = KAFKA_FILES / "pom.xml"
LOG4J_CONFIG = KAFKA_FILES / "log4j2.properties"

MIN_JAVA_VERSION = 17
BROKER_JVM_OPTIONS = (
    "-Xmx512m",
    "-Xms256m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
)
MAVEN_TIMEOUT_S = 1200.0
FORMAT_TIMEOUT_S = 120.0
LOG_TAIL_LINES = 30
PROGRESS_EVERY_S = 10.0
_START_MARKER = "ioc: starting"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class KafkaLauncherError(RuntimeError):
    """The local broker cannot be set up, started or stopped; the message says what to do."""


@dataclass(frozen=True)
class KafkaStatus:
    """What ``ioc kafka status`` shows. ``data_dir`` is the broker's own folder (kafka_dir)."""

    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_file: Path
    detail: str


class LocalKafka:
    """Fetches, formats, starts and stops the local single-node broker for one data dir.

    ``env`` is the environment used to find ``java`` (``JAVA_HOME``, else ``PATH``) and ``mvn``
    (``PATH``) and passed to them; it defaults to the process environment.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        log: Callable[[str], None] = print,
        env: Mapping[str, str] | None = None,
    ) -> None:
        port = settings.kafka_port
        if not 1 <= port <= 65534:
            raise KafkaLauncherError(
                f"IOC_KAFKA_PORT={port} is not usable: the broker needs that port and the next "
                "one, so pick a port between 1024 and 65534."
            )
        self.settings = settings
        self.port = port
        self.controller_port = port + 1
        self.bootstrap = f"127.0.0.1:{port}"
        self.dir = settings.kafka_dir.resolve()
        self.data_path = self.dir / "data"
        self.properties_file = self.dir / "server.properties"
        self.log_file = self.dir / "broker.log"
        self.pid_file = self.dir / "broker.pid"
        self.cluster_id_file = self.dir / "cluster.id"
        self.maven_log = self.dir / "maven.log"
        self._log = log
        self._env = dict(os.environ if env is None else env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._java: str | None = None

    # ----------------------------------------------------------------- public API

    def status(self) -> KafkaStatus:
        pid, stale = self._running_pid()
        if pid is None:
            detail = "not running"
            if stale:
                detail += f" (stale pid file {self.pid_file}: {self._stale_what()})"
            return self._status(None, detail)
        if _port_accepts(self.port):
            return self._status(pid, f"running (pid {pid}) on {self.bootstrap}")
        return self._status(pid, f"starting (pid {pid}), not yet listening on {self.bootstrap}")

    def up(self, timeout: float = 90.0) -> KafkaStatus:
        """Start the broker unless it runs already; return once it answers metadata requests."""
        with self._lock():
            pid, stale = self._running_pid()
            if pid is not None:
                running_port = self._configured_port()
                if running_port is not None and running_port != self.port:
                    raise KafkaLauncherError(
                        f"The local Kafka broker of {self.dir} is already running (pid {pid}) on "
                        f"port {running_port}, not on IOC_KAFKA_PORT={self.port}. Stop it first "
                        "(`ioc kafka down` with its old IOC_KAFKA_PORT), or keep its port."
                    )
                self._write_pid(pid)
                self._log(f"Kafka broker already running (pid {pid}) on {self.bootstrap}.")
                self._wait_until_ready(pid, timeout, stop_on_failure=False)
                return self.status()
            if stale:
                self._log(f"Removing stale pid file {self.pid_file} ({self._stale_what()}).")
                self.pid_file.unlink(missing_ok=True)
            java = self.java_executable()
            self._check_ports_free()
            classpath = self.ensure_jars()
            self._write_properties()
            self._format_once(java, classpath)
            pid = self._launch(java, classpath)
            self._wait_until_ready(pid, timeout, stop_on_failure=True)
        return self.status()

    def down(self, timeout: float = 30.0) -> KafkaStatus:
        """Stop the broker: SIGTERM (a clean shutdown), then SIGKILL after ``timeout`` seconds."""
        if not self.dir.exists():
            self._log("Kafka broker is not running.")
            return self.status()
        with self._lock():
            pid, stale = self._running_pid()
            if pid is None:
                if stale:
                    self.pid_file.unlink(missing_ok=True)
                self._log("Kafka broker is not running.")
            else:
                self._log(f"Stopping the Kafka broker (pid {pid}) ...")
                started = time.monotonic()
                self._stop(pid, timeout)
                self.pid_file.unlink(missing_ok=True)
                self._log(f"Kafka broker stopped ({time.monotonic() - started:.1f} s).")
        return self.status()

    def ensure_jars(self) -> str:
        """Return the broker's Java classpath, running Maven only if the pom changed since."""
        key = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
        cp_file = self.dir / f"classpath-{key}.txt"
        cached = _read_classpath(cp_file)
        if cached is not None:
            return cached
        java = self.java_executable()  # Maven needs it too; fail with our message, not Maven's
        mvn = shutil.which("mvn", path=self._env.get("PATH", os.defpath))
        if mvn is None:
            raise KafkaLauncherError(
                "Maven (`mvn`) was not found on PATH. It is needed once, to fetch the Apache "
                "Kafka jars from Maven Central: install Maven (for example `sudo apt-get install "
                "maven`) and run this again."
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = cp_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        env = dict(self._env)
        if "JAVA_HOME" not in env:
            env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
        self._log(
            f"Fetching the Apache Kafka {_kafka_version()} jars with Maven (once per pom "
            f"version; jars are kept in ~/.m2). Maven log: {self.maven_log}"
        )
        started = time.monotonic()
        with open(self.maven_log, "wb") as out:
            proc = subprocess.Popen(
                [
                    mvn, "-B", "-Dstyle.color=never", "-f", str(POM),
                    "dependency:build-classpath", f"-Dmdep.outputFile={tmp}",
                    "-DincludeScope=runtime",
                ],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.dir, env=env,
            )  # fmt: skip
            rc = self._wait_for_maven(proc, started)
        if rc != 0 or not tmp.is_file():
            reason = "timed out" if rc is None else f"exit code {rc}"
            raise KafkaLauncherError(
                f"Maven could not fetch the Apache Kafka jars ({reason}). Check network access "
                "to Maven Central (https://repo.maven.apache.org) or the proxy/mirror in "
                f"~/.m2/settings.xml, then run this again.\n{_tail(self.maven_log)}"
            )
        tmp.replace(cp_file)
        classpath = _read_classpath(cp_file)
        if classpath is None:
            raise KafkaLauncherError(
                f"Maven finished but the classpath it wrote ({cp_file}) names missing jars.\n"
                f"{_tail(self.maven_log)}"
            )
        for old in self.dir.glob("classpath-*.txt"):
            if old != cp_file:
                old.unlink(missing_ok=True)
        self._log(
            f"Kafka jars ready ({len(classpath.split(os.pathsep))} jars, "
            f"{time.monotonic() - started:.0f} s)."
        )
        return classpath

    # ----------------------------------------------------------------- steps of `up`

    def java_executable(self) -> str:
        """The ``java`` to run (JAVA_HOME, else PATH), checked to be Java 17+."""
        if self._java is not None:
            return self._java
        java_home = self._env.get("JAVA_HOME")
        if java_home:
            candidate = Path(java_home) / "bin" / "java"
            if not (candidate.is_file() and os.access(candidate, os.X_OK)):
                raise KafkaLauncherError(
                    f"JAVA_HOME is set to {java_home}, but {candidate} does not exist or is not "
                    f"executable. Point JAVA_HOME at a Java {MIN_JAVA_VERSION}+ installation, or "
                    "unset it to use `java` from PATH."
                )
            java = str(candidate)
        else:
            found = shutil.which("java", path=self._env.get("PATH", os.defpath))
            if found is None:
                raise KafkaLauncherError(
                    "Java was not found: `java` is not on PATH and JAVA_HOME is not set. The "
                    f"local Kafka broker needs Java {MIN_JAVA_VERSION} or newer: install it (for "
                    "example `sudo apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
                )
            java = found
        major = _java_major_version(java, self._env)
        if major is not None and major < MIN_JAVA_VERSION:
            raise KafkaLauncherError(
                f"{java} is Java {major}; Apache Kafka {_kafka_version()} needs Java "
                f"{MIN_JAVA_VERSION} or newer. Install it and put it first on PATH or set "
                "JAVA_HOME."
            )
        self._java = java
        return java

    def _check_ports_free(self) -> None:
        for port, role in ((self.port, "client"), (self.controller_port, "controller")):
            if not port_free(port):
                raise KafkaLauncherError(
                    f"Port {port} on 127.0.0.1 (the local Kafka broker's {role} port) is already "
                    f"in use by another program, not by the broker of {self.dir}. Stop that "
                    "program, or choose other ports with IOC_KAFKA_PORT=<port> (the broker uses "
                    "that port and the next one). If it is a local broker started with another "
                    "IOC_DATA_DIR, stop it with `ioc kafka down` and that IOC_DATA_DIR."
                )

    def _write_properties(self) -> None:
        values = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_path),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        lines = [
            "# Generated by infra/local_kafka.py on every `ioc kafka up`; edits are overwritten.",
            *(f"{key}={_escape_property(value)}" for key, value in values.items()),
        ]
        tmp = self.properties_file.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
        tmp.replace(self.properties_file)

    def _format_once(self, java: str, classpath: str) -> None:
        if (self.data_path / "meta.properties").exists():
            return
        if self.cluster_id_file.is_file():
            cluster_id = self.cluster_id_file.read_text().strip()
        else:
            cluster_id = _new_cluster_id()
            self.cluster_id_file.write_text(cluster_id + "\n")
        self.data_path.mkdir(parents=True, exist_ok=True)
        self._log(f"Formatting the Kafka log dir {self.data_path} (cluster id {cluster_id}).")
        cmd = [
            java, "-Xmx256m", *self._logging_options(), "-cp", classpath,
            "kafka.tools.StorageTool", "format", "-t", cluster_id,
            "-c", str(self.properties_file),
        ]  # fmt: skip
        with open(self.log_file, "ab") as out:
            out.write(_marker("formatting the log dir"))
            out.flush()
            try:
                rc = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=self.dir, env=self._env, timeout=FORMAT_TIMEOUT_S, check=False,
                ).returncode  # fmt: skip
            except subprocess.TimeoutExpired:
                rc = None
        if rc != 0:
            raise KafkaLauncherError(
                f"Formatting the Kafka log dir {self.data_path} failed "
                f"({'timed out' if rc is None else f'exit code {rc}'}).\n{_tail(self.log_file)}"
            )

    def _launch(self, java: str, classpath: str) -> int:
        cmd = [
            java, *BROKER_JVM_OPTIONS, *self._logging_options(), "-cp", classpath,
            "kafka.Kafka", str(self.properties_file),
        ]  # fmt: skip
        with open(self.log_file, "ab") as out:
            out.write(_marker(f"Kafka broker on {self.bootstrap}"))
            out.flush()
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.dir, env=self._env, start_new_session=True,
            )  # fmt: skip
        pid = self._proc.pid
        self._write_pid(pid)
        self._log(
            f"Starting Apache Kafka {_kafka_version()} (pid {pid}) on {self.bootstrap}; "
            f"log: {self.log_file}"
        )
        return pid

    def _wait_until_ready(self, pid: int, timeout: float, *, stop_on_failure: bool) -> None:
        started = time.monotonic()
        deadline = started + timeout
        next_progress = started + PROGRESS_EVERY_S
        admin: AdminClient | None = None
        self._log(f"Waiting for the Kafka broker to answer on {self.bootstrap} ...")
        while True:
            if not self._is_our_broker(pid):
                self.pid_file.unlink(missing_ok=True)
                raise KafkaLauncherError(
                    f"The Kafka broker (pid {pid}) exited during startup.\n{_tail(self.log_file)}"
                )
            now = time.monotonic()
            if _port_accepts(self.port):
                if admin is None:
                    # log_level 0: librdkafka's own connection chatter is not for the user.
                    admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
                try:
                    metadata = admin.list_topics(timeout=max(0.5, min(5.0, deadline - now)))
                except KafkaException:
                    metadata = None
                if metadata is not None and metadata.brokers:
                    self._log(
                        f"Kafka broker is up on {self.bootstrap} (pid {pid}, "
                        f"{time.monotonic() - started:.1f} s)."
                    )
                    return
                now = time.monotonic()
            if now >= deadline:
                action = ""
                if stop_on_failure:
                    self._stop(pid, 10.0)
                    self.pid_file.unlink(missing_ok=True)
                    action = " It has been stopped."
                else:
                    action = " Stop it with `ioc kafka down` and start it again."
                raise KafkaLauncherError(
                    f"The Kafka broker (pid {pid}) did not answer on {self.bootstrap} within "
                    f"{timeout:.0f} s.{action}\n{_tail(self.log_file)}"
                )
            if now >= next_progress:
                self._log(f"  ... still starting ({now - started:.0f} s)")
                next_progress += PROGRESS_EVERY_S
            time.sleep(0.2)

    def _wait_for_maven(self, proc: subprocess.Popen[bytes], started: float) -> int | None:
        next_progress = started + PROGRESS_EVERY_S
        while True:
            try:
                return proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - started > MAVEN_TIMEOUT_S:
                proc.kill()
                proc.wait()
                return None
            if now >= next_progress:
                downloaded = _count_downloads(self.maven_log)
                self._log(f"  ... still fetching ({now - started:.0f} s, {downloaded} files)")
                next_progress += PROGRESS_EVERY_S

    # ----------------------------------------------------------------- process bookkeeping

    def _stop(self, pid: int, timeout: float) -> None:
        if not self._signal(pid, signal.SIGTERM):
            return
        if self._wait_gone(pid, timeout):
            return
        self._log(f"The Kafka broker (pid {pid}) did not stop within {timeout:.0f} s; killing it.")
        self._signal(pid, signal.SIGKILL)
        if not self._wait_gone(pid, 10.0):
            raise KafkaLauncherError(f"The Kafka broker (pid {pid}) survived SIGKILL.")

    def _signal(self, pid: int, sig: signal.Signals) -> bool:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError as exc:
            raise KafkaLauncherError(
                f"Not allowed to stop the Kafka broker (pid {pid}): it belongs to another user."
            ) from exc
        return True

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._is_our_broker(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _is_our_broker(self, pid: int) -> bool:
        """True if ``pid`` is a live ``kafka.Kafka`` JVM started with this dir's properties."""
        if self._proc is not None and self._proc.pid == pid:
            # Our own child: ask the kernel directly (this also reaps it once it has exited).
            # Its /proc cmdline reads empty for a moment right after exec, so not that.
            return self._proc.poll() is None
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        if b"kafka.Kafka" not in args or os.fsencode(self.properties_file) not in args:
            return False
        state = stat.rpartition(")")[2].split()[:1]
        return state not in (["Z"], ["X"])  # a zombie has exited already

    def _running_pid(self) -> tuple[int | None, bool]:
        """(pid of this dir's running broker or None, whether the pid file is stale)."""
        file_pid = self._read_pid()
        if file_pid is not None and self._is_our_broker(file_pid):
            return file_pid, False
        # The pid file may be lost or stale while the broker still runs: look for it.
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._is_our_broker(int(entry.name)):
                return int(entry.name), True
        return None, self.pid_file.exists()

    def _stale_what(self) -> str:
        pid = self._read_pid()
        return "unreadable" if pid is None else f"process {pid} is not this dir's broker"

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _write_pid(self, pid: int) -> None:
        self.pid_file.write_text(f"{pid}\n")

    def _configured_port(self) -> int | None:
        try:
            text = self.properties_file.read_text(encoding="ascii")
        except OSError:
            return None
        match = re.search(r"^listeners=PLAINTEXT://[^:,]+:(\d+)", text, re.MULTILINE)
        return int(match.group(1)) if match else None

    def _logging_options(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={self.dir}"]

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise up/down of one data dir across processes (the JVM does not inherit it)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _status(self, pid: int | None, detail: str) -> KafkaStatus:
        return KafkaStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            data_dir=self.dir,
            log_file=self.log_file,
            detail=detail,
        )


# --------------------------------------------------------------------- helpers


def port_free(port: int) -> bool:
    # SO_REUSEADDR like the JVM's ServerSocket: a port in TIME_WAIT is free, a listener is not.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _read_classpath(path: Path) -> str | None:
    """The cached classpath, or None if there is none or a jar vanished from ~/.m2."""
    try:
        classpath = path.read_text().strip()
    except OSError:
        return None
    entries = classpath.split(os.pathsep)
    if not classpath or not all(Path(entry).is_file() for entry in entries):
        return None
    return classpath


def _java_major_version(java: str, env: Mapping[str, str]) -> int | None:
    """Major version from ``java -version`` (``"17.0.15"`` -> 17, ``"1.8.0_392"`` -> 8)."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, env=dict(env), timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KafkaLauncherError(
            f"Could not run {java} -version ({exc}). Install Java {MIN_JAVA_VERSION}+ or fix "
            "JAVA_HOME / PATH."
        ) from exc
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr.decode(errors="replace"))
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _kafka_version() -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    return match.group(1) if match else "(unknown version)"


def _new_cluster_id() -> str:
    """A random cluster id as Kafka's ``Uuid.randomUuid().toString()`` makes it."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):  # Kafka avoids these: they look like CLI options
            return cluster_id


def _escape_property(value: str) -> str:
    """Escape for java.util.Properties, which Kafka reads as ISO-8859-1."""
    out = []
    for char in value.replace("\\", "\\\\"):
        if ord(char) < 128:
            out.append(char)
        else:
            encoded = char.encode("utf-16-be")
            out.extend(
                f"\\u{int.from_bytes(encoded[i : i + 2], 'big'):04x}"
                for i in range(0, len(encoded), 2)
            )
    return "".join(out)


def _marker(what: str) -> bytes:
    return f"\n===== {datetime.now(UTC).isoformat()} {_START_MARKER} {what} =====\n".encode()


def _count_downloads(maven_log: Path) -> int:
    try:
        return maven_log.read_bytes().count(b"Downloaded from")
    except OSError:
        return 0


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log (only the latest run's part of broker.log), for error messages."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"({path} could not be read)"
    text = _ANSI.sub("", text)
    marker_at = text.rfind(_START_MARKER)
    if marker_at >= 0:
        text = text[text.find("\n", marker_at) + 1 :]
    tail = text.rstrip().splitlines()[-lines:]
    if not tail:
        return f"({path} is empty)"
    return f"Last lines of {path}:\n" + "\n".join(f"  {line}" for line in tail)
