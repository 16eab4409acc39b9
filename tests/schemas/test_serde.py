"""The wire format: Avro single-object encoding checked against the Avro specification (not
against fastavro), Confluent framing, schema evolution, and a decoder that turns every bad input
into a typed ``DecodeError`` so the worker can dead-letter it and carry on."""

from __future__ import annotations

import io
import json
import random
import shutil
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

from ioc.schemas.catalogue import AVRO_DIR, Catalogue, crc64_fingerprint
from ioc.schemas.serde import DecodeError, EncodeError, Serde

FLOW = "ioc.traffic.flow.v1"
INCIDENT = "ioc.traffic.incident.v1"
T0 = datetime(2026, 11, 29, 0, 30, 0, 123000, tzinfo=UTC)  # 07:30:00.123 in Vietnam

# -- the specification's reference algorithms, written out here on purpose -------------------

# "Parsing Canonical Form for Schemas" + "Schema Fingerprints" (CRC-64-AVRO) in the Avro spec.
EMPTY = 0xC15D213AA4D7A795
MASK64 = (1 << 64) - 1


def _fp_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp & MASK64)
    return table


FP_TABLE = _fp_table()


def fingerprint64(buf: bytes) -> int:
    fp = EMPTY
    for byte in buf:
        fp = (fp >> 8) ^ FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def canonical_form(schema: Any, namespace: str = "") -> str:
    """Parsing Canonical Form per the spec's rules: [PRIMITIVES] [FULLNAMES] [STRIP] [ORDER]
    [STRINGS] [WHITESPACE] (enough of them for the schemas of this repo and the test vectors)."""

    def fullname(name: str, ns: str) -> str:
        return name if "." in name or not ns else f"{ns}.{name}"

    def q(text: str) -> str:
        return json.dumps(text, ensure_ascii=False)

    if isinstance(schema, str):
        return q(schema) if schema in PRIMITIVES else q(fullname(schema, namespace))
    if isinstance(schema, list):
        return "[" + ",".join(canonical_form(s, namespace) for s in schema) + "]"
    kind = schema["type"]
    if kind in ("record", "error", "enum", "fixed"):
        name = fullname(schema["name"], schema.get("namespace", namespace))
        inner_ns = name.rpartition(".")[0]
        if kind == "enum":
            body = '"symbols":[' + ",".join(q(s) for s in schema["symbols"]) + "]"
        elif kind == "fixed":
            body = f'"size":{schema["size"]}'
        else:
            kind = "record"
            body = '"fields":[' + ",".join(
                '{"name":' + q(f["name"]) + ',"type":' + canonical_form(f["type"], inner_ns) + "}"
                for f in schema["fields"]
            ) + "]"
        return '{"name":' + q(name) + ',"type":' + q(kind) + "," + body + "}"
    if kind == "array":
        return '{"type":"array","items":' + canonical_form(schema["items"], namespace) + "}"
    if kind == "map":
        return '{"type":"map","values":' + canonical_form(schema["values"], namespace) + "}"
    return canonical_form(kind, namespace)  # {"type": "long", "logicalType": ...} -> "long"


def le_fingerprint(schema_json: Any) -> bytes:
    """The 8 header bytes the spec prescribes: CRC-64-AVRO of the PCF, little-endian."""
    return struct.pack("<Q", fingerprint64(canonical_form(schema_json).encode("utf-8")))


# Published test vectors: Apache Avro's own fingerprint tests (lang/csharp SchemaNormalization
# tests; the "int" value also in lang/ruby test_fingerprints.rb and goavro's crc64avro_test.go),
# given there as Java's signed 64-bit longs.
AVRO_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('"long"', -3434872931120570953),
    ('"float"', 5583340709985441680),
    ('"double"', -8181574048448539266),
    ('"bytes"', 5746618253357095269),
    ('"string"', -8142146995180207161),
    ('{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771),
    ('{"name":"a.b.foo","type":"record","fields":[]}', -4616218487480524110),
    ('{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}',
     7843277075252814651),
    ('{"name":"foo","type":"enum","symbols":["A1"]}', -6342190197741309591),
    ('{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}', -4448647247586288245),
    ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ('{"type":"array","items":"null"}', -589620603366471059),
    ('{"type":"map","values":"string"}', -8732877298790414990),
]


