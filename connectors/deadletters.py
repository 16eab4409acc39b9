"""Dead letters: reading ``ioc.dlq.v1``, and re-submitting records after a fix.

A dead letter is a message the platform could not decode or validate, kept with its original
bytes, where it came from (topic, partition, offset) and the reason (``error_type``:
``decode``, ``schema`` or ``validation``). They are read from the Kafka topic, not from
ClickHouse (``ioc.dead_letters``), because the embedded ClickHouse belongs to the running
``ioc run`` process; the topic has the same content.

A dead letter's id is its position in the dead-letter topic, ``<partition>:<offset>``.

**Replay** sends a dead letter back to its source topic, either with the original bytes (after
the cause was fixed elsewhere — a schema added to the catalogue, reference data loaded, a
registry back up) or with a corrected event given as JSON (validated like every producer's
events). The original bytes are checked first: a record that would be dead-lettered again is
not sent unless forced. Replays are idempotent downstream (one row per ``event_id``; windows
count an id once), so replaying twice does no harm.

**Access**: dead letters follow their source topic's rules. Through the gateway an agency
reads only the dead letters of topics its key may write (``GET /v1/dead-letters/{topic}``);
``ioc dlq`` is an operator's tool with the platform's own Kafka credentials. Kafka ACLs cannot
split one topic by its records' source topic, so direct consumer access to ``ioc.dlq.v1`` is
for the platform team only (issue 7's ACLs).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from ioc.infra.settings import Settings
from ioc.schemas.jsonconv import record_to_json
from ioc.schemas.serde import DecodeError, Serde

DLQ_TOPIC = "ioc.dlq.v1"


@dataclass(frozen=True)
class DeadLetter:
    partition: int      # in the dead-letter topic
    offset: int
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def source_topic(self) -> str:
        return str(self.record["topic"])

    @property
    def failed_at(self) -> datetime:
        value = self.record["failed_at"]
        assert isinstance(value, datetime)
        return value

    def summary(self) -> dict[str, Any]:
        r = self.record
        payload = r.get("payload") or b""
        return {"id": self.id, "topic": r["topic"], "partition": r["partition"],
                "offset": r["offset"], "error_type": r["error_type"], "reason": r["reason"],
                "stage": r["stage"], "failed_at": record_to_json({"t": r["failed_at"]})["t"],
                "payload_bytes": len(payload), "payload_hex": payload[:4096].hex()}


def read_dead_letters(settings: Settings, serde: Serde, *,
                      topic: str | None = None, max_messages: int = 200_000,
                      timeout: float = 10.0) -> list[DeadLetter]:
    """Every dead letter currently in the topic (oldest first per partition, then by time),
    optionally only those of one source topic."""
    name = settings.topic(DLQ_TOPIC)
    consumer = Consumer(settings.kafka_config(**{
                         "group.id": f"ioc-dlq-reader-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "enable.partition.eof": False}))
    out: list[DeadLetter] = []
    try:
        md = consumer.list_topics(name, timeout=timeout).topics.get(name)
        if md is None or md.error is not None:
            return []
        ends: dict[int, int] = {}
        starts = []
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(name, p, max(low, high - max_messages)))
        if not starts:
            return []
        consumer.assign(starts)
        deadline = time.monotonic() + timeout * 3
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.2):
                partition, offset = msg.partition(), msg.offset()
                if msg.error() or partition is None or offset is None:
                    continue
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
                try:
                    rec = serde.decode(DLQ_TOPIC, msg.value())
                except DecodeError:
                    continue
                if topic is None or rec["topic"] == topic:
                    out.append(DeadLetter(partition, offset, rec))
    except KafkaException as exc:
        raise RuntimeError(f"cannot read {name} at {settings.bootstrap}: {exc}") from None
    finally:
        consumer.close()
    out.sort(key=lambda d: (d.failed_at, d.partition, d.offset))
    return out


def find(letters: list[DeadLetter], dlq_id: str) -> DeadLetter:
    for d in letters:
        if d.id == dlq_id:
            return d
    raise KeyError(f"no dead letter {dlq_id!r} (ids are <partition>:<offset>, see `ioc dlq "
                   "list`)")


def payload_view(serde: Serde, letter: DeadLetter) -> dict[str, Any]:
    """What can be said about the original bytes: decoded as the source topic now, or why not,
    and the text if they are UTF-8 (e.g. JSON sent to the wrong place)."""
    payload: bytes = letter.record.get("payload") or b""
    view: dict[str, Any] = {"bytes": len(payload)}
    try:
        view["decoded"] = record_to_json(serde.decode(letter.source_topic, payload))
        view["decodes_now"] = True
    except DecodeError as exc:
        view["decodes_now"] = False
        view["still_fails"] = f"{exc.error_type}: {exc.reason}"
    try:
        view["text"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        view["hex"] = payload[:512].hex()
    return view
