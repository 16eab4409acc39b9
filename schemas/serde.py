"""Wire format: Avro binary in single-object encoding or Confluent framing.

Writers use single-object encoding (``C3 01`` + 8-byte CRC-64-AVRO fingerprint + body), which
needs no service: readers resolve the fingerprint against the schemas in the repo. When a
Confluent-compatible schema registry is configured, writers may use Confluent framing
(``00`` + 4-byte big-endian schema id + body); readers accept both.

Decoding never raises anything but :class:`DecodeError`, whose ``error_type`` says what went
wrong (``decode`` for framing/bytes, ``schema`` for an unknown or incompatible writer schema,
``validation`` for a well-formed record with bad values), so callers can dead-letter it.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError, validate

from ioc.schemas.catalogue import Catalogue, TopicSchema
from ioc.schemas.validation import semantic_errors

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = 0


class DecodeError(ValueError):
    def __init__(self, error_type: str, reason: str) -> None:
        super().__init__(f"{error_type}: {reason}")
        self.error_type = error_type
        self.reason = reason


class EncodeError(ValueError):
    """A record does not match its topic's schema; the message names the fields.

    ``problems`` holds one ``"field: reason"`` text per problem (the message joins them), so
    callers such as the gateway can report each field separately.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


# A schema-registry lookup: schema id -> parsed writer schema (raises KeyError if unknown).
SchemaIdResolver = Callable[[int], Any]


class Serde:
    """Encoding and decoding of the catalogue's topics.

    ``schema_ids`` resolves Confluent schema ids when reading; ``writer_ids`` (contract topic →
    the registry's id of its current schema) switches writing to Confluent framing. Both come
    from :func:`ioc.connectors.schema_registry.serde_for` when a registry is configured.
    """

    def __init__(self, catalogue: Catalogue | None = None,
                 schema_ids: SchemaIdResolver | Mapping[int, Any] | None = None,
                 writer_ids: Callable[[str], int] | None = None) -> None:
        self.catalogue = catalogue or Catalogue()
        self._schema_ids = schema_ids
        self._writer_ids = writer_ids

    # -- writing -------------------------------------------------------------------------------
    def encode(self, topic: str, record: Mapping[str, Any]) -> bytes:
        ts = self.catalogue.get(topic)
        if self._writer_ids is not None:
            return self.encode_confluent(topic, record, self._writer_ids(topic))
        return SINGLE_OBJECT_MAGIC + ts.fingerprint + _checked_body(ts, record)

    def encode_unchecked(self, topic: str, record: Mapping[str, Any]) -> bytes:
        """Single-object encoding of a record that the Avro types accept, *without* the
        semantic checks: for re-encoding a dead letter's decoded (and redacted) record so that
        it can be replayed once the cause is fixed. Never for new events."""
        ts = self.catalogue.get(topic)
        buf = io.BytesIO()
        try:
            schemaless_writer(buf, ts.parsed, dict(record))
        except (ValueError, TypeError, OverflowError) as exc:
            raise EncodeError(f"cannot encode for {ts.topic}: {_short(str(exc))}") from None
        return SINGLE_OBJECT_MAGIC + ts.fingerprint + buf.getvalue()

    def encode_confluent(self, topic: str, record: Mapping[str, Any], schema_id: int) -> bytes:
        ts = self.catalogue.get(topic)
        if not 0 <= schema_id <= 0xFFFFFFFF:
            raise EncodeError(f"schema id {schema_id} does not fit the 4-byte Confluent header")
        return struct.pack(">bI", CONFLUENT_MAGIC, schema_id) + _checked_body(ts, record)

    # -- reading -------------------------------------------------------------------------------
    def decode(self, topic: str, data: bytes | None, *, check: bool = True) -> dict[str, Any]:
        """Decode ``data`` read from ``topic`` into a record of the topic's current schema.
        ``check=False`` skips the semantic checks (a record that decodes but would be
        dead-lettered as ``validation``; the privacy redaction of dead letters needs it)."""
        reader = self._reader_schema(topic)
        if not data:
            raise DecodeError("decode", "empty message")
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < 10:
                raise DecodeError("decode", "truncated single-object header")
            writer_ts = self.catalogue.by_fingerprint.get(bytes(data[2:10]))
            if writer_ts is None:
                raise DecodeError("schema",
                                  f"unknown schema fingerprint {bytes(data[2:10]).hex()}")
            writer = writer_ts.parsed
            body = data[10:]
        elif data[0] == CONFLUENT_MAGIC:
            if len(data) < 5:
                raise DecodeError("decode", "truncated Confluent header")
            (schema_id,) = struct.unpack(">I", data[1:5])
            writer = self._lookup_schema_id(schema_id)
            body = data[5:]
        else:
            raise DecodeError("decode", f"not Avro: unknown framing byte 0x{data[0]:02x}")
        try:
            stream = io.BytesIO(body)
            record = schemaless_reader(stream, writer, reader.parsed)
            if stream.tell() != len(body):
                raise DecodeError("decode", f"{len(body) - stream.tell()} trailing bytes")
        except DecodeError:
            raise
        except SchemaResolutionError:
            # The bytes may be fine; the writer's schema cannot be read as this topic's schema
            # (another topic's record, or an incompatible change). fastavro's message embeds both
            # schemas in full, too long for a dead letter's reason.
            raise DecodeError("schema", f"writer schema {_schema_name(writer)} cannot be read "
                                        f"as {reader.full_name} ({topic})") from None
        except Exception as exc:  # fastavro raises many types on corrupt input
            reason = f"corrupt Avro body ({type(exc).__name__}: {_short(str(exc))})"
            raise DecodeError("decode", reason) from None
        if not isinstance(record, dict):
            raise DecodeError("schema", "writer schema is not a record")
        problems = semantic_errors(topic, record) if check else []
        if problems:
            raise DecodeError("validation", "; ".join(problems))
        return record

    def _reader_schema(self, topic: str) -> TopicSchema:
        try:
            return self.catalogue.get(topic)
        except KeyError as exc:
            raise DecodeError("schema", str(exc)) from None

    def _lookup_schema_id(self, schema_id: int) -> Any:
        if self._schema_ids is None:
            raise DecodeError("schema", f"Confluent framing (schema id {schema_id}) but no "
                                        "schema registry is configured")
        try:
            if callable(self._schema_ids):
                return self._schema_ids(schema_id)
            return self._schema_ids[schema_id]
        except KeyError:
            raise DecodeError("schema", f"unknown schema id {schema_id}") from None
        except Exception as exc:  # the registry is unreachable: dead-letter, replay later
            raise DecodeError("schema", f"cannot resolve schema id {schema_id}: "
                                        f"{_short(str(exc), 200)}") from None


