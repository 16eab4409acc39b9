"""Kafka security with a real broker (SASL_SSL + SCRAM-SHA-512, StandardAuthorizer): who may
connect, who may write and read which topic after ``ioc acl apply``, and produce quotas.

Each test builds its own topic prefix and its own users, on the session's secured broker.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from ioc.infra import cli
from ioc.infra.kafka_acl import Topics, aiokafka_kwargs, apply_manifest, parse_manifest
from ioc.infra.kafka_cluster import LocalKafkaCluster
from ioc.infra.runtime import ensure_topics
from ioc.infra.settings import Settings

pytestmark = pytest.mark.kafka_secure

FLOW, INCIDENT, KPI, DLQ = ("ioc.traffic.flow.v1", "ioc.security.incident.v1", "ioc.kpi.v1",
                            "ioc.dlq.v1")


@dataclass
class Deployment:
    """One test's slice of the secured cluster: topics under ``prefix``, users with ``tag``."""

    cluster: LocalKafkaCluster
    prefix: str
    tag: str
    env: dict[str, str]

    def user(self, name: str) -> str:
        return f"{name}-{self.tag}"

    def password(self, name: str) -> str:
        return self.env[f"PW_{name.upper()}_{self.tag}"]

    def settings(self, name: str) -> Settings:
        return self.cluster.settings(self.user(name), self.password(name))

    def config(self, name: str, password: str | None = None, **extra: Any) -> dict[str, Any]:
        return self.cluster.client_config(self.user(name), password or self.password(name),
                                          log_level=0, **extra)

    def manifest(self, *, with_b: bool = True, quota_a: int | None = None) -> Any:
        t = self.tag
        agency_a = {"code": "A", "user": f"agency_a-{t}", "password_env": f"PW_AGENCY_A_{t}",
                    "topics": [FLOW]}
        if quota_a:
            agency_a["produce_bytes_per_s"] = quota_a
        agencies = [agency_a]
        if with_b:
            agencies.append({"code": "B", "user": f"agency_b-{t}",
                             "password_env": f"PW_AGENCY_B_{t}", "topics": [INCIDENT],
                             "produce_bytes_per_s": 4 * 1024 * 1024})
        return parse_manifest({
            "topic_prefix": self.prefix,
            "agency": agencies,
            "service": [{"name": "platform", "user": f"platform-{t}",
                         "password_env": f"PW_PLATFORM_{t}",
                         "read": ["*", KPI, DLQ], "write": [KPI, DLQ], "groups": ["ioc-"]}],
        })

    def apply(self, manifest: Any, **kwargs: Any) -> Any:
        return apply_manifest(self.cluster.settings(topic_prefix=self.prefix), manifest,
                              Topics.from_catalogue(), env=self.env, log=lambda _: None,
                              **kwargs)


@pytest.fixture
def deployment(secure_kafka: LocalKafkaCluster) -> Iterator[Deployment]:
    tag = uuid.uuid4().hex[:6]
    prefix = f"s{tag}."
    env = {f"PW_{n.upper()}_{tag}": uuid.uuid4().hex for n in ("agency_a", "agency_b",
                                                                  "platform")}
    ensure_topics(secure_kafka.settings(topic_prefix=prefix))
    yield Deployment(secure_kafka, prefix, tag, env)


def produce_one(config: dict[str, Any], topic: str) -> KafkaError | None:
    """Send one record with acks=all and an idempotent producer; the delivery error or None."""
    producer = Producer({"acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": 15000, **config})
    result: list[KafkaError | None] = []
    producer.produce(topic, key=b"k", value=b"v", on_delivery=lambda e, _m: result.append(e))
    producer.flush(30)
    assert result, "no delivery report"
    return result[0]


def read_result(config: dict[str, Any], topic: str, group: str) -> set[Any]:
    """What a consumer in ``group`` gets on ``topic`` within 20 s: error codes, or a value."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    seen: set[Any] = set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not seen:
            msg = consumer.poll(0.5)
            if msg is not None:
                seen.add(msg.error().code() if msg.error() else msg.value())
        return seen
    finally:
        consumer.close()


def fetch_without_group(settings: Settings, topic: str) -> str | int:
    """Read every partition from offset 0 with no consumer group at all (aiokafka): the name of
    the error the broker answered with, or the number of records fetched (a topic the user may
    not even describe looks empty to aiokafka)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka import TopicPartition as TP

    async def fetch() -> str | int:
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False,
                                    **aiokafka_kwargs(settings))
        await consumer.start()
        try:
            tps = [TP(topic, p) for p in range(3)]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, 0)
            got = await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 20)
            return sum(len(records) for records in got.values())
        except Exception as exc:
            return type(exc).__name__
        finally:
            await consumer.stop()

    return asyncio.run(fetch())


