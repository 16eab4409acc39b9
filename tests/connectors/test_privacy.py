"""Personal data of feedback reports: keyed pseudonyms, masking, the key source, and the
producer's pre-send step (names and phone numbers never sent)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ioc.connectors.privacy import (
    MASK,
    REPORT_TOPIC,
    PseudonymKeyError,
    mask_numbers,
    normalise_name,
    normalise_phone,
    pre_send_transforms,
    protect_report,
    pseudonym_key,
    pseudonymize,
)
from ioc.connectors.producer import PARTITION_KEYS, EventProducer, produce_lines
from ioc.infra.settings import Secret, Settings
from ioc.schemas.serde import Serde

KEY = b"test-key-0123456789abcdef"


def test_same_phone_written_any_way_gives_one_pseudonym() -> None:
    ways = ["0905 123 456", "0905123456", "0905.123.456", "0905-123-456", "+84 905 123 456",
            "+84905123456", "84905123456", "905123456", " (090) 5123456 "]
    assert {normalise_phone(w) for w in ways} == {"0905123456"}
    assert len({pseudonymize(w, KEY) for w in ways}) == 1
    assert pseudonymize("0905 123 457", KEY) != pseudonymize("0905 123 456", KEY)


def test_pseudonym_is_the_documented_hmac_truncated_to_16_hex_digits() -> None:
    expected = hmac.new(KEY, b"phone:0905123456", hashlib.sha256).hexdigest()[:16]
    assert pseudonymize("+84 905 123 456", KEY) == expected
    name = hmac.new(KEY, b"name:nguyen van an", hashlib.sha256).hexdigest()[:16]
    assert pseudonymize("  Nguyễn  Văn AN ", KEY) == name
    assert normalise_name("Đặng Thị  Hoa") == "dang thi hoa"
    # another key, another pseudonym: it cannot be recomputed without the key
    assert pseudonymize("0905123456", b"another-key-0123456789") != pseudonymize(
        "0905123456", KEY)
    with pytest.raises(ValueError):
        pseudonymize("   ", KEY)


@pytest.mark.parametrize("text", [
    "Gọi 0905 123 456 giúp tôi", "sđt:0905.123.456", "0905-123-456", "(0235) 3812 345",
    "+84 905 123 456", "84905123456", "liên hệ 905123456", "CCCD 049012345678",
    "SĐT0905123456",
])
def test_phone_like_digit_runs_are_masked(text: str) -> None:
    masked = mask_numbers(text)
    assert MASK in masked
    assert sum(ch.isdigit() for ch in masked) < 6, masked


@pytest.mark.parametrize("text", [
    "Bồi thường 150.000.000 đồng", "ngày 12/10/2025 lúc 22 giờ", "số nhà 123, tổ 5",
    "gọi tổng đài 1900 1234", "Quốc lộ 1A km 945+200",
])
def test_amounts_dates_and_house_numbers_are_kept(text: str) -> None:
    assert mask_numbers(text) == text


def test_protect_report_replaces_name_and_phone_and_masks_text() -> None:
    raw = {"report_id": "A", "reporter_name": "Trần Thị Bình",
           "reporter_phone": "0912 345 678", "description": "Ngập sâu, gọi 0912345678",
           "address": "Tổ 3, SĐT 0912.345.678"}
    out = protect_report(raw, KEY)
    assert "reporter_name" not in out and "reporter_phone" not in out
    assert out["reporter_pseudonym"] == pseudonymize("0912345678", KEY)
    assert "0912" not in json.dumps(out) and "Bình" not in json.dumps(out, ensure_ascii=False)
    assert out["description"] == f"Ngập sâu, gọi {MASK}"
    assert protect_report(out, KEY) == out  # idempotent
    by_name = protect_report({"reporter_name": "Trần Thị Bình", "reporter_phone": ""}, KEY)
    assert by_name["reporter_pseudonym"] == pseudonymize("tran thi binh", KEY)
    kept = protect_report({"reporter_pseudonym": "00ff00ff00ff00ff"}, KEY)
    assert kept["reporter_pseudonym"] == "00ff00ff00ff00ff"


def test_key_comes_from_the_secret_setting_and_is_never_shown() -> None:
    s = Settings.from_env({"IOC_PSEUDONYM_KEY": "a-long-enough-secret-key"})
    assert pseudonym_key(s) == b"a-long-enough-secret-key"
    assert "a-long-enough" not in repr(s) and "a-long-enough" not in str(s.pseudonym_key)
    with pytest.raises(PseudonymKeyError, match="at least 16"):
        pseudonym_key(Settings(pseudonym_key=Secret("short")))


def test_embedded_default_generates_one_private_key_file_and_keeps_it(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "var")
    key = pseudonym_key(s)
    path = tmp_path / "var" / "pseudonym.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 64 and pseudonym_key(s) == key  # stable on this machine
    assert pseudonym_key(Settings(data_dir=tmp_path / "other")) != key
    os.chmod(path, 0o644)
    with pytest.raises(PseudonymKeyError, match="chmod 600"):
        pseudonym_key(s)


class FakeProducer:
    """Stands in for confluent-kafka's Producer: keeps what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any = None) -> None:
        self.sent.append((topic, key, value))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


