"""The data contract: Avro schemas in ``schemas/avro``, one file per topic version.

A file is named after its topic (``ioc.traffic.flow.v1.avsc``) and holds the topic's current
schema: writers use it and readers resolve every record to it. A compatible change within a major
version (a new field with a default) edits that file in place; the schema it replaces moves to
``history/<topic>/<anything>.avsc`` so that messages written before the change stay readable.
The catalogue indexes every schema, current and historical, by its CRC-64-AVRO fingerprint
(single-object encoding) and each topic by its current schema.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

AVRO_DIR = Path(__file__).parent / "avro"
_TOPIC = re.compile(r"^ioc\.(?:[a-z0-9_]+\.)*v(\d+)$")

# Topics that carry agencies' events (the rest are derived: kpi, alert, dlq, and the notifier's
# history, acknowledgements and silences).
DERIVED_TOPICS = ("ioc.kpi.v1", "ioc.alert.v1", "ioc.dlq.v1",
                  "ioc.alert_event.v1", "ioc.alert_ack.v1", "ioc.silence.v1")


@dataclass(frozen=True)
class TopicSchema:
    topic: str
    version: int
    raw: dict[str, Any]
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO as the Avro spec frames it

    @property
    def full_name(self) -> str:
        return f"{self.raw.get('namespace', '')}.{self.raw['name']}".lstrip(".")

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.raw["fields"]]


def crc64_fingerprint(parsed: Any) -> bytes:
    """The 8 fingerprint bytes for single-object encoding.

    fastavro's hex string is already in the little-endian order the spec puts on the wire, so it
    is decoded as bytes, not repacked as an integer.
    """
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def _load(topic: str, path: Path) -> TopicSchema:
    m = _TOPIC.match(topic)
    if not m:
        raise ValueError(f"schema file must be named after its topic: {path}")
    raw = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_schema(raw, _write_hint=False)
    return TopicSchema(topic, int(m.group(1)), raw, parsed, crc64_fingerprint(parsed))


class Catalogue:
    """All schemas of the repo, by topic and by fingerprint."""

    def __init__(self, directory: Path = AVRO_DIR) -> None:
        self.directory = directory
        self.by_topic: dict[str, TopicSchema] = {}
        self.by_fingerprint: dict[bytes, TopicSchema] = {}
        for path in sorted(directory.glob("*.avsc")):
            ts = _load(path.name.removesuffix(".avsc"), path)
            self.by_topic[ts.topic] = ts
            self.by_fingerprint[ts.fingerprint] = ts
        # Earlier revisions: readable (found by fingerprint), never written.
        for path in sorted(directory.glob("history/*/*.avsc")):
            ts = _load(path.parent.name, path)
            self.by_fingerprint.setdefault(ts.fingerprint, ts)

    def get(self, topic: str) -> TopicSchema:
        try:
            return self.by_topic[topic]
        except KeyError:
            known = ", ".join(sorted(self.by_topic))
            raise KeyError(f"unknown topic {topic!r}; known topics: {known}") from None

    @property
    def event_topics(self) -> list[str]:
        return sorted(t for t in self.by_topic if t not in DERIVED_TOPICS)

    @property
    def topics(self) -> list[str]:
        return sorted(self.by_topic)