def _checked_body(ts: TopicSchema, record: Mapping[str, Any]) -> bytes:
    """The Avro body of ``record``, after the type and semantic checks every writer must pass."""
    # Check without raising first: with raise_errors=True fastavro builds (and formats) an
    # exception for every union branch it tries, which made valid records 2-3x slower to encode.
    if not validate(record, ts.parsed, raise_errors=False):
        try:
            validate(record, ts.parsed, raise_errors=True)
        except ValidationError as exc:
            problems = [str(e) for e in getattr(exc, "errors", None) or [exc]]
            raise EncodeError(_validation_message(exc), problems) from None
        raise EncodeError(f"record does not match the schema of {ts.topic}")
    problems = semantic_errors(ts.topic, record)
    # fastavro's validation accepts any str, but a lone surrogate (valid in JSON as "\ud800")
    # cannot be written as UTF-8; say which field instead of failing inside the writer.
    for name, value in record.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                problems.append(f"{name}: not valid Unicode text ({exc.reason})")
    if problems:
        raise EncodeError("; ".join(problems), problems)
    buf = io.BytesIO()
    try:
        schemaless_writer(buf, ts.parsed, dict(record))
    except (ValueError, TypeError, OverflowError) as exc:  # anything validate() let through
        raise EncodeError(f"cannot encode for {ts.topic}: {_short(str(exc))}") from None
    return buf.getvalue()


def _schema_name(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("name") or schema.get("type"))
    return str(schema)[:80]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validation_message(exc: ValidationError) -> str:
    # fastavro reports "<path> is <value> of type <type> expected <schema>"; keep it short.
    return "; ".join(str(e) for e in exc.errors) if getattr(exc, "errors", None) else str(exc)


def utc_ms(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime: platform time must be timezone-aware UTC")
    return int(value.astimezone(UTC).timestamp() * 1000)
