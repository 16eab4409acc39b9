"""Producing agencies' events to Kafka: validation, Avro framing, delivery confirmation.

``EventProducer`` wraps a confluent-kafka producer configured for safe delivery
(``enable.idempotence=true``, ``acks=all``): a record is encoded (and so validated) before it is
queued, keyed so one segment's or area's events stay ordered in one partition, and time-stamped
with its event time. ``produce_file`` turns a JSON-lines file into events, reporting each bad
line with its number and reason while still sending the good ones.

Per-topic **pre-send steps** (``EventProducer(pre_send={topic: fn})``) rewrite an event before it
is converted and validated — for a file line before JSON conversion, for a record before
encoding. They exist for personal data: ``ioc produce`` and the simulators pass
:func:`ioc.connectors.privacy.pre_send_transforms`, which turns a feedback report's reporter
name and phone number into a keyed pseudonym and masks phone numbers in its text, so they are
never sent. A step must be idempotent (a file line passes through it twice).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import KafkaError, Message, Producer

from ioc.schemas.jsonconv import ConversionError, json_to_record
from ioc.schemas.serde import EncodeError, Serde

# Partition key per topic: the fields tried in order (the first non-empty one is the key).
# Two rules: one entity's events stay in order on one partition (a report's lifecycle, a
# segment's readings), and a KPI window's key should not span partitions — a window aggregating
# events of several partitions closes when the partitions that fed it are past it, so a
# partition read late would open a second, partial window for the same key. So citizen reports
# go by their area (the per-area windows; a report never changes area; the report id when the
# area is empty). Dossiers still go by dossier id: the egov rule's day-closing waits for every
# dossier partition, but its daily per-agency *engine* windows can be closed early by a
# partition read late (known limitation, README).
PARTITION_KEYS: dict[str, tuple[str, ...]] = {
    "ioc.traffic.flow.v1": ("segment_id",),
    "ioc.traffic.incident.v1": ("area_code",),
    "ioc.security.incident.v1": ("area_code",),
    "ioc.cyber.mention.v1": ("topic",),
    "ioc.cyber.security_event.v1": ("system",),
    "ioc.econ.indicator_report.v1": ("indicator_code",),
    "ioc.health.facility_status.v1": ("facility_id",),
    "ioc.health.disease_case.v1": ("area_code",),
    "ioc.edu.attendance.v1": ("area_code",),
    "ioc.feedback.report.v1": ("area_code", "report_id"),
    "ioc.egov.dossier.v1": ("dossier_id",),
    "ioc.egov.portal_check.v1": ("system_id",),
    # Alerts (the worker keys them so) and the notifier's topics: acks compact to the latest per
    # alert, silences per silence.
    "ioc.alert.v1": ("alert_id",),
    "ioc.alert_ack.v1": ("alert_id",),
    "ioc.silence.v1": ("silence_id",),
    "ioc.alert_event.v1": ("alert_id",),
}

PreSend = Callable[[dict[str, Any]], dict[str, Any]]
"""A per-topic step applied to an event before conversion and validation (see module doc)."""


def partition_key(topic: str, record: Mapping[str, Any]) -> bytes:
    for field_name in PARTITION_KEYS.get(topic, ("area_code",)):
        value = record.get(field_name)
        if value:
            return str(value).encode()
    return str(record.get("event_id") or "").encode()


def producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "compression.type": "lz4",
        "message.timeout.ms": 60000,
        "log_level": 3,  # librdkafka warnings such as "coordinator load in progress" are retried
    }
    conf.update(extra)
    return conf


class DeliveryFailed(RuntimeError):
    pass


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: list[str] = field(default_factory=list)


class EventProducer:
    """Validated, keyed, idempotent Avro producing. Not thread-safe; one per thread."""

    def __init__(self, producer: Producer, serde: Serde | None = None,
                 topic_name: Callable[[str], str] = lambda t: t,
                 pre_send: Mapping[str, PreSend] | None = None) -> None:
        self._producer = producer
        self.serde = serde or Serde()
        self._topic_name = topic_name
        self._pre_send = dict(pre_send or {})
        self.report = DeliveryReport()

    def prepare(self, topic: str, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """``obj`` after the topic's pre-send step, if it has one."""
        step = self._pre_send.get(topic)
        return step(dict(obj)) if step is not None else obj

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.report.failed.append(f"{msg.topic()}: {err.str()}")
        else:
            self.report.delivered += 1

    def send(self, topic: str, record: Mapping[str, Any]) -> None:
        """Validate and queue one record (raises EncodeError with field-level reasons)."""
        record = self.prepare(topic, record)
        value = self.serde.encode(topic, record)
        # The Kafka timestamp stays the send time: event time lives in the record, and a
        # back-dated Kafka timestamp would make the broker's retention delete a backfill at once.
        kwargs: dict[str, Any] = {"key": partition_key(topic, record), "value": value,
                                  "on_delivery": self._on_delivery}
        while True:
            try:
                self._producer.produce(self._topic_name(topic), **kwargs)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.1)
        self._producer.poll(0)

    def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (tests and replays of dead letters)."""
        self._producer.produce(self._topic_name(topic), key=key, value=value,
                               on_delivery=self._on_delivery)
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> DeliveryReport:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise DeliveryFailed(f"{remaining} events not confirmed by the broker in {timeout}s")
        if self.report.failed:
            raise DeliveryFailed(f"{len(self.report.failed)} events failed: "
                                 + "; ".join(self.report.failed[:5]))
        return self.report


@dataclass
class FileReport:
    lines: int = 0
    sent: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


class Progress:
    """A one-line progress display on stderr for long files (silent for small ones)."""

    def __init__(self, total_bytes: int, out: TextIO = sys.stderr, every_s: float = 0.5) -> None:
        self.total = max(total_bytes, 1)
        self.out = out
        self.every_s = every_s
        self._last = 0.0
        self._start = time.monotonic()
        self.shown = False

    def update(self, done_bytes: int, lines: int, rejected: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self.every_s:
            return
        if not final and now - self._start < 1.0:
            return  # small files finish before a progress line would help
        self._last = now
        pct = 100.0 * done_bytes / self.total
        rate = lines / max(now - self._start, 1e-6)
        self.out.write(f"\r  {pct:5.1f}%  {lines} lines  {rejected} rejected  {rate:,.0f} lines/s")
        self.out.flush()
        self.shown = True
        if final:
            self.out.write("\n")


def produce_lines(producer: EventProducer, topic: str, lines: Iterable[str | bytes],
                  report: FileReport | None = None,
                  on_line: Callable[[int, int], None] | None = None) -> FileReport:
    """Send each JSON line as one event; a bad line is reported and skipped, never fatal.

    Lines may be ``str`` or raw ``bytes`` (decoded as UTF-8 line by line, so one line in another
    encoding is rejected with its number instead of aborting the file half-sent).
    """
    report = report or FileReport()
    schema = producer.serde.catalogue.get(topic)
    for number, raw in enumerate(lines, start=1):
        report.lines = number
        if isinstance(raw, bytes):
            if on_line:
                on_line(number, len(raw))
            try:
                # utf-8-sig on the first line: editors on Windows start files with a BOM.
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                report.rejected.append((number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                                                f"at column {exc.start + 1})"))
                continue
        else:
            line = raw
            if on_line:
                on_line(number, len(line.encode("utf-8", "surrogatepass")))
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            report.rejected.append((number, f"invalid JSON ({exc.msg}, column {exc.colno})"))
            continue
        except (ValueError, RecursionError) as exc:  # e.g. an integer over 4300 digits
            report.rejected.append((number, f"invalid JSON ({type(exc).__name__}: "
                                            f"{str(exc)[:120]})"))
            continue
        if isinstance(obj, dict):
            obj = producer.prepare(topic, obj)
        try:
            record = json_to_record(schema, obj)
            producer.send(topic, record)
        except (ConversionError, EncodeError) as exc:
            report.rejected.append((number, str(exc)))
            continue
        report.sent += 1
    return report


def produce_file(producer: EventProducer, topic: str, path: Path,
                 progress_out: TextIO | None = sys.stderr) -> FileReport:
    report = FileReport()
    progress = Progress(path.stat().st_size, progress_out) if progress_out else None
    done = 0

    def tick(_number: int, nbytes: int) -> None:
        nonlocal done
        done += nbytes
        if progress:
            progress.update(done, report.lines, len(report.rejected))

    with path.open("rb") as fh:
        produce_lines(producer, topic, fh, report, on_line=tick)
    producer.flush()
    if progress and progress.shown:
        progress.update(done, report.lines, len(report.rejected), final=True)
    return report


def make_producer(bootstrap: str, **extra: Any) -> Producer:
    return Producer(producer_config(bootstrap, **extra))
