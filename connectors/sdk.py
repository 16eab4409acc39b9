"""Python SDK for agencies that can run Python: validated, confirmed, retried sending.

    from ioc.connectors.sdk import AgencyProducer, ValidationError

    with AgencyProducer(bootstrap="kafka.ioc.example.vn:9092", source="SGTVT-QNA") as p:
        event_id = p.send("ioc.traffic.flow.v1", {"occurred_at": "2026-11-30T07:30:00+07:00",
                          "area_code": "502", "segment_id": "QL1A-TK-01",
                          "vehicle_count": 42, "avg_speed_kmh": 38.5})
    # leaving the block waited until Kafka confirmed every event (or raised DeliveryError)

- **Validation** before anything is sent: the event is converted and checked exactly like the
  gateway and file uploads do; :class:`ValidationError` lists every problem with the field, a
  code and the reason in English and Vietnamese (``exc.errors``).
- **Event ids**: an event without ``event_id`` gets a new one (UUID) — returned by
  :meth:`~AgencyProducer.send` — and every retry of that event reuses it, so the platform
  stores it once whatever happens. To make re-running a whole job harmless too, give your own
  stable ids (e.g. your system's record id).
- **Delivery confirmation**: :meth:`~AgencyProducer.flush` (and leaving the ``with`` block)
  waits until the broker acknowledged every event (``acks=all``, idempotent producer) and
  returns the confirmed ids; :meth:`~AgencyProducer.send_and_wait` does it for one event.
- **Retries**: librdkafka retries transient errors itself within ``delivery_timeout_s``; an
  event that still failed is sent again, with the same bytes and id, up to ``retries`` times
  with a growing pause. What fails after that raises :class:`DeliveryError` naming the events.

``source`` (your agency code) fills the events' ``source`` when missing. Connection settings
other than ``bootstrap`` (TLS, SASL from issue 7) pass through ``kafka_config``. With
``schema_registry_url`` the events are written with Confluent framing (ids from the registry).
The contract of each topic: ``docs/contracts/``; a runnable example: ``docs/sdk.md``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from ioc.connectors.producer import partition_key, producer_config
from ioc.schemas.catalogue import Catalogue
from ioc.schemas.errors import FieldError, conversion_errors, field_errors
from ioc.schemas.jsonconv import ConversionError, json_to_record
from ioc.schemas.serde import EncodeError, Serde


class ValidationError(ValueError):
    """The event does not meet its topic's contract; ``errors`` name each field."""

    def __init__(self, topic: str, errors: list[FieldError]) -> None:
        text = "; ".join(f"{e.field + ': ' if e.field else ''}{e.en}" for e in errors)
        super().__init__(f"invalid event for {topic}: {text}")
        self.topic = topic
        self.errors = errors


class DeliveryError(RuntimeError):
    """Events Kafka did not confirm after every retry: ``failed`` maps event id → reason."""

    def __init__(self, failed: dict[str, str]) -> None:
        first = next(iter(failed.items()))
        super().__init__(f"{len(failed)} events not confirmed by Kafka (e.g. {first[0]}: "
                         f"{first[1]}); sending them again is safe")
        self.failed = failed


@dataclass
class _Pending:
    topic: str
    key: bytes
    value: bytes
    attempts: int = 1
    error: str | None = None


@dataclass
class AgencyProducer:
    bootstrap: str
    source: str
    retries: int = 3
    delivery_timeout_s: float = 30.0
    kafka_config: Mapping[str, Any] = field(default_factory=dict)
    topic_prefix: str = ""
    schema_registry_url: str | None = None
    catalogue: Catalogue = field(default_factory=Catalogue)

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ValueError("source (your agency code) must not be empty")
        if self.schema_registry_url:
            from ioc.connectors.schema_registry import serde_for
            from ioc.infra.settings import Settings

            self.serde = serde_for(Settings(topic_prefix=self.topic_prefix,
                                            schema_registry_url=self.schema_registry_url),
                                   self.catalogue)
        else:
            self.serde = Serde(self.catalogue)
        conf = producer_config(self.bootstrap, **{
            "message.timeout.ms": int(self.delivery_timeout_s * 1000), "linger.ms": 10})
        conf.update(self.kafka_config)
        self._producer = Producer(conf)
        self._pending: dict[str, _Pending] = {}
        self._confirmed: list[str] = []

    # -- sending ---------------------------------------------------------------------------
    def validate(self, topic: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """The Avro record of ``event`` (JSON-like: ISO timestamps allowed), or
        :class:`ValidationError`. Fills ``source``; does not fill ``event_id``."""
        if topic not in self.catalogue.event_topics:
            raise ValidationError(topic, field_errors([
                f"unknown topic {topic!r}; known: {', '.join(self.catalogue.event_topics)}"]))
        obj = dict(event)
        if obj.get("source") in (None, ""):
            obj["source"] = self.source
        try:
            record = json_to_record(self.catalogue.get(topic), obj)
            self.serde.encode(topic, record)
        except ConversionError as exc:
            raise ValidationError(topic, conversion_errors(topic, exc)) from None
        except EncodeError as exc:
            raise ValidationError(topic, field_errors(exc.problems)) from None
        return record

    def send(self, topic: str, event: Mapping[str, Any]) -> str:
        """Validate and queue one event; returns its ``event_id`` (generated if missing)."""
        obj = dict(event)
        if not str(obj.get("event_id") or "").strip():
            obj["event_id"] = str(uuid.uuid4())
        record = self.validate(topic, obj)
        event_id = str(record["event_id"])
        pending = _Pending(topic, partition_key(topic, record), self.serde.encode(topic, record))
        self._pending[event_id] = pending
        self._produce(event_id, pending)
        return event_id

    def send_and_wait(self, topic: str, event: Mapping[str, Any]) -> str:
        event_id = self.send(topic, event)
        self.flush()
        return event_id

    def _produce(self, event_id: str, p: _Pending) -> None:
        def done(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                if self._pending.pop(event_id, None) is not None:
                    self._confirmed.append(event_id)
            else:
                p.error = err.str()

        while True:
            try:
                self._producer.produce(self.topic_prefix + p.topic, key=p.key, value=p.value,
                                       on_delivery=done)
                break
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.2)
        self._producer.poll(0)

    def flush(self) -> list[str]:
        """Wait until Kafka confirmed every queued event; retry failures; returns the ids
        confirmed since the last flush (raises :class:`DeliveryError` for the rest)."""
        pause = 1.0
        while True:
            self._producer.flush(self.delivery_timeout_s + 5)
            failed = {i: p for i, p in self._pending.items() if p.error is not None}
            waiting = {i: p for i, p in self._pending.items() if p.error is None}
            if not failed and not waiting:
                break
            retry = {i: p for i, p in failed.items() if p.attempts <= self.retries}
            if not retry and not waiting:
                raise DeliveryError({i: str(p.error) for i, p in failed.items()})
            time.sleep(pause)
            pause = min(pause * 2, 30.0)
            for event_id, p in retry.items():
                p.attempts += 1
                p.error = None
                self._produce(event_id, p)
        confirmed, self._confirmed = self._confirmed, []
        return confirmed

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> AgencyProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            self.close()
