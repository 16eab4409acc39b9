"""The platform on the secured broker (SASL_SSL + SCRAM-SHA-512, ACLs from the manifest):
``ioc setup`` as the super user, an agency producing with its own user, and ``ioc run`` (Faust
worker + sink) as the least-privileged platform user — the same KPIs as on plaintext, bad
records in the dead-letter table, and no password in any output (issue 7)."""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from pipeline import Pipeline
from test_pipeline_e2e import FLOW, crafted_flow

from ioc.connectors.producer import EventProducer, make_producer
from ioc.infra.kafka_acl import Topics, apply_manifest, parse_manifest
from ioc.infra.kafka_cluster import LocalKafkaCluster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLATFORM = next(
    s for s in tomllib.loads((ROOT / "infra/security/agencies.example.toml").read_text(
        encoding="utf-8"))["service"] if s["name"] == "platform")

pytestmark = pytest.mark.kafka_secure


def test_platform_runs_as_its_own_user_on_the_secured_cluster(
        secure_kafka: LocalKafkaCluster, tmp_path: Path) -> None:
    passwords = {"agency": uuid.uuid4().hex, "platform": uuid.uuid4().hex}
    tag = uuid.uuid4().hex[:6]
    platform_user, agency_user = f"ioc-platform-{tag}", f"agency-sgtvt-{tag}"
    p = Pipeline(secure_kafka.bootstrap, tmp_path,
                 kafka_env=secure_kafka.client_env(platform_user, passwords["platform"]),
                 client=secure_kafka.settings().kafka_security)
    admin_env = secure_kafka.client_env()  # the super user: topics and migrations
    setup = p.ioc("setup", env=admin_env)
    manifest = parse_manifest({
        "topic_prefix": p.prefix,
        "agency": [{"code": "SGTVT-QNA", "user": agency_user, "password_env": "AGENCY",
                    "topics": [FLOW], "produce_bytes_per_s": 1_000_000}],
        # the example manifest's platform service: what it grants is what `ioc run` needs
        "service": [{**EXAMPLE_PLATFORM, "user": platform_user, "password_env": "PLATFORM"}],
    })
    apply_manifest(secure_kafka.settings(topic_prefix=p.prefix), manifest,
                   Topics.from_catalogue(), log=lambda _: None,
                   env={"AGENCY": passwords["agency"], "PLATFORM": passwords["platform"]})

    agency = secure_kafka.settings(agency_user, passwords["agency"])
    producer = EventProducer(make_producer(agency.bootstrap, **agency.kafka_security),
                             topic_name=lambda t: p.prefix + t)
    events = crafted_flow()
    for e in events:
        producer.send(FLOW, e)
    producer.flush()
    raw = Producer(agency.kafka_config())
    raw.produce(p.prefix + FLOW, key=b"TK-HV-01", value=b"not avro at all")  # → dead letters
    assert raw.flush(30) == 0

    run = p.run_until_idle(idle_s=3.0)
    got = p.query(
        n="SELECT count() AS n FROM ioc.traffic_flow FINAL",
        dlq="SELECT count() AS n FROM ioc.dead_letters",
        kpi="SELECT entity, toString(window_start) AS ws, value FROM ioc.kpi FINAL "
            "WHERE kpi = 'traffic.vehicle_count' AND `window` = '1m'",
        raw="SELECT segment_id AS entity, toString(toStartOfMinute(occurred_at)) AS ws, "
            "toFloat64(sum(vehicle_count)) AS value FROM ioc.traffic_flow FINAL "
            "GROUP BY entity, ws")
    p.close()
    assert got["n"] == [{"n": len(events)}]
    assert got["dlq"] == [{"n": 1}]
    kpi = {(r["entity"], r["ws"][:16]): r["value"] for r in got["kpi"]}
    raw = {(r["entity"], r["ws"][:16]): r["value"] for r in got["raw"]}
    assert kpi and kpi == raw
    outputs = setup.stdout + setup.stderr + run.stdout + run.stderr
    for secret in (*passwords.values(), secure_kafka.admin_password.get()):
        assert secret not in outputs
