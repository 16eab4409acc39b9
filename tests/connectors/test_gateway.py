"""The ingestion gateway over real HTTP against the real broker: what is accepted arrives in
Kafka (after the broker's ack) exactly as Avro; what is not gets precise bilingual errors;
keys, topic permissions, rate limits and size limits hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import RunningGateway, call, read_all, start_gateway

from ioc.connectors.gateway.keys import KeyStore, hash_key
from ioc.schemas.serde import Serde

pytestmark = pytest.mark.kafka

FLOW = "ioc.traffic.flow.v1"
INCIDENT = "ioc.security.incident.v1"
DLQ = "ioc.dlq.v1"


def flow(i: int, **over: Any) -> dict[str, Any]:
    ev = {"event_id": f"gw-flow-{i}", "occurred_at": "2026-11-30T07:30:00+07:00",
          "source": "SGTVT-QNA", "area_code": "502", "segment_id": "QL1A-TK-01",
          "vehicle_count": 40 + i, "avg_speed_kmh": 42.5}
    ev.update(over)
    return ev


@pytest.fixture(scope="module")
def gw(kafka_broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    g = start_gateway(kafka_broker, tmp_path_factory.mktemp("gw"), [FLOW, INCIDENT, DLQ],
                      max_body=20_000, max_events=50)
    yield g
    g.stop()


@pytest.fixture(scope="module")
def keys(gw: RunningGateway) -> dict[str, str]:
    traffic, _ = gw.keys.add("SGTVT-QNA", ["ioc.traffic.*"], rate_per_s=10, burst=60)
    police, _ = gw.keys.add("CA-QNA", [INCIDENT], rate_per_s=1000, burst=1000)
    return {"traffic": traffic, "police": police}


def post(gw: RunningGateway, topic: str, body: Any, key: str | None, **kw: Any) -> Any:
    return call(f"{gw.url}/v1/events/{topic}", "POST", body, key=key, **kw)


def test_accepted_batch_is_in_kafka_after_the_answer(gw: RunningGateway,
                                                     keys: dict[str, str]) -> None:
    gw.clock[0] += 100
    r = post(gw, FLOW, [flow(1), flow(2), flow(3, source=None)], keys["traffic"])
    assert r.status == 200, r.body
    assert r.body["accepted"] == 3 and r.body["duplicates"] == 0
    assert [x["status"] for x in r.body["results"]] == ["accepted"] * 3
    # The answer came after the broker's ack: the events are readable now, decodable, and the
    # missing source was filled with the agency's code.
    serde = Serde()
    records = {rec["event_id"]: rec for rec in
               (serde.decode(FLOW, v) for v in read_all(gw.settings.bootstrap, gw.topic(FLOW)))}
    assert {"gw-flow-1", "gw-flow-2", "gw-flow-3"} <= set(records)
    assert records["gw-flow-3"]["source"] == "SGTVT-QNA"
    assert records["gw-flow-1"]["vehicle_count"] == 41


def test_retry_of_the_same_event_is_a_duplicate_and_not_sent_again(
        gw: RunningGateway, keys: dict[str, str]) -> None:
    gw.clock[0] += 100
    before = len(read_all(gw.settings.bootstrap, gw.topic(FLOW)))
    first = post(gw, FLOW, flow(10), keys["traffic"])
    again = post(gw, FLOW, flow(10), keys["traffic"])
    assert (first.status, again.status) == (200, 200)
    assert again.body["results"] == [{"index": 0, "event_id": "gw-flow-10",
                                      "status": "duplicate"}]
    assert len(read_all(gw.settings.bootstrap, gw.topic(FLOW))) == before + 1
    # the same id with other content is refused, in both languages
    changed = post(gw, FLOW, flow(10, vehicle_count=7), keys["traffic"])
    assert changed.status == 422
    err = changed.body["errors"][0]
    assert (err["field"], err["code"]) == ("event_id", "event_id_conflict")
    assert "đã được dùng" in err["vi"]


def test_invalid_events_get_field_errors_in_both_languages_and_nothing_is_sent(
        gw: RunningGateway, keys: dict[str, str]) -> None:
    gw.clock[0] += 100
    before = len(read_all(gw.settings.bootstrap, gw.topic(FLOW)))
    bad = [flow(20),
           flow(21, vehicle_count="many", occurred_at="2026-11-30T07:30:00"),
           {k: v for k, v in flow(22).items() if k != "segment_id"} | {"segmnt": "x"},
           flow(23, avg_speed_kmh=900, source="CA-QNA")]
    r = post(gw, FLOW, bad, keys["traffic"])
    assert r.status == 422
    assert r.body["error"]["code"] == "invalid_events"
    assert "3 of 4" in r.body["error"]["en"] and "3/4" in r.body["error"]["vi"]
    got = {(e["index"], e["field"], e["code"]) for e in r.body["errors"]}
    assert got == {
        (1, "vehicle_count", "type"), (1, "occurred_at", "timestamp"),
        (2, "segment_id", "missing"), (2, None, "unknown_field"),
        (3, "source", "source_not_allowed"), (3, "avg_speed_kmh", "range")}
    by = {(e["index"], e["field"]): e for e in r.body["errors"]}
    assert by[(1, "occurred_at")]["vi"].startswith("thời điểm '2026-11-30T07:30:00' thiếu múi giờ")
    assert by[(3, "avg_speed_kmh")]["en"] == "must be within 0..300, got 900.0"
    assert by[(3, "avg_speed_kmh")]["vi"] == "phải nằm trong khoảng 0..300, nhận được 900.0"
    assert by[(2, "segment_id")]["vi"] == "thiếu trường bắt buộc"
    assert by[(1, "vehicle_count")]["event_id"] == "gw-flow-21"
    assert len(read_all(gw.settings.bootstrap, gw.topic(FLOW))) == before


@pytest.mark.parametrize("raw,code", [
    (b"{not json", "invalid_json"), (b"", "empty_body"), (b"[]", "empty_batch"),
    (b"42", "not_an_event"), (b'{"x": NaN}', "invalid_json"), (b"\xff\xfe", "not_utf8"),
    (b"[" * 100 + b"]" * 100, "too_deep")])
def test_malformed_bodies_are_400(gw: RunningGateway, keys: dict[str, str], raw: bytes,
                                  code: str) -> None:
    gw.clock[0] += 100
    r = post(gw, FLOW, None, keys["traffic"], raw=raw)
    assert r.status == 400, r.body
    assert r.body["error"]["code"] == code
    assert r.body["error"]["vi"]


def test_keys_and_permissions(gw: RunningGateway, keys: dict[str, str]) -> None:
    gw.clock[0] += 100
    assert post(gw, FLOW, flow(30), None).status == 401
    assert post(gw, FLOW, flow(30), "ioc_00000000_guess").status == 401
    # agency A (police) cannot write agency B's (traffic) topic, and vice versa
    r = post(gw, FLOW, flow(30), keys["police"])
    assert r.status == 403 and r.body["error"]["code"] == "topic_forbidden"
    assert "không có quyền" in r.body["error"]["vi"]
    incident = {"event_id": "gw-inc-1", "occurred_at": 1796000000000, "source": "CA-QNA",
                "area_code": "503", "incident_type": "theft", "severity": "minor",
                "description": "Mất xe máy", "casualties": 0, "address": ""}
    assert post(gw, INCIDENT, incident, keys["traffic"]).status == 403
    assert post(gw, INCIDENT, incident, keys["police"]).status == 200
    assert post(gw, "ioc.kpi.v1", {}, keys["police"]).status == 404
    r = call(f"{gw.url}/v1/topics", key=keys["police"])
    assert [t["topic"] for t in r.body["topics"]] == [INCIDENT]
    # only the hash is stored; a revoked key stops working at once
    text = gw.keys.path.read_text()
    assert keys["police"] not in text and hash_key(keys["police"]) in text
    extra, entry = gw.keys.add("CA-QNA", [INCIDENT])
    assert post(gw, INCIDENT, dict(incident, event_id="gw-inc-2"), extra).status == 200
    KeyStore(gw.keys.path).revoke(entry.key_id)  # as `ioc gateway keys revoke` does
    assert post(gw, INCIDENT, dict(incident, event_id="gw-inc-3"), extra).status == 401


def test_rate_limit_answers_429_with_retry_after(gw: RunningGateway) -> None:
    key, _ = gw.keys.add("UBND-TK", [FLOW], sources=["UBND-TK"], rate_per_s=2, burst=5)
    events = [flow(100 + i, source="UBND-TK") for i in range(5)]
    assert post(gw, FLOW, events[:4], key).status == 200
    r = post(gw, FLOW, [*events[4:5], flow(110, source="UBND-TK")], key)
    assert r.status == 429
    assert r.headers["Retry-After"] == "1"  # 1 token left, 2 needed, 2 per second
    assert "thử lại sau 1 giây" in r.body["error"]["vi"]
    gw.clock[0] += 1.0
    assert post(gw, FLOW, [*events[4:5], flow(110, source="UBND-TK")], key).status == 200
    # a batch larger than the bucket can never pass: 413, not an endless 429
    r = post(gw, FLOW, [flow(200 + i, source="UBND-TK") for i in range(6)], key)
    assert (r.status, r.body["error"]["code"]) == (413, "too_many_events")


def test_size_limits_are_413(gw: RunningGateway, keys: dict[str, str]) -> None:
    gw.clock[0] += 100
    big = post(gw, FLOW, None, keys["traffic"], raw=b"[" + b" " * 30_000 + b"]")
    assert (big.status, big.body["error"]["code"]) == (413, "too_large")
    many = post(gw, FLOW, [flow(300 + i) for i in range(51)], keys["traffic"])
    assert many.status == 413
    assert post(gw, FLOW, "x", keys["traffic"], content_type="text/csv").status == 415


def test_health_metrics_openapi(gw: RunningGateway, keys: dict[str, str]) -> None:
    assert call(f"{gw.url}/health").body == {"status": "ok", "kafka": "ok"}
    spec = call(f"{gw.url}/openapi.json").body
    assert spec["openapi"].startswith("3.1")
    body = spec["paths"][f"/v1/events/{FLOW}"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["oneOf"][0]["$ref"].endswith(
        "/TrafficFlow")
    flow_schema = spec["components"]["schemas"]["TrafficFlow"]
    assert "segment_id" in flow_schema["required"] and "occupancy" not in flow_schema["required"]
    assert "/v1/events/ioc.kpi.v1" not in spec["paths"]
    metrics = call(f"{gw.url}/metrics").raw.decode()
    assert 'ioc_gateway_events_total{agency="SGTVT-QNA",outcome="accepted",topic="' \
           'ioc.traffic.flow.v1"}' in metrics
    assert "ioc_gateway_requests_total" in metrics
    # aiohttp's own errors are JSON in both languages too
    r = call(f"{gw.url}/nowhere")
    assert r.status == 404 and r.body["error"]["vi"]
    assert call(f"{gw.url}/v1/events/{FLOW}").status == 405


def test_keys_file_is_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "k" / "keys.json")
    clear, entry = store.add("SGTVT-QNA", [FLOW])
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert store.authenticate(clear) == entry
    assert store.authenticate(clear[:-1] + ("A" if clear[-1] != "A" else "B")) is None
    assert [k.key_id for k in store.keys()] == [entry.key_id]


def test_dead_letters_follow_the_source_topics_access_rules(gw: RunningGateway,
                                                            keys: dict[str, str]) -> None:
    from datetime import UTC, datetime

    from confluent_kafka import Producer

    serde = Serde()
    p = Producer({"bootstrap.servers": gw.settings.bootstrap})
    for topic, payload in ((FLOW, b"not avro"), (INCIDENT, b"\x00junk")):
        p.produce(gw.topic(DLQ), serde.encode(DLQ, {
            "topic": topic, "partition": 0, "offset": 7, "key": None, "payload": payload,
            "error_type": "decode", "reason": "not Avro", "stage": "streams",
            "failed_at": datetime(2026, 11, 30, tzinfo=UTC)}))
    assert p.flush(30) == 0
    mine = call(f"{gw.url}/v1/dead-letters/{FLOW}", key=keys["traffic"])
    assert mine.status == 200
    assert [(d["topic"], d["payload_hex"]) for d in mine.body["dead_letters"]] == [
        (FLOW, b"not avro".hex())]
    # the traffic agency cannot read the police's dead letters, nor the police the traffic's
    assert call(f"{gw.url}/v1/dead-letters/{INCIDENT}", key=keys["traffic"]).status == 403
    assert call(f"{gw.url}/v1/dead-letters/{FLOW}", key=keys["police"]).status == 403
    assert call(f"{gw.url}/v1/dead-letters/{FLOW}").status == 401