def raw_schema(topic: str) -> dict[str, Any]:
    return json.loads((AVRO_DIR / f"{topic}.avsc").read_text(encoding="utf-8"))


def avro_body(schema: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(schema), record)
    return buf.getvalue()


# -- realistic records, one per topic ---------------------------------------------------------

RECORDS: dict[str, dict[str, Any]] = {
    "ioc.security.incident.v1": {
        "event_id": "an-2026-11-29-0012", "occurred_at": T0, "source": "CA-QNA",
        "area_code": "503", "incident_type": "fire", "severity": "critical",
        "description": "Cháy nhà dân trên đường Trần Phú", "casualties": 2,
        "address": "Đường Trần Phú, phường Minh An", "lat": 15.8771, "lon": 108.3269},
    "ioc.cyber.mention.v1": {
        "event_id": "men-fb-88412", "occurred_at": T0, "source": "STTTT-QNA", "area_code": "",
        "channel": "facebook", "topic": "dat_dai", "sentiment_score": -0.64, "reach": 12500,
        "url": "https://facebook.example/p/88412"},
    "ioc.cyber.security_event.v1": {
        "event_id": "soc-2026-11-29-0031", "occurred_at": T0, "source": "SOC-QNA",
        "area_code": "", "system": "cong-dvc", "event_type": "ddos", "severity": "critical",
        "src_ip": "198.51.100.23",
        "description": "Tấn công từ chối dịch vụ vào Cổng Dịch vụ công"},
    "ioc.econ.indicator_report.v1": {
        "event_id": "stc-513-dtc-2026-10-r1", "occurred_at": T0, "source": "UBND-513",
        "area_code": "513", "indicator_code": "public_investment_disbursement",
        "period": "2026-10", "value": 38.5, "unit": "tỷ đồng",
        "reporting_agency": "UBND huyện Thăng Bình", "revision": 1},
    "ioc.health.facility_status.v1": {
        "event_id": "fs-bvdk-qnam-20261129T0730", "occurred_at": T0, "source": "SYT-QNA",
        "area_code": "502", "facility_id": "bvdk-qnam", "beds_total": 700,
        "beds_occupied": 652, "emergency_waiting": 11, "icu_total": 30, "icu_occupied": 27},
    "ioc.health.disease_case.v1": {
        "event_id": "cdc-2026-11-29-0144", "occurred_at": T0, "source": "CDC-QNA",
        "area_code": "506", "case_id": "QNA-SXH-2026-01442", "disease": "dengue",
        "classification": "confirmed", "onset_date": date(2026, 11, 26),
        "age_group": "age_15_24", "hospitalized": True, "facility_id": "ttyt-506"},
    "ioc.edu.attendance.v1": {
        "event_id": "att-510-th-01-20261129", "occurred_at": T0, "source": "SGDDT-QNA",
        "area_code": "510", "school_id": "510-th-01", "level": "primary",
        "school_day": date(2026, 11, 29), "enrolled": 412, "present": 398},
    "ioc.feedback.report.v1": {
        "event_id": "PA-261129-0042-1-assigned", "occurred_at": T0, "source": "TTGSDH-QNA",
        "area_code": "503", "report_id": "PA-261129-0042", "status": "assigned",
        "channel": "hotline", "category": "flooding",
        "description": "Nước ngập sâu 0,5 m trên đường Hùng Vương", "address": "Tổ 4, Cẩm Phô",
        "lat": 15.8794, "lon": 108.3350, "assigned_agency": "BCH-PCTT-QNA",
        "due_at": T0 + timedelta(days=3), "rating": None,
        "reporter_pseudonym": "3f9a0c5e7b21d846"},
    "ioc.egov.dossier.v1": {
        "event_id": "dvc-H49.UBND-503-261125-0042-resolved", "occurred_at": T0,
        "source": "VP-UBND", "area_code": "503", "dossier_id": "H49.UBND-503-261125-0042",
        "status": "resolved", "channel": "online", "procedure_code": "2.000720",
        "agency": "UBND-503", "received_at": T0 - timedelta(days=4),
        "due_at": T0 + timedelta(days=1), "resolved_at": T0, "fee_required": True,
        "paid_online": True, "online_level": "full"},
    "ioc.egov.portal_check.v1": {
        "event_id": "chk-cong-dvc-29417220", "occurred_at": T0, "source": "STTTT",
        "area_code": "", "system_id": "cong-dvc", "up": False, "response_ms": None,
        "http_status": 503, "check_location": "TTDL-QNA"},
    FLOW: {
        "event_id": "flow-502-QL1A-km935-20261129T0730", "occurred_at": T0,
        "source": "SGTVT-QNA", "area_code": "502", "segment_id": "QL1A-km935",
        "vehicle_count": 184, "avg_speed_kmh": 37.5, "occupancy": 0.42,
    },
    INCIDENT: {
        "event_id": "inc-2026-11-29-0007", "occurred_at": T0, "source": "CSGT-QNA",
        "area_code": "503", "segment_id": "QL1A-km940", "incident_type": "accident",
        "severity": "critical", "description": "Va chạm giữa xe tải và xe máy, ùn tắc 2 km",
        "lat": 15.5794, "lon": 108.4745,
    },
    "ioc.kpi.v1": {
        "kpi": "traffic.congestion_index", "window": "5m", "window_start": T0,
        "window_end": T0 + timedelta(minutes=5), "area_code": "502", "entity": "QL1A-km935",
        "value": 0.63, "sample_count": 5, "computed_at": T0 + timedelta(minutes=7),
        "is_final": True,
    },
    "ioc.alert.v1": {
        "alert_id": "9f1c2e7a5b3d4c10", "rule": "traffic.congestion", "severity": "warning",
        "status": "firing", "domain": "traffic", "area_code": "502", "entity": "QL1A-km935",
        "value": 0.63, "threshold": 0.6,
        "summary": "Ùn tắc trên QL1A km935 (Tam Kỳ): chỉ số 0,63 ≥ 0,6 trong 10 phút",
        "starts_at": T0, "ends_at": None, "updated_at": T0 + timedelta(minutes=10),
        "acked_by": "", "acked_at": None,
    },
    "ioc.alert_event.v1": {
        "event_id": "5d0c8a41f2b7e9036c1a4d22", "occurred_at": T0 + timedelta(minutes=11),
        "kind": "delivery", "alert_id": "9f1c2e7a5b3d4c10", "starts_at": T0,
        "rule": "traffic.congestion", "severity": "warning", "status": "firing",
        "domain": "traffic", "area_code": "502", "entity": "QL1A-km935",
        "summary": "[IOC Quảng Nam] CẢNH BÁO: Ùn tắc trên QL1A km935 (Tam Kỳ)",
        "group_key": 'giao-thong{area_code="502",domain="traffic"}', "route": "giao-thong",
        "receiver": "truc-giao-thong", "level": 0, "reason": "new",
        "notification_id": "a41f2b7e9036c1a4d225d0c8", "channel": "email",
        "recipient_id": "nguyen_van_an",
        "recipient": "Nguyễn Văn An <an.nv@sogtvt.quangnam.example>", "attempt": 1,
        "outcome": "sent", "detail": "SMTP smtp.quangnam.example:587 accepted", "actor": "",
        "alert_keys": ["9f1c2e7a5b3d4c10|1796007600000|firing|warning"], "payload": "",
    },
    "ioc.alert_ack.v1": {
        "ack_id": "0b7e4c1d2a9f4e58b6c3d1e2f3a4b5c6", "alert_id": "9f1c2e7a5b3d4c10",
        "starts_at": T0, "acked_by": "Nguyễn Văn An", "comment": "Đã cử CSGT phân luồng",
        "acked_at": T0 + timedelta(minutes=14), "first_acked_at": T0 + timedelta(minutes=14),
        "via": "link",
    },
    "ioc.silence.v1": {
        "silence_id": "9c1e2f3a4b5c", "matchers": ['entity="QL1A-km935"', 'domain="traffic"'],
        "starts_at": T0, "ends_at": T0 + timedelta(hours=2), "created_by": "Ngô Văn Khánh",
        "comment": "Bảo trì camera đếm xe", "created_at": T0, "updated_at": T0,
        "expired_by": "",
    },
    "ioc.dlq.v1": {
        "topic": FLOW, "partition": 2, "offset": 123456789012, "key": b"QL1A-km935",
        "payload": b"\xc3\x01\xde\xad\xbe\xef", "error_type": "schema",
        "reason": "unknown schema fingerprint deadbeef", "stage": "streams.traffic",
        "failed_at": T0,
    },
}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue()