# --------------------------------------------------------------------------- authentication


def test_plaintext_connection_is_refused(secure_kafka: LocalKafkaCluster) -> None:
    admin = AdminClient({"bootstrap.servers": secure_kafka.bootstrap, "log_level": 0})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    err = produce_one({"bootstrap.servers": secure_kafka.bootstrap, "log_level": 0,
                       "message.timeout.ms": 3000, "enable.idempotence": False},
                      "ioc.traffic.flow.v1")
    assert err is not None and err.code() == KafkaError._MSG_TIMED_OUT


def test_tls_without_sasl_is_refused(secure_kafka: LocalKafkaCluster) -> None:
    admin = AdminClient({"bootstrap.servers": secure_kafka.bootstrap, "log_level": 0,
                         "security.protocol": "SSL", "ssl.ca.location": str(secure_kafka.ca_file)})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_wrong_password_and_unknown_user_are_refused(secure_kafka: LocalKafkaCluster) -> None:
    for user, password in (("admin", "not-the-password"), ("nobody", "secret")):
        admin = AdminClient(secure_kafka.client_config(user, password, log_level=0))
        with pytest.raises(KafkaException):
            admin.list_topics(timeout=5)
    ok = AdminClient(secure_kafka.client_config(log_level=0))
    assert ok.list_topics(timeout=10).brokers  # the right password works


def test_a_client_that_does_not_trust_the_ca_is_refused(secure_kafka: LocalKafkaCluster,
                                                        tmp_path: Path) -> None:
    config = secure_kafka.client_config(log_level=0)
    config.pop("ssl.ca.location")  # system trust store: the local CA is not in it
    with pytest.raises(KafkaException):
        AdminClient(config).list_topics(timeout=5)


# --------------------------------------------------------------------------- ACLs


def test_acl_apply_dry_run_changes_nothing_and_apply_is_idempotent(
        deployment: Deployment) -> None:
    manifest = deployment.manifest()
    plan = deployment.apply(manifest, dry_run=True)
    assert sorted(plan.create_users) == sorted(deployment.user(n) for n in
                                               ("agency_a", "agency_b", "platform"))
    assert plan.add and not plan.remove
    again = deployment.apply(manifest, dry_run=True)  # the dry run changed nothing
    assert again.add == plan.add and again.create_users == plan.create_users
    deployment.apply(manifest)
    assert deployment.apply(manifest).empty  # a second apply has nothing to do


def test_each_agency_writes_only_its_own_topics_and_reads_none(deployment: Deployment) -> None:
    deployment.apply(deployment.manifest())
    p = deployment.prefix
    assert produce_one(deployment.config("agency_a"), p + FLOW) is None
    assert produce_one(deployment.config("agency_b"), p + INCIDENT) is None
    denied = KafkaError.TOPIC_AUTHORIZATION_FAILED
    for name, topic in (("agency_a", INCIDENT), ("agency_b", FLOW), ("agency_a", KPI),
                        ("agency_a", DLQ), ("agency_b", "ioc.alert.v1")):
        err = produce_one(deployment.config(name), p + topic)
        assert err is not None and err.code() == denied, (name, topic, err)
    # reading: neither another agency's topic nor its own, with or without a consumer group
    for name, topic in (("agency_a", INCIDENT), ("agency_a", FLOW), ("agency_b", FLOW)):
        assert fetch_without_group(deployment.settings(name), p + topic) in (
            "TopicAuthorizationFailedError", 0), (name, topic)
    assert read_result(deployment.config("agency_b"), p + FLOW, p + "ioc-sink") == {
        KafkaError.GROUP_AUTHORIZATION_FAILED}
    # the platform reads what the agencies wrote, in its own groups or without one
    assert read_result(deployment.config("platform"), p + FLOW, p + "ioc-sink") == {b"v"}
    assert fetch_without_group(deployment.settings("platform"), p + INCIDENT) == 1


def test_an_agency_removed_from_the_manifest_loses_its_access(deployment: Deployment) -> None:
    deployment.apply(deployment.manifest())
    kept = deployment.apply(deployment.manifest(with_b=False), prune=False)
    assert not kept.remove
    plan = deployment.apply(deployment.manifest(with_b=False))
    assert {a.principal for a in plan.remove} == {f"User:{deployment.user('agency_b')}"}
    err = produce_one(deployment.config("agency_b"), deployment.prefix + INCIDENT)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_password_rotation_replaces_the_old_password(deployment: Deployment) -> None:
    manifest = deployment.manifest()
    deployment.apply(manifest)
    old = deployment.password("agency_a")
    assert deployment.apply(manifest).empty  # no rotation unless asked
    deployment.env[f"PW_AGENCY_A_{deployment.tag}"] = new = uuid.uuid4().hex
    plan = deployment.apply(manifest, rotate=True)
    assert deployment.user("agency_a") in plan.rotate_users
    assert produce_one(deployment.config("agency_a", new), deployment.prefix + FLOW) is None
    with pytest.raises(KafkaException):
        AdminClient(deployment.config("agency_a", old)).list_topics(timeout=5)


