"""The personal-data scanner: its phone and name rules, and that it finds what is planted in
real chDB tables (every kind of string column) and in dead-letter records — so a clean scan in
the e2e tests means something. Reference data alone is clean, official numbers are allowed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ioc.connectors.privacy import REPORT_TOPIC
from ioc.infra.privacy_scan import (
    DLQ_TOPIC,
    NameRule,
    ScanError,
    ScanReport,
    phones_in,
    scan_clickhouse,
    scan_records,
)
from ioc.schemas.serde import Serde

NOW = datetime(2026, 11, 30, 1, tzinfo=UTC)
NAMES = [NameRule.of("Nguyễn Văn Phúc"), NameRule.of("Trần Thị Lan")]


@pytest.mark.parametrize(("text", "number"), [
    ("0905123456", "0905123456"), ("gọi 0905 123 456 nhé", "0905123456"),
    ("0905.123.456", "0905123456"), ("0905-123-456", "0905123456"),
    ("+84 905 123 456", "0905123456"), ("84905123456", "0905123456"),
    ("SĐT0987654321", "0987654321"), ("tel:0326123456,", "0326123456"),
    ("(0235) 3812 345", "02353812345"), ("024 3825 1234", "02438251234"),
    ('{"phone":"0905123456"}', "0905123456"),
])
def test_phone_numbers_are_found_in_every_usual_writing(text: str, number: str) -> None:
    assert phones_in(text) == [number]


@pytest.mark.parametrize("text", [
    "905123456",                       # no leading zero: offsets and counts look like this
    "0.905123456", "15.0812345678",    # decimals, coordinates
    "2026-11-02 01:00:00.000", "1793581200000", "09051234567", "0105123456",
    "file-a0905123456b",               # inside a hex id
    "t1234:0:905123456-905123460",     # a dedup token
    "0905 123 4567",                   # 11 digits
])
def test_things_that_are_not_phone_numbers_are_not_reported(text: str) -> None:
    assert phones_in(text) == []


def test_names_match_as_full_names_without_accents_or_case() -> None:
    phuc = NAMES[0]
    assert phuc.search("gửi: NGUYEN VAN  PHUC.") and phuc.search("Nguyễn Văn Phúc")
    assert phuc.search('{"n": "Nguy\\u1ec5n V\\u0103n Ph\\u00fac"}')  # JSON escapes
    assert not phuc.search("Văn Phúc") and not phuc.search("Nguyễn Văn Phúcc")
    assert not phuc.search("Trường THCS Nguyễn Văn Trỗi")  # another person of the name family
    with pytest.raises(ScanError):
        NameRule.of("Lan")


def _insert(client: Any, table: str, row: dict[str, Any]) -> None:
    client.insert(table, [list(row.values())], column_names=list(row))


def test_planted_phone_numbers_and_names_are_found_in_every_kind_of_column(
        chdb_client: Any, fresh_db: str) -> None:
    baseline = scan_clickhouse(chdb_client, fresh_db, NAMES)
    assert baseline.findings == []  # the shipped reference data: schools, agencies, streets
    assert baseline.tables >= 25 and baseline.columns >= 100
    db = fresh_db
    _insert(chdb_client, f"{db}.feedback_report", {  # String
        "event_id": "P1", "occurred_at": NOW, "report_id": "P1",
        "description": "Tôi là Nguyễn Văn Phúc, gọi 0905 123 456"})
    _insert(chdb_client, f"{db}.alerts", {  # LowCardinality(String), String
        "alert_id": "a1", "rule": "x", "area_code": "+84 912 345 678", "summary": "ok",
        "starts_at": NOW, "updated_at": NOW})
    _insert(chdb_client, f"{db}.alert_events", {  # Array(String)
        "event_id": "e1", "occurred_at": NOW, "alert_keys": ["k", "TRAN THI LAN"]})
    _insert(chdb_client, f"{db}.dead_letters", {  # Nullable(String) key, binary payload
        "topic": REPORT_TOPIC, "partition": 0, "offset": 1, "key": "0987.654.321",
        "payload": b"\xc3\x01\x00\x14" + "Trần Thị Lan".encode(), "error_type": "decode",
        "reason": "r", "stage": "streams", "failed_at": NOW})
    report = scan_clickhouse(chdb_client, db, NAMES)
    found = {(f.where.split(".", 1)[1], f.kind): (f.count, f.samples) for f in report.findings}
    assert found == {
        ("feedback_report.description", "phone"): (1, ("09•••••456",)),
        ("feedback_report.description", "name"): (1, ("N. V. P.",)),
        ("alerts.area_code", "phone"): (1, ("09•••••678",)),
        ("alert_events.alert_keys", "name"): (1, ("T. T. L.",)),
        ("dead_letters.key", "phone"): (1, ("09•••••321",)),
        ("dead_letters.payload", "name"): (1, ("T. T. L.",)),
    }
    # without the names only the numbers are reported
    assert {f.kind for f in scan_clickhouse(chdb_client, db).findings} == {"phone"}


def test_numbers_of_reference_tables_are_official_and_allowed_everywhere(
        chdb_client: Any, fresh_db: str) -> None:
    db = fresh_db
    _insert(chdb_client, f"{db}.ref_feedback_agencies", {
        "agency": "HOTLINE", "name_vi": "Đường dây nóng (0235) 3812 345", "loaded_at": NOW})
    _insert(chdb_client, f"{db}.alerts", {
        "alert_id": "a2", "rule": "x", "summary": "Gọi đường dây nóng 0235.3812.345",
        "starts_at": NOW, "updated_at": NOW})
    report = scan_clickhouse(chdb_client, db)
    assert report.findings == [] and "02353812345" in report.allowed
    _insert(chdb_client, f"{db}.alerts", {
        "alert_id": "a3", "rule": "x", "summary": "người báo: 0905 222 333",
        "starts_at": NOW, "updated_at": NOW})
    assert [f.samples for f in scan_clickhouse(chdb_client, db).findings] == [("09•••••333",)]
    assert scan_clickhouse(chdb_client, db, allow_phones=["0905222333"]).findings == []


def _dead_letter(serde: Serde, payload: bytes, **over: Any) -> bytes:
    rec = {"topic": REPORT_TOPIC, "partition": 0, "offset": 7, "key": b"503",
           "payload": payload, "error_type": "decode", "reason": "not Avro",
           "stage": "streams", "failed_at": NOW, **over}
    return serde.encode(DLQ_TOPIC, rec)


def test_dead_letters_are_read_field_by_field_and_payloads_every_way() -> None:
    serde = Serde()
    avro = serde.encode_unchecked(REPORT_TOPIC, {
        "event_id": "x", "occurred_at": NOW, "source": "s", "area_code": "503",
        "report_id": "x", "status": "submitted", "channel": "app", "category": "waste",
        "description": "Nguyễn Văn Phúc", "address": "", "lat": None, "lon": None,
        "assigned_agency": "", "due_at": None, "rating": None, "reporter_pseudonym": ""})
    escaped = json.dumps({"reporter_name": "Trần Thị Lan"}).encode()  # \u escapes
    records = [
        (0, 1, b"k", _dead_letter(serde, avro)),
        (0, 2, b"k", _dead_letter(serde, escaped, reason="gọi 0905123456")),
        (1, 3, None, b"not a dead letter 0912 345 678"),
        (1, 4, b"k", _dead_letter(serde, b'{"description": "[s\xe1\xbb\x91 \xc4\x91\xc3\xa3 '
                                          b'\xe1\xba\xa9n]"}')),  # already redacted
    ]
    report = scan_records(records, DLQ_TOPIC, serde, NAMES, set(), ScanReport())
    got = sorted((f.where, f.kind, f.samples) for f in report.findings)
    assert got == [
        ("kafka ioc.dlq.v1[0]@1 payload", "name", ("N. V. P.",)),
        ("kafka ioc.dlq.v1[0]@2 payload", "name", ("T. T. L.",)),
        ("kafka ioc.dlq.v1[0]@2 reason", "phone", ("09•••••456",)),
        ("kafka ioc.dlq.v1[1]@3 value", "phone", ("09•••••678",)),
    ]
    assert report.records == 4