@pytest.fixture(scope="module")
def serde(catalogue: Catalogue) -> Serde:
    return Serde(catalogue)


def flow(**changes: Any) -> dict[str, Any]:
    return {**RECORDS[FLOW], **changes}


# -- fingerprint and framing against the specification ----------------------------------------


def test_reference_fingerprint_reproduces_avros_published_vectors() -> None:
    for schema, signed in AVRO_VECTORS:
        parsed = json.loads(schema)
        assert canonical_form(parsed) == schema
        assert fingerprint64(schema.encode()) == signed & MASK64, schema


def test_crc64_fingerprint_is_the_spec_value_in_little_endian_order() -> None:
    for schema, signed in AVRO_VECTORS:
        expected = struct.pack("<Q", signed & MASK64)
        assert crc64_fingerprint(parse_schema(json.loads(schema))) == expected, schema
    # Not the big-endian order one gets by repacking the integer the wrong way round.
    assert crc64_fingerprint(parse_schema("int")) != struct.pack(">Q", 8247732601305521295)


def test_single_object_header_for_int_matches_avros_own_example() -> None:
    # Apache Avro's Ruby test suite: the single-object header of schema "int".
    expected = bytes.fromhex("c3 01 8f 5c 39 3f 1a d5 75 72")
    assert b"\xc3\x01" + crc64_fingerprint(parse_schema("int")) == expected
    assert b"\xc3\x01" + le_fingerprint("int") == expected


