"""The agencies manifest and the access it grants, without a broker (the real broker tests are
tests/infra/test_kafka_security.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ioc.infra.kafka_acl import (
    Acl,
    ClusterState,
    ManifestError,
    Topics,
    desired_acls,
    load_manifest,
    make_plan,
    parse_manifest,
)
from ioc.infra.settings import Secret, Settings
from ioc.streams.app import broker_credentials, faust_broker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "infra" / "security" / "agencies.example.toml"
TOPICS = Topics(
    all=("ioc.alert.v1", "ioc.dlq.v1", "ioc.feedback.report.v1", "ioc.kpi.v1",
         "ioc.security.incident.v1", "ioc.traffic.flow.v1"),
    events=("ioc.feedback.report.v1", "ioc.security.incident.v1", "ioc.traffic.flow.v1"))


def grants(acls: set[Acl], user: str, operation: str) -> set[str]:
    return {a.name for a in acls if a.principal == f"User:{user}" and a.operation == operation}


def test_the_example_manifest_keeps_agencies_apart() -> None:
    manifest = load_manifest(EXAMPLE)
    acls = desired_acls(manifest, Topics.from_catalogue())
    agencies = [p for p in manifest.principals if p.kind == "agency"]
    assert len(agencies) == 3
    written: set[str] = set()
    for agency in agencies:
        assert not grants(acls, agency.user, "READ")  # agencies read nothing
        own = grants(acls, agency.user, "WRITE")
        assert own == set(agency.write) and not own & written  # nobody shares a topic
        written |= own
        assert agency.quotas["producer_byte_rate"] > 0
    readers = {a.principal for a in acls if a.operation == "READ" and a.resource == "TOPIC"
               and a.name in Topics.from_catalogue().events}
    assert readers == {"User:ioc-platform"}  # only the platform reads raw topics
    dlq_writers = {a.principal for a in acls if a.operation == "WRITE"
                   and a.name == "ioc.dlq.v1"}
    assert dlq_writers == {"User:ioc-platform", "User:ioc-gateway"}


def test_star_leaves_out_outputs_dead_letters_and_feedback() -> None:
    manifest = parse_manifest({"service": [
        {"name": "s", "user": "s", "read": ["*"], "write": ["*"]},
        {"name": "t", "user": "t", "read": ["ioc.feedback.*", "ioc.dlq.v1"]}]})
    acls = desired_acls(manifest, TOPICS)
    assert grants(acls, "s", "READ") == grants(acls, "s", "WRITE") == {
        "ioc.security.incident.v1", "ioc.traffic.flow.v1"}
    assert grants(acls, "t", "READ") == {"ioc.feedback.report.v1", "ioc.dlq.v1"}


def test_topic_and_group_names_get_the_prefix() -> None:
    manifest = parse_manifest({"topic_prefix": "staging.", "agency": [
        {"code": "A", "user": "a", "topics": ["ioc.traffic.flow.v1"]}], "service": [
        {"name": "p", "user": "p", "groups": ["ioc-"], "create": ["ioc-streams-"]}]})
    acls = desired_acls(manifest, TOPICS)
    assert Acl("User:a", "WRITE", "TOPIC", "staging.ioc.traffic.flow.v1", "LITERAL") in acls
    assert Acl("User:p", "READ", "GROUP", "staging.ioc-", "PREFIXED") in acls
    assert Acl("User:p", "CREATE", "TOPIC", "staging.ioc-streams-", "PREFIXED") in acls


@pytest.mark.parametrize("agency, message", [
    ({"code": "A", "user": "a", "topics": ["ioc.kpi.v1"]}, "may not write"),
    ({"code": "A", "user": "a", "topics": ["ioc.dlq.v1"]}, "may not write"),
    ({"code": "A", "user": "a", "topics": ["ioc.feedback.report.v1"]}, "may not write"),
    ({"code": "A", "user": "a", "topics": ["*"]}, "may not write"),
    ({"code": "A", "user": "a", "topics": []}, "topics is empty"),
    ({"code": "A", "user": "a", "topics": ["x"], "read": ["x"]}, "unknown keys"),
    ({"code": "A", "user": "admin", "topics": ["x"]}, "super user"),
    ({"code": "A", "user": "a", "topics": ["x"], "produce_bytes_per_s": -1}, "positive"),
])
def test_manifests_that_break_the_model_are_refused(agency: dict[str, object],
                                                    message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest({"agency": [agency]})


def test_the_plan_adds_missing_removes_foreign_in_scope_and_sets_quotas() -> None:
    manifest = parse_manifest({"agency": [
        {"code": "A", "user": "a", "password_env": "PW_A", "topics": ["ioc.traffic.flow.v1"],
         "produce_bytes_per_s": 1000}]})
    stale = Acl("User:gone", "WRITE", "TOPIC", "ioc.traffic.flow.v1", "LITERAL")
    foreign = Acl("User:other", "READ", "TOPIC", "their.topic", "LITERAL")
    state = ClusterState({stale, foreign}, users=set(), quotas={"a": {"consumer_byte_rate": 5.0}})
    plan = make_plan(manifest, TOPICS, state, env={"PW_A": "x"})
    assert plan.create_users == ["a"] and not plan.missing_passwords
    assert {str(a) for a in plan.add} == {"User:a WRITE TOPIC ioc.traffic.flow.v1",
                                          "User:a DESCRIBE TOPIC ioc.traffic.flow.v1"}
    assert plan.remove == [stale]  # out-of-scope bindings are never touched
    assert plan.quotas == {"a": {"producer_byte_rate": 1000.0, "consumer_byte_rate": None}}
    assert make_plan(manifest, TOPICS, state, env={}, prune=False).remove == []
    assert make_plan(manifest, TOPICS, state, env={}).missing_passwords == ["a"]
    done = ClusterState(set(desired_acls(manifest, TOPICS)), {"a"},
                        {"a": {"producer_byte_rate": 1000.0}})
    assert make_plan(manifest, TOPICS, done, env={"PW_A": "x"}).empty
    assert make_plan(manifest, TOPICS, done, env={"PW_A": "x"}, rotate=True).rotate_users == ["a"]
    assert "x" not in "\n".join(make_plan(manifest, TOPICS, state, env={"PW_A": "x"}).lines())


def test_faust_gets_the_same_credentials_and_every_bootstrap_server(tmp_path: Path) -> None:
    assert faust_broker(Settings(kafka_bootstrap="k1:9093, k2:9093")) == \
        "kafka://k1:9093;kafka://k2:9093"
    assert broker_credentials(Settings()) is None
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    s = Settings(kafka_security_protocol="SASL_SSL", kafka_username="u",
                 kafka_password=Secret("pw"))
    creds = broker_credentials(s)
    assert (creds.username, creds.password, creds.mechanism.value, creds.protocol.value) == (
        "u", "pw", "SCRAM-SHA-512", "SASL_SSL")
    assert "pw" not in repr(creds)


KAFKA_CLIENTS = {"Producer", "Consumer", "AdminClient", "AIOKafkaConsumer",
                 "AIOKafkaProducer", "AIOKafkaAdminClient"}


def test_every_kafka_client_of_the_platform_gets_the_security_settings() -> None:
    """A client built from ``settings.bootstrap`` alone would connect in plaintext and be
    refused by a secured cluster: every construction passes ``kafka_config()``,
    ``kafka_security`` or ``aiokafka_kwargs`` (or is one of the helpers that take them)."""
    helpers = {"producer_config", "make_producer", "sink_consumer_config"}
    problems = []
    for folder in ("streams", "connectors", "infra"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "local_kafka.py":  # the demo's own plaintext broker
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", ""))
                text = ast.unparse(node)
                if name in helpers and "settings.bootstrap" in text \
                        and "kafka_security" not in text:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:80]}")
                if name in KAFKA_CLIENTS and "bootstrap.servers" in text:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:80]}")
    assert not problems, "Kafka clients without the security settings:\n" + "\n".join(problems)