def test_ioc_acl_apply_command(deployment: Deployment, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    t = deployment.tag
    manifest = tmp_path / "agencies.toml"
    manifest.write_text(f"""topic_prefix = "{deployment.prefix}"
[[agency]]
code = "A"
user = "agency_a-{t}"
password_env = "PW_AGENCY_A_{t}"
topics = ["{FLOW}"]
produce_bytes_per_s = 1000000
""")
    for k, v in {**deployment.cluster.client_env(), **deployment.env,
                 "IOC_TOPIC_PREFIX": deployment.prefix}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as done:
        cli.main(["acl", "apply", "--manifest", str(manifest), "--dry-run"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert f"+ user agency_a-{t}" in out and f"WRITE TOPIC {deployment.prefix}{FLOW}" in out
    assert "producer_byte_rate = 1000000" in out
    assert deployment.password("agency_a") not in out
    assert deployment.cluster.admin_password.get() not in out
    with pytest.raises(SystemExit) as done:
        cli.main(["acl", "apply", "--manifest", str(manifest)])
    assert done.value.code == 0
    with pytest.raises(SystemExit) as done:
        cli.main(["acl", "apply", "--manifest", str(manifest), "--dry-run"])
    assert "nothing to do" in capsys.readouterr().out


# --------------------------------------------------------------------------- quotas


class Sender(threading.Thread):
    """Produces ``size``-byte records to ``topic`` at ``rate`` per second (0 = as fast as the
    client allows) and counts what the broker acknowledged, by time of acknowledgement."""

    def __init__(self, config: dict[str, Any], topic: str, size: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.producer = Producer({**config, "acks": "all", "linger.ms": 5,
                                  "queue.buffering.max.kbytes": 2048,
                                  "message.timeout.ms": 120000})
        self.topic, self.value, self.rate = topic, b"x" * size, rate
        self.acked: list[float] = []  # monotonic times of acknowledgements
        self.errors = 0
        self.stop = threading.Event()

    def _report(self, err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            self.acked.append(time.monotonic())
        else:
            self.errors += 1

    def run(self) -> None:
        started = time.monotonic()
        sent = 0
        while not self.stop.is_set():
            if self.rate:
                wait = started + sent / self.rate - time.monotonic()
                if wait > 0:
                    self.producer.poll(wait)
                    continue
            try:
                self.producer.produce(self.topic, value=self.value, on_delivery=self._report)
                sent += 1
            except BufferError:
                self.producer.poll(0.05)
            self.producer.poll(0)
        self.producer.flush(10)

    def rate_between(self, start: float, end: float) -> float:
        return sum(1 for t in self.acked if start <= t < end) / (end - start)


@pytest.mark.serial  # compares produce rates: other tests running beside it skew them
def test_a_flooding_agency_is_throttled_and_does_not_starve_another(
        deployment: Deployment) -> None:
    quota = 256 * 1024  # agency A may produce 256 KiB/s
    deployment.apply(deployment.manifest(quota_a=quota))
    p = deployment.prefix
    steady = Sender(deployment.config("agency_b"), p + INCIDENT, size=1000, rate=200)
    steady.start()
    time.sleep(2)
    solo_from = time.monotonic()
    time.sleep(5)
    solo = steady.rate_between(solo_from, time.monotonic())
    flood = Sender(deployment.config("agency_a"), p + FLOW, size=10_000, rate=0)
    flood.start()
    time.sleep(3)  # the first burst is over and the broker throttles the flood
    flood_from = time.monotonic()
    time.sleep(6)
    flood_to = time.monotonic()
    during = steady.rate_between(flood_from, flood_to)
    flood_bytes = flood.rate_between(flood_from, flood_to) * 10_000
    flood.stop.set()
    steady.stop.set()
    flood.join(30)
    steady.join(30)
    print(f"agency B alone {solo:.0f} records/s, during A's flood {during:.0f} records/s; "
          f"A acknowledged {flood_bytes / 1024:.0f} KiB/s with a quota of {quota // 1024} KiB/s")
    assert steady.errors == 0
    assert solo > 150  # the steady agency gets its 200/s when alone ...
    assert during >= 0.8 * solo  # ... and keeps it during the flood
    assert flood_bytes <= 1.5 * quota  # the flood is held near its quota
    assert flood_bytes > 0  # throttled, not blocked