def test_every_catalogue_fingerprint_is_crc64_of_its_canonical_form(catalogue: Catalogue) -> None:
    assert set(catalogue.topics) == set(RECORDS)
    for topic in catalogue.topics:
        raw = raw_schema(topic)
        pcf = canonical_form(raw)
        assert to_parsing_canonical_form(catalogue.get(topic).parsed) == pcf, topic
        expected = struct.pack("<Q", fingerprint64(pcf.encode("utf-8")))
        assert catalogue.get(topic).fingerprint == expected, topic
        assert crc64_fingerprint(catalogue.get(topic).parsed) == expected, topic
        assert catalogue.by_fingerprint[expected].topic == topic


def test_flow_v1_canonical_form_is_pinned() -> None:
    # Changing ioc.traffic.flow.v1.avsc changes its fingerprint: the old file must then move to
    # schemas/avro/history/ioc.traffic.flow.v1/ or every message already on Kafka is unreadable.
    assert canonical_form(raw_schema(FLOW)) == (
        '{"name":"vn.ioc.traffic.TrafficFlow","type":"record","fields":['
        '{"name":"event_id","type":"string"},{"name":"occurred_at","type":"long"},'
        '{"name":"source","type":"string"},{"name":"area_code","type":"string"},'
        '{"name":"segment_id","type":"string"},{"name":"vehicle_count","type":"int"},'
        '{"name":"avg_speed_kmh","type":"double"},{"name":"occupancy","type":["null","double"]}]}'
    )