def line(**extra: Any) -> str:
    obj = {"event_id": "e1", "occurred_at": "2026-11-02T08:00:00+07:00", "source": "APP",
           "area_code": "503", "report_id": "PA-1", "status": "submitted", "channel": "app",
           "category": "flooding", "description": "Ngập sâu, gọi tôi 0905 123 456"}
    obj.update(extra)
    return json.dumps(obj, ensure_ascii=False)


def test_producer_pre_send_step_sends_a_pseudonym_and_never_the_name_or_phone(
        tmp_path: Path) -> None:
    fake = FakeProducer()
    settings = Settings(data_dir=tmp_path)
    producer = EventProducer(fake, pre_send=pre_send_transforms(settings))  # type: ignore[arg-type]
    report = produce_lines(producer, REPORT_TOPIC, [
        line(reporter_name="Lê Văn Nam", reporter_phone="0905 123 456"),
        line(event_id="e2", report_id="PA-2", reporter_phone="+84905123456"),
    ])
    assert report.ok and report.sent == 2
    values = [Serde().decode(REPORT_TOPIC, v) for _, _, v in fake.sent]
    key = pseudonym_key(settings)
    assert [v["reporter_pseudonym"] for v in values] == [pseudonymize("0905123456", key)] * 2
    for (_, _, raw), v in zip(fake.sent, values, strict=True):
        assert b"905" not in raw and "Lê Văn Nam".encode() not in raw
        assert v["description"] == f"Ngập sâu, gọi tôi {MASK}"
    # keyed by area (a report never changes area), by report_id when the area is empty
    assert PARTITION_KEYS[REPORT_TOPIC] == ("area_code", "report_id")
    assert [k for _, k, _ in fake.sent] == [
        (v["area_code"] or v["report_id"]).encode() for v in values]


def test_without_the_pre_send_step_personal_fields_are_rejected_not_sent() -> None:
    fake = FakeProducer()
    producer = EventProducer(fake)  # type: ignore[arg-type]
    report = produce_lines(producer, REPORT_TOPIC, [line(reporter_phone="0905123456")])
    assert report.sent == 0 and fake.sent == []
    assert "reporter_phone" in report.rejected[0][1]


def test_records_sent_directly_go_through_the_step_too(tmp_path: Path) -> None:
    fake = FakeProducer()
    producer = EventProducer(fake, pre_send=pre_send_transforms(  # type: ignore[arg-type]
        Settings(data_dir=tmp_path)))
    producer.send(REPORT_TOPIC, {
        "event_id": "e", "occurred_at": datetime(2026, 11, 2, tzinfo=UTC), "source": "X",
        "area_code": "503", "report_id": "R", "status": "submitted", "channel": "web",
        "category": "noise", "description": "ồn quá, số tôi 0977777777", "address": "",
        "lat": None, "lon": None, "assigned_agency": "", "due_at": None, "rating": None,
        "reporter_pseudonym": "", "reporter_name": "Phạm Minh Tuấn"})
    (_, _, raw), = fake.sent
    assert b"0977777777" not in raw and "Tuấn".encode() not in raw


