"""Producing agencies' JSON-lines files to a real Kafka broker: bad lines are reported with their
number and reason, every good line arrives exactly once as a decodable Avro event keyed by its
segment, and the `ioc produce` command says all of that with the right exit status."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ioc.connectors.producer import (
    EventProducer,
    make_producer,
    partition_key,
    produce_file,
    produce_lines,
)
from ioc.schemas.catalogue import Catalogue
from ioc.schemas.serde import Serde

pytestmark = pytest.mark.kafka

FLOW = "ioc.traffic.flow.v1"
ROOT = Path(__file__).resolve().parents[2]
IOC = ROOT / ".venv" / "bin" / "ioc"
PARTITIONS = 3


def create_topic(bootstrap: str, name: str | None = None) -> str:
    name = name or f"test.producer.{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=PARTITIONS,
                                            replication_factor=1)])
    futures[name].result(timeout=30)
    return name


def message_count(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"wm-{uuid.uuid4().hex}"})
    try:
        total = 0
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def consume_all(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Message]:
    """Every message of ``topic`` (the count comes from the partitions' high watermarks, so
    an extra or a missing message fails the test instead of making it wait or pass)."""
    expected = message_count(bootstrap, topic)
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
        "enable.auto.commit": False, "fetch.wait.max.ms": 50,
    })
    messages: list[Message] = []
    try:
        # assign, not subscribe: no consumer-group rebalance to wait for.
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                messages.append(msg)
    finally:
        consumer.close()
    assert len(messages) == expected, f"read {len(messages)} of {expected} messages"
    return messages


def flow_line(event_id: str, segment: str, **changes: Any) -> str:
    obj = {"event_id": event_id, "occurred_at": "2026-11-29T07:30:00+07:00",
           "source": "SGTVT-QNA", "area_code": "502", "segment_id": segment,
           "vehicle_count": 25, "avg_speed_kmh": 38.5, "occupancy": 0.21}
    obj.update(changes)
    return json.dumps(obj, ensure_ascii=False)


# Line numbers are 1-based, as an editor shows them.
MIXED_LINES = [
    flow_line("ok-1", "QL1A-km935"),                                             # 1
    flow_line("ok-2", "DT607-km3"),                                              # 2
    '{"event_id": "broken-json", "occurred_at": ',                               # 3 bad
    flow_line("ok-3", "QL1A-km935", occupancy=None),                             # 4
    flow_line("naive-ts", "QL1A-km935", occurred_at="2026-11-29T07:30:00"),      # 5 bad
    "",                                                                          # 6 blank
    flow_line("negative", "QL14B-km12", vehicle_count=-4),                       # 7 bad
    flow_line("ok-4", "QL14B-km12", occurred_at=1764376200000),                  # 8
    flow_line("ok-5", "DT607-km3", occurred_at="2026-11-29T00:31:00Z"),          # 9
]
GOOD = {"ok-1": "QL1A-km935", "ok-2": "DT607-km3", "ok-3": "QL1A-km935",
        "ok-4": "QL14B-km12", "ok-5": "DT607-km3"}


def assert_mixed_report_and_topic(report: Any, bootstrap: str, topic: str) -> None:
    assert report.lines == len(MIXED_LINES)
    assert report.sent == len(GOOD)
    assert [n for n, _ in report.rejected] == [3, 5, 7]
    reasons = dict(report.rejected)
    assert reasons[3].startswith("invalid JSON")
    assert "occurred_at" in reasons[5] and "offset" in reasons[5]
    assert "vehicle_count" in reasons[7] and "-4" in reasons[7]
    assert not report.ok
    assert_topic_holds_exactly(bootstrap, topic, GOOD)


def assert_topic_holds_exactly(bootstrap: str, topic: str, expected: dict[str, str]) -> None:
    serde = Serde()
    partitions: dict[bytes, set[int]] = defaultdict(set)
    seen: dict[str, str] = {}
    for msg in consume_all(bootstrap, topic):
        record = serde.decode(FLOW, msg.value())
        assert record["event_id"] not in seen, f"duplicate {record['event_id']}"
        seen[record["event_id"]] = record["segment_id"]
        assert msg.key() == record["segment_id"].encode()
        assert msg.key() == partition_key(FLOW, record)
        partitions[msg.key()].add(msg.partition())
    assert seen == expected
    assert all(len(p) == 1 for p in partitions.values()), partitions  # one segment, one partition


def test_produce_lines_reports_bad_lines_and_sends_the_good_ones(kafka_broker: str) -> None:
    topic = create_topic(kafka_broker)
    routed = EventProducer(make_producer(kafka_broker), topic_name=lambda _t: topic)
    report = produce_lines(routed, FLOW, MIXED_LINES)
    delivery = routed.flush(30)
    assert delivery.delivered == len(GOOD) and delivery.failed == []
    assert_mixed_report_and_topic(report, kafka_broker, topic)


def test_produce_file_reports_bad_lines_and_sends_the_good_ones(
        kafka_broker: str, tmp_path: Path) -> None:
    topic = create_topic(kafka_broker)
    path = tmp_path / "flow.jsonl"
    path.write_text("\n".join(MIXED_LINES) + "\n", encoding="utf-8")
    producer = EventProducer(make_producer(kafka_broker), topic_name=lambda _t: topic)
    progress = io.StringIO()
    report = produce_file(producer, FLOW, path, progress_out=progress)
    assert progress.getvalue() == ""  # a small file finishes before a progress line would help
    assert_mixed_report_and_topic(report, kafka_broker, topic)


def test_produce_file_survives_a_line_in_another_encoding(
        kafka_broker: str, tmp_path: Path) -> None:
    # Windows tools write a BOM first; some agency exports are in a legacy Vietnamese code page.
    topic = create_topic(kafka_broker)
    path = tmp_path / "mixed-encoding.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + flow_line("bom-first", "QL1A-km935").encode() + b"\r\n"
        + flow_line("cp1258", "QL1A-km935", source="S\xd4GTVT").encode("cp1258") + b"\r\n"
        + flow_line("vi-utf8", "DT607-km3", source="SỞ GTVT").encode() + b"\r\n"
        + b'{"event_id": ' + b"9" * 5000 + b"}\n"
    )
    producer = EventProducer(make_producer(kafka_broker), topic_name=lambda _t: topic)
    report = produce_file(producer, FLOW, path, progress_out=None)
    assert [n for n, _ in report.rejected] == [2, 4]
    assert "not UTF-8" in report.rejected[0][1] and "0xd4" in report.rejected[0][1]
    assert report.rejected[1][1].startswith("invalid JSON")
    assert_topic_holds_exactly(kafka_broker, topic, {"bom-first": "QL1A-km935",
                                                     "vi-utf8": "DT607-km3"})


def test_a_lone_surrogate_is_a_rejected_line_not_a_crash(kafka_broker: str) -> None:
    topic = create_topic(kafka_broker)
    routed = EventProducer(make_producer(kafka_broker), topic_name=lambda _t: topic)
    lines = [flow_line("ok", "QL1A-km935"), flow_line("x", "QL1A-km935").replace('"x"',
                                                                                 '"\\ud800"')]
    report = produce_lines(routed, FLOW, lines)
    routed.flush(30)
    assert [n for n, _ in report.rejected] == [2]
    assert "event_id" in report.rejected[0][1]
    assert_topic_holds_exactly(kafka_broker, topic, {"ok": "QL1A-km935"})


# -- the command line -------------------------------------------------------------------------


def run_ioc(*args: str, bootstrap: str, prefix: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IOC_KAFKA_BOOTSTRAP": bootstrap, "IOC_TOPIC_PREFIX": prefix}
    return subprocess.run([str(IOC), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_cli_produce_prints_rejected_lines_exits_1_and_sends_the_rest(
        kafka_broker: str, tmp_path: Path) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    topic = create_topic(kafka_broker, prefix + FLOW)
    path = tmp_path / "flow.jsonl"
    path.write_text("\n".join(MIXED_LINES) + "\n", encoding="utf-8")
    result = run_ioc("produce", FLOW, "--file", str(path), bootstrap=kafka_broker,
                     prefix=prefix)
    assert result.returncode == 1, result.stderr
    rejected = [line for line in result.stderr.splitlines() if ": rejected: " in line]
    assert [line.split(": rejected: ")[0] for line in rejected] == [
        f"{path}:3", f"{path}:5", f"{path}:7"]
    assert "invalid JSON" in rejected[0]
    assert "offset" in rejected[1]
    assert "vehicle_count" in rejected[2]
    assert f"5 events sent to {topic}" in result.stdout
    assert "3 lines rejected of 9" in result.stdout
    assert_topic_holds_exactly(kafka_broker, topic, GOOD)


def test_cli_produce_of_a_clean_file_exits_0(kafka_broker: str, tmp_path: Path) -> None:
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    topic = create_topic(kafka_broker, prefix + FLOW)
    path = tmp_path / "clean.jsonl"
    path.write_text(flow_line("only", "QL1A-km935") + "\n", encoding="utf-8")
    result = run_ioc("produce", FLOW, "--file", str(path), bootstrap=kafka_broker,
                     prefix=prefix)
    assert result.returncode == 0, result.stderr
    assert ": rejected: " not in result.stderr
    assert_topic_holds_exactly(kafka_broker, topic, {"only": "QL1A-km935"})


def test_cli_produce_unknown_topic_exits_2_listing_the_known_ones(
        kafka_broker: str, tmp_path: Path) -> None:
    path = tmp_path / "flow.jsonl"
    path.write_text(flow_line("x", "QL1A-km935") + "\n", encoding="utf-8")
    result = run_ioc("produce", "ioc.traffic.flows.v1", "--file", str(path),
                     bootstrap=kafka_broker)
    assert result.returncode == 2
    assert "ioc.traffic.flows.v1" in result.stderr
    for known in Catalogue().event_topics:
        assert known in result.stderr


def test_cli_produce_missing_file_exits_2(kafka_broker: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = run_ioc("produce", FLOW, "--file", str(missing), bootstrap=kafka_broker)
    assert result.returncode == 2
    assert "file not found" in result.stderr and str(missing) in result.stderr


# -- a large file ---------------------------------------------------------------------------


def test_large_file_sends_every_line_and_shows_progress(
        kafka_broker: str, tmp_path: Path) -> None:
    n = 50_000
    topic = create_topic(kafka_broker)
    path = tmp_path / "big.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(flow_line(f"big-{i}", f"SEG-{i % 37}", vehicle_count=i % 120) + "\n")
    producer = EventProducer(make_producer(kafka_broker), topic_name=lambda _t: topic)
    progress = io.StringIO()
    started = time.monotonic()
    report = produce_file(producer, FLOW, path, progress_out=progress)
    elapsed = time.monotonic() - started
    assert (report.lines, report.sent, report.rejected) == (n, n, [])
    assert producer.report.delivered == n
    assert message_count(kafka_broker, topic) == n
    shown = progress.getvalue()
    if elapsed > 1.5:  # Progress waits 1 s before its first line; a fast machine never sees one
        assert shown.startswith("\r") and shown.endswith("\n")
        final = shown.rstrip("\n").split("\r")[-1]
        assert "100.0%" in final and f"{n} lines" in final and "0 rejected" in final
    else:
        print(f"{n} lines in {elapsed:.2f} s: no progress line expected", file=sys.stderr)