def test_encoded_message_is_c301_fingerprint_and_plain_avro_body(serde: Serde) -> None:
    for topic, record in RECORDS.items():
        data = serde.encode(topic, record)
        assert data[:2] == b"\xc3\x01"
        assert data[2:10] == le_fingerprint(raw_schema(topic)), topic
        body = io.BytesIO(data[10:])
        assert schemaless_reader(body, parse_schema(raw_schema(topic))) == record
        assert body.tell() == len(data) - 10


def test_spec_record_example_framed_as_a_single_object(tmp_path: Path) -> None:
    # The spec's binary-encoding example: record "test" {a: long = 27, b: string = "foo"} is
    # 36 06 66 6f 6f. As a single object it is C3 01 + LE CRC-64-AVRO of its PCF + that body.
    schema = {"type": "record", "name": "test",
              "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}]}
    (tmp_path / "ioc.spec.example.v1.avsc").write_text(json.dumps(schema), encoding="utf-8")
    serde = Serde(Catalogue(tmp_path))
    pcf = '{"name":"test","type":"record","fields":[{"name":"a","type":"long"},' \
          '{"name":"b","type":"string"}]}'
    assert canonical_form(schema) == pcf
    expected = b"\xc3\x01" + struct.pack("<Q", fingerprint64(pcf.encode())) + bytes.fromhex(
        "36 06 66 6f 6f")
    assert serde.encode("ioc.spec.example.v1", {"a": 27, "b": "foo"}) == expected
    assert serde.decode("ioc.spec.example.v1", expected) == {"a": 27, "b": "foo"}


# -- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", sorted(RECORDS))
def test_every_topic_round_trips_a_realistic_record(serde: Serde, topic: str) -> None:
    decoded = serde.decode(topic, serde.encode(topic, RECORDS[topic]))
    assert decoded == RECORDS[topic]
    for value in decoded.values():
        if isinstance(value, datetime):
            assert value.utcoffset() == timedelta(0)


def test_defaults_are_filled_when_the_writer_leaves_a_field_out(serde: Serde) -> None:
    record = {k: v for k, v in RECORDS[INCIDENT].items()
              if k not in ("segment_id", "description", "lat", "lon")}
    decoded = serde.decode(INCIDENT, serde.encode(INCIDENT, record))
    assert decoded == {**record, "segment_id": "", "description": "", "lat": None, "lon": None}


# -- Confluent framing ------------------------------------------------------------------------


def test_confluent_framing_decodes_with_a_schema_id_mapping(catalogue: Catalogue) -> None:
    parsed = catalogue.get(FLOW).parsed
    serde = Serde(catalogue, schema_ids={42: parsed})
    data = serde.encode_confluent(FLOW, flow(), 42)
    assert data[:5] == b"\x00\x00\x00\x00\x2a"
    assert data[5:] == avro_body(raw_schema(FLOW), flow())
    assert serde.decode(FLOW, data) == flow()
    # Framed by hand, not by encode_confluent: 0x00 + big-endian id + body.
    by_hand = b"\x00" + struct.pack(">I", 70000) + avro_body(raw_schema(FLOW), flow())
    assert Serde(catalogue, schema_ids={70000: parsed}).decode(FLOW, by_hand) == flow()


def test_confluent_framing_decodes_with_a_resolver_function(catalogue: Catalogue) -> None:
    asked: list[int] = []

    def resolve(schema_id: int) -> Any:
        asked.append(schema_id)
        if schema_id != 7:
            raise KeyError(schema_id)
        return catalogue.get(FLOW).parsed

    serde = Serde(catalogue, schema_ids=resolve)
    assert serde.decode(FLOW, serde.encode_confluent(FLOW, flow(), 7)) == flow()
    with pytest.raises(DecodeError) as err:
        serde.decode(FLOW, serde.encode_confluent(FLOW, flow(), 8))
    assert err.value.error_type == "schema"
    assert "8" in err.value.reason
    assert asked == [7, 8]


def test_confluent_unknown_id_and_missing_registry_are_schema_errors(
        catalogue: Catalogue) -> None:
    data = b"\x00" + struct.pack(">I", 99) + avro_body(raw_schema(FLOW), flow())
    with pytest.raises(DecodeError) as err:
        Serde(catalogue, schema_ids={1: catalogue.get(FLOW).parsed}).decode(FLOW, data)
    assert err.value.error_type == "schema"
    assert "unknown schema id 99" in err.value.reason
    with pytest.raises(DecodeError) as err:
        Serde(catalogue).decode(FLOW, data)
    assert err.value.error_type == "schema"
    assert "no schema registry" in err.value.reason


def test_encode_confluent_checks_like_encode(serde: Serde) -> None:
    with pytest.raises(EncodeError, match="vehicle_count"):
        serde.encode_confluent(FLOW, flow(vehicle_count=-1), 1)
    with pytest.raises(EncodeError, match="schema id"):
        serde.encode_confluent(FLOW, flow(), 2**32)


# -- schema evolution -------------------------------------------------------------------------


def _flow_without_occupancy() -> dict[str, Any]:
    old = raw_schema(FLOW)
    old["fields"] = [f for f in old["fields"] if f["name"] != "occupancy"]
    return old


def _old_message(old_schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    return b"\xc3\x01" + le_fingerprint(old_schema) + avro_body(old_schema, record)


@pytest.fixture
def evolved_dir(tmp_path: Path) -> Path:
    """A catalogue folder where flow.v1 gained `occupancy`; the earlier revision is history."""
    shutil.copy(AVRO_DIR / f"{FLOW}.avsc", tmp_path)
    history = tmp_path / "history" / FLOW
    history.mkdir(parents=True)
    (history / "1.avsc").write_text(json.dumps(_flow_without_occupancy()), encoding="utf-8")
    return tmp_path


def test_old_writer_schema_is_read_with_the_new_fields_default(evolved_dir: Path) -> None:
    catalogue = Catalogue(evolved_dir)
    assert catalogue.topics == [FLOW]
    assert "occupancy" in catalogue.get(FLOW).field_names  # writers use the current schema
    assert len(catalogue.by_fingerprint) == 2
    old_record = {k: v for k, v in flow().items() if k != "occupancy"}
    decoded = Serde(catalogue).decode(FLOW, _old_message(_flow_without_occupancy(), old_record))
    assert decoded == {**old_record, "occupancy": None}
    # The current revision still round-trips and new messages carry the new fingerprint.
    serde = Serde(catalogue)
    data = serde.encode(FLOW, flow())
    assert data[2:10] == le_fingerprint(raw_schema(FLOW))
    assert serde.decode(FLOW, data) == flow()


def test_old_writer_schema_without_history_is_an_unknown_fingerprint(serde: Serde) -> None:
    old_record = {k: v for k, v in flow().items() if k != "occupancy"}
    with pytest.raises(DecodeError) as err:
        serde.decode(FLOW, _old_message(_flow_without_occupancy(), old_record))
    assert err.value.error_type == "schema"
    assert le_fingerprint(_flow_without_occupancy()).hex() in err.value.reason


def test_incompatible_writer_is_a_schema_error_with_a_short_reason(
        tmp_path: Path, serde: Serde) -> None:
    # Another topic's record on the flow topic: valid bytes, wrong schema.
    kpi = serde.encode("ioc.kpi.v1", RECORDS["ioc.kpi.v1"])
    with pytest.raises(DecodeError) as err:
        serde.decode(FLOW, kpi)
    assert err.value.error_type == "schema"
    assert "vn.ioc.kpi.Kpi" in err.value.reason and len(err.value.reason) < 300
    # A current schema that added a field *without* a default cannot read old messages.
    current = raw_schema(FLOW)
    current["fields"].append({"name": "lane_count", "type": "int"})
    (tmp_path / f"{FLOW}.avsc").write_text(json.dumps(current), encoding="utf-8")
    (tmp_path / "history" / FLOW).mkdir(parents=True)
    shutil.copy(AVRO_DIR / f"{FLOW}.avsc", tmp_path / "history" / FLOW / "1.avsc")
    with pytest.raises(DecodeError) as err:
        Serde(Catalogue(tmp_path)).decode(FLOW, serde.encode(FLOW, flow()))
    assert err.value.error_type == "schema"


def test_catalogue_refuses_files_not_named_after_a_topic(tmp_path: Path) -> None:
    shutil.copy(AVRO_DIR / f"{FLOW}.avsc", tmp_path / "traffic_flow.avsc")
    with pytest.raises(ValueError, match="named after its topic"):
        Catalogue(tmp_path)


# -- garbage in, DecodeError out --------------------------------------------------------------


def _decode_error(serde: Serde, data: bytes | None, topic: str = FLOW) -> DecodeError:
    with pytest.raises(DecodeError) as err:
        serde.decode(topic, data)
    return err.value


def test_empty_and_missing_values_are_decode_errors(serde: Serde) -> None:
    assert _decode_error(serde, b"").error_type == "decode"
    assert _decode_error(serde, None).error_type == "decode"


def test_unknown_framing_and_truncated_headers_are_decode_errors(serde: Serde) -> None:
    good = serde.encode(FLOW, flow())
    for data in (b"{", b'{"event_id": "x"}', b"\xc3", b"\x01\xc3", good[:9], good[:2],
                 b"\x00", b"\x00\x00\x00\x01"):
        err = _decode_error(serde, data)
        assert err.error_type == "decode", data


def test_unknown_fingerprint_is_a_schema_error(serde: Serde) -> None:
    good = serde.encode(FLOW, flow())
    err = _decode_error(serde, b"\xc3\x01" + b"\x00" * 8 + good[10:])
    assert err.error_type == "schema"
    assert "0000000000000000" in err.reason


def test_unknown_topic_is_a_schema_error(serde: Serde) -> None:
    err = _decode_error(serde, serde.encode(FLOW, flow()), topic="ioc.nothing.v1")
    assert err.error_type == "schema"


def test_valid_header_with_truncated_body_is_a_decode_error(serde: Serde) -> None:
    for topic, record in RECORDS.items():
        data = serde.encode(topic, record)
        for cut in range(10, len(data)):
            err = _decode_error(serde, data[:cut], topic)
            assert err.error_type == "decode", (topic, cut)


def test_trailing_bytes_are_a_decode_error(serde: Serde) -> None:
    err = _decode_error(serde, serde.encode(FLOW, flow()) + b"\x00\x00")
    assert err.error_type == "decode"
    assert "2 trailing bytes" in err.reason


def test_well_formed_but_wrong_values_are_validation_errors(serde: Serde) -> None:
    # Written past the producer's checks, as a foreign client could.
    schema = raw_schema(FLOW)
    cases = {
        "vehicle_count": flow(vehicle_count=-3),
        "avg_speed_kmh": flow(avg_speed_kmh=412.0),
        "occupancy": flow(occupancy=1.5),
        "event_id": flow(event_id="  "),
        "segment_id": flow(segment_id=""),
    }
    for field, record in cases.items():
        data = b"\xc3\x01" + le_fingerprint(schema) + avro_body(schema, record)
        err = _decode_error(serde, data)
        assert err.error_type == "validation", field
        assert field in err.reason


def test_random_bytes_never_raise_anything_but_decode_error(
        catalogue: Catalogue) -> None:
    serde = Serde(catalogue, schema_ids={1: catalogue.get(FLOW).parsed})
    rng = random.Random(20261129)
    seen: set[str] = set()
    for topic in catalogue.topics:
        fp = catalogue.get(topic).fingerprint
        for _ in range(150):
            body = rng.randbytes(rng.randrange(0, 64))
            for data in (body, b"\xc3\x01" + fp + body, b"\x00\x00\x00\x00\x01" + body):
                try:
                    serde.decode(topic, data)
                except DecodeError as exc:
                    assert exc.error_type in ("decode", "schema", "validation")
                    assert exc.reason
                    seen.add(exc.error_type)
    assert {"decode", "schema"} <= seen


def test_corrupted_valid_messages_never_raise_anything_but_decode_error(serde: Serde) -> None:
    rng = random.Random(7)
    for topic, record in RECORDS.items():
        good = serde.encode(topic, record)
        for _ in range(200):
            data = bytearray(good)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                serde.decode(topic, bytes(data))
            except DecodeError:
                pass


# -- encode refuses what the contract forbids -------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("vehicle_count", "12"),
    ("vehicle_count", 12.0),
    ("vehicle_count", True),
    ("vehicle_count", 2**31),
    ("avg_speed_kmh", "fast"),
    ("occurred_at", "yesterday"),
    ("segment_id", 17),
    ("segment_id", None),
])
def test_encode_rejects_wrong_types_naming_the_field(
        serde: Serde, field: str, value: Any) -> None:
    with pytest.raises(EncodeError, match=field):
        serde.encode(FLOW, flow(**{field: value}))


