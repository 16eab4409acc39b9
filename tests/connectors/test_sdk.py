"""The Python SDK against the real broker: validation before sending (bilingual field
errors), delivery confirmation, stable ids on retries; the documented example runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from gateway_harness import create_topics, read_all

from ioc.connectors.sdk import AgencyProducer, DeliveryError, ValidationError
from ioc.schemas.serde import Serde

pytestmark = pytest.mark.kafka

FLOW = "ioc.traffic.flow.v1"
ROOT = Path(__file__).resolve().parents[2]


def event(**over: object) -> dict[str, object]:
    return {"occurred_at": "2026-11-30T07:30:00+07:00", "area_code": "502",
            "segment_id": "QL1A-TK-01", "vehicle_count": 4, "avg_speed_kmh": 40.0, **over}


def test_send_validates_confirms_and_fills_ids(kafka_broker: str) -> None:
    prefix = f"sdk{uuid.uuid4().hex[:6]}."
    create_topics(kafka_broker, [prefix + FLOW])
    with AgencyProducer(bootstrap=kafka_broker, source="SGTVT-QNA",
                        topic_prefix=prefix) as p:
        generated = p.send(FLOW, event())
        own = p.send(FLOW, event(event_id="my-1"))
        with pytest.raises(ValidationError) as err:
            p.send(FLOW, event(vehicle_count=-1, occurred_at="07:30"))
        assert {(e.field, e.code) for e in err.value.errors} == {
            ("vehicle_count", "range"), ("occurred_at", "timestamp")}
        assert sorted(p.flush()) == sorted([generated, own])
    uuid.UUID(generated)
    records = [Serde().decode(FLOW, v) for v in read_all(kafka_broker, prefix + FLOW)]
    assert sorted(r["event_id"] for r in records) == sorted([generated, "my-1"])
    assert {r["source"] for r in records} == {"SGTVT-QNA"}


def test_undeliverable_events_raise_after_retries_naming_them() -> None:
    p = AgencyProducer(bootstrap="127.0.0.1:9", source="X", retries=1, delivery_timeout_s=1,
                       kafka_config={"socket.connection.setup.timeout.ms": 1000})
    event_id = p.send(FLOW, event(event_id="lost-1"))
    with pytest.raises(DeliveryError) as err:
        p.flush()
    assert list(err.value.failed) == [event_id]
    p.close()


def test_the_documented_example_runs_against_the_broker(kafka_broker: str) -> None:
    prefix = f"sdkex{uuid.uuid4().hex[:6]}."
    create_topics(kafka_broker, [prefix + FLOW])
    env = {**os.environ, "IOC_KAFKA_BOOTSTRAP": kafka_broker, "IOC_TOPIC_PREFIX": prefix}
    script = ROOT / "examples" / "send_traffic_flow.py"
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert "3 readings confirmed by Kafka" in out
    assert "rejected: vehicle_count: must be >= 0, got -1 / phải ≥ 0, nhận được -1" in out
    assert len(read_all(kafka_broker, prefix + FLOW)) == 3
    # docs/sdk.md shows the same script
    doc = (ROOT / "docs" / "sdk.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", doc, re.S)
    assert code and code.group(1).strip() == script.read_text(encoding="utf-8").strip()
