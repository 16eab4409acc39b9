"""LocalKafka runs a real single-node Kafka broker: it serves clients, survives restarts with its
data, is idempotent, and explains every way it can fail to start."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from helpers import find_free_port_pair

from ioc.infra.local_kafka import KafkaLauncherError, LocalKafka
from ioc.infra.settings import Settings

pytestmark = pytest.mark.kafka


def _new_topic(bootstrap: str) -> str:
    topic = f"test.local-kafka.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=30
    )
    return topic


def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    errors: list[object] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, value, key, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(30) == 0
    assert errors == [None]


def _consume_one(bootstrap: str, topic: str, timeout: float = 30.0) -> Message:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        for _ in range(int(timeout)):
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                return msg
        raise AssertionError(f"no message on {topic} within {timeout} s")
    finally:
        consumer.close()


def test_broker_serves_producers_and_consumers(kafka_broker: str) -> None:
    topic = _new_topic(kafka_broker)
    _produce(kafka_broker, topic, b"k1", b"hello")
    msg = _consume_one(kafka_broker, topic)
    assert (msg.key(), msg.value()) == (b"k1", b"hello")


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of its own, since these tests stop and restart it."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("own-kafka"), kafka_port=find_free_port_pair()
    )
    kafka = LocalKafka(settings)
    kafka.up()
    yield kafka
    kafka.down()


def test_up_twice_is_idempotent(own_broker: LocalKafka) -> None:
    first = own_broker.up()
    second = own_broker.up()
    assert first.running and second.running
    assert first.pid is not None and first.pid == second.pid
    assert first.bootstrap == own_broker.settings.bootstrap

    # Another process (a second `ioc kafka up`) finds the broker even without its pid file.
    own_broker.pid_file.unlink()
    other = LocalKafka(own_broker.settings, log=_quiet)
    assert other.status().pid == first.pid
    assert other.up().pid == first.pid
    assert own_broker.pid_file.read_text().strip() == str(first.pid)


def test_restart_keeps_topics_and_messages(own_broker: LocalKafka) -> None:
    bootstrap = own_broker.settings.bootstrap
    topic = _new_topic(bootstrap)
    _produce(bootstrap, topic, b"k", b"kept across restarts")

    stopped = own_broker.down()
    assert not stopped.running and stopped.pid is None
    assert own_broker.status().detail == "not running"
    assert not own_broker.pid_file.exists()
    own_broker.pid_file.write_text(f"{_dead_pid()}\n")  # a stale pid file must not stop `up`

    restarted = own_broker.up()
    assert restarted.running
    assert topic in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    assert _consume_one(bootstrap, topic).value() == b"kept across restarts"


def test_status_of_a_broker_never_started(tmp_path: Path) -> None:
    status = LocalKafka(Settings(data_dir=tmp_path, kafka_port=find_free_port_pair())).status()
    assert not status.running
    assert status.pid is None
    assert status.detail == "not running"


@pytest.mark.parametrize("use_own_pid", [False, True], ids=["process-gone", "pid-reused"])
def test_stale_pid_file_means_not_running(tmp_path: Path, use_own_pid: bool) -> None:
    kafka = LocalKafka(Settings(data_dir=tmp_path, kafka_port=find_free_port_pair()), log=_quiet)
    kafka.dir.mkdir(parents=True)
    kafka.pid_file.write_text(f"{os.getpid() if use_own_pid else _dead_pid()}\n")
    status = kafka.status()
    assert not status.running
    assert "stale pid file" in status.detail
    assert not kafka.down().running
    assert not kafka.pid_file.exists()


@pytest.mark.parametrize("taken", [0, 1], ids=["client-port", "controller-port"])
def test_port_taken_by_another_program(tmp_path: Path, taken: int) -> None:
    port = find_free_port_pair()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", port + taken))
        listener.listen()
        kafka = LocalKafka(Settings(data_dir=tmp_path, kafka_port=port), log=_quiet)
        with pytest.raises(KafkaLauncherError, match=rf"Port {port + taken}\b") as err:
            kafka.up()
    assert "IOC_KAFKA_PORT" in str(err.value)
    assert not kafka.status().running


def test_missing_java_says_to_install_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    kafka = LocalKafka(Settings(data_dir=tmp_path), env={"PATH": str(empty)}, log=_quiet)
    with pytest.raises(KafkaLauncherError, match=r"Java was not found.*Java 17 or newer"):
        kafka.up()


def test_bad_java_home_is_named(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "JAVA_HOME": str(tmp_path / "no-such-jdk")}
    kafka = LocalKafka(Settings(data_dir=tmp_path), env=env, log=_quiet)
    with pytest.raises(KafkaLauncherError, match=r"JAVA_HOME is set to .*no-such-jdk"):
        kafka.up()


def test_missing_maven_says_to_install_it(tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java is not None, "these tests need Java 17+ on PATH"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(Path(java).resolve())
    kafka = LocalKafka(Settings(data_dir=tmp_path / "data"), env={"PATH": str(bin_dir)}, log=_quiet)
    with pytest.raises(KafkaLauncherError, match=r"Maven \(`mvn`\) was not found.*install Maven"):
        kafka.ensure_jars()


def test_broker_that_exits_at_startup_shows_its_log(tmp_path: Path) -> None:
    kafka = LocalKafka(Settings(data_dir=tmp_path, kafka_port=find_free_port_pair()), log=_quiet)
    # Log dirs that belong to another node: Kafka refuses to start on them.
    kafka.data_path.mkdir(parents=True)
    (kafka.data_path / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=7\n"
        "directory.id=BBBBBBBBBBBBBBBBBBBBBB\n"
    )
    with pytest.raises(KafkaLauncherError, match="exited during startup") as err:
        kafka.up(timeout=60)
    message = str(err.value)
    assert f"Last lines of {kafka.log_file}" in message
    assert "node" in message.lower()
    assert not kafka.status().running


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _quiet(_line: str) -> None:
    pass