def test_encode_rejects_a_missing_required_field(serde: Serde) -> None:
    record = {k: v for k, v in flow().items() if k != "avg_speed_kmh"}
    with pytest.raises(EncodeError, match="avg_speed_kmh"):
        serde.encode(FLOW, record)


def test_encode_rejects_a_bad_enum_symbol(serde: Serde) -> None:
    with pytest.raises(EncodeError, match="incident_type"):
        serde.encode(INCIDENT, {**RECORDS[INCIDENT], "incident_type": "crash"})


@pytest.mark.parametrize(("changes", "field"), [
    ({"vehicle_count": -1}, "vehicle_count"),
    ({"avg_speed_kmh": 300.5}, "avg_speed_kmh"),
    ({"avg_speed_kmh": -0.1}, "avg_speed_kmh"),
    ({"avg_speed_kmh": float("nan")}, "avg_speed_kmh"),
    ({"occupancy": 1.01}, "occupancy"),
    ({"occupancy": -0.2}, "occupancy"),
    ({"event_id": ""}, "event_id"),
    ({"event_id": "   "}, "event_id"),
    ({"source": ""}, "source"),
    ({"occurred_at": datetime(2026, 11, 29, 7, 30)}, "occurred_at"),  # noqa: DTZ001 - the point
    ({"event_id": "\ud800"}, "event_id"),  # a lone surrogate, legal in JSON, not in UTF-8
])
def test_encode_rejects_semantic_problems_naming_the_field(
        serde: Serde, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(EncodeError) as err:
        serde.encode(FLOW, flow(**changes))
    assert field in str(err.value)


def test_encode_reports_every_problem_at_once(serde: Serde) -> None:
    with pytest.raises(EncodeError) as err:
        serde.encode(FLOW, flow(vehicle_count=-1, avg_speed_kmh=999.0, occupancy=2.0))
    message = str(err.value)
    assert all(f in message for f in ("vehicle_count", "avg_speed_kmh", "occupancy"))


def test_boundary_values_are_accepted(serde: Serde) -> None:
    for changes in ({"vehicle_count": 0, "avg_speed_kmh": 0.0, "occupancy": 0.0},
                    {"avg_speed_kmh": 300.0, "occupancy": 1.0},
                    {"occupancy": None}):
        assert serde.decode(FLOW, serde.encode(FLOW, flow(**changes))) == flow(**changes)