# -- dead letters of reports (redact_dead_letter) ---------------------------------------------

def _report(**over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "event_id": "R9-submitted", "occurred_at": datetime(2026, 11, 2, 1, tzinfo=UTC),
        "source": "TTGSDH", "area_code": "503", "report_id": "R9", "status": "submitted",
        "channel": "hotline", "category": "waste", "description": "", "address": "",
        "lat": None, "lon": None, "assigned_agency": "", "due_at": None, "rating": None,
        "reporter_pseudonym": ""}
    rec.update(over)
    return rec


def test_a_report_failing_validation_is_dead_lettered_redacted_and_still_replayable() -> None:
    from ioc.connectors.privacy import redact_dead_letter

    serde = Serde()
    # an agency's own client: a phone number where the pseudonym belongs, one in the text,
    # and a rating on a submitted step (so the worker dead-letters it as "validation")
    raw = serde.encode_unchecked(REPORT_TOPIC, _report(
        reporter_pseudonym="0905 111 333", description="gọi 0905111333", rating=7))
    with pytest.raises(Exception, match="validation"):
        serde.decode(REPORT_TOPIC, raw)
    key, payload, reason = redact_dead_letter(REPORT_TOPIC, b"503", raw,
                                              "rating: only a resolved report is rated", serde,
                                              KEY)
    assert b"0905" not in payload and b"111333" not in payload
    record = serde.decode(REPORT_TOPIC, payload, check=False)
    assert record["reporter_pseudonym"] == pseudonymize("0905111333", KEY)
    assert record["description"] == f"gọi {MASK}" and record["rating"] == 7
    assert key == b"503" and "payload redacted" in reason


def test_json_sent_straight_to_the_topic_keeps_only_contract_fields_without_personal_data(
        ) -> None:
    from ioc.connectors.privacy import redact_dead_letter

    raw = json.dumps({"event_id": "J1", "report_id": "J1", "reporter_name": "Lê Thị Mai",
                      "reporter_phone": "+84 912 355 678", "ho_ten": "Lê Thị Mai",
                      "description": "SĐT 0912.355.678"}, ensure_ascii=False).encode()
    key, payload, reason = redact_dead_letter(REPORT_TOPIC, b"0912345678", raw,
                                              "not Avro: unknown framing byte 0x7b", Serde(),
                                              KEY)
    kept = json.loads(payload)
    assert kept == {"event_id": "J1", "report_id": "J1", "description": f"SĐT {MASK}",
                    "reporter_pseudonym": pseudonymize("0912355678", KEY)}
    assert key == MASK.encode() and "ho_ten" in reason and "Mai" not in reason


def test_unreadable_report_bytes_are_withheld_and_other_topics_untouched() -> None:
    from ioc.connectors.privacy import redact_dead_letter

    garbage = b"\x00\x00\x00\x00\x07Nguyen Van A 0905123456"
    key, payload, reason = redact_dead_letter(REPORT_TOPIC, b"\xff\xfe", garbage, "bad",
                                              Serde(), KEY)
    assert (key, payload) == (None, b"") and f"{len(garbage)} bytes withheld" in reason
    same = redact_dead_letter("ioc.traffic.flow.v1", b"k", garbage, "bad", Serde(), KEY)
    assert same == (b"k", garbage, "bad")

    def no_key() -> bytes:
        raise PseudonymKeyError("no key")

    name_only = json.dumps({"reporter_name": "Lê Thị Mai"}).encode()
    assert redact_dead_letter(REPORT_TOPIC, None, name_only, "x", Serde(), no_key)[1] == b""


def test_a_pseudonym_in_a_dead_letter_is_kept_even_with_a_long_digit_run() -> None:
    from ioc.connectors.privacy import redact_dead_letter

    raw = json.dumps({"report_id": "J2", "reporter_pseudonym": "63d884148539d870"}).encode()
    payload = redact_dead_letter(REPORT_TOPIC, None, raw, "x", Serde(), KEY)[1]
    assert json.loads(payload)["reporter_pseudonym"] == "63d884148539d870"
