"""JSON → Avro record conversion for files and HTTP bodies.

Agencies send JSON; the contract is Avro. Timestamps (``timestamp-millis`` fields) are accepted
as ISO-8601 strings *with* an offset (``2026-11-29T07:30:00+07:00``) or as epoch milliseconds;
a naive ISO string is rejected because its time zone would be a guess. Calendar dates (``date``
fields, e.g. a school day) are ISO ``YYYY-MM-DD`` strings. Missing fields with a
default take it; unknown fields are rejected so a typo in a field name cannot silently drop data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ioc.schemas.catalogue import Catalogue, TopicSchema


class ConversionError(ValueError):
    """The JSON object cannot become a record of the topic; ``problems`` name each field.

    ``partial`` holds the fields that did convert, so callers can also run the semantic checks
    on them and report every problem of a row at once."""

    def __init__(self, problems: list[str], partial: dict[str, Any] | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.partial = partial or {}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_epoch_ms(value: int | float, original: Any) -> datetime:
    # Integer arithmetic, not fromtimestamp(ms / 1000): the float division is off by a
    # millisecond for dates far from 1970, and fromtimestamp fails on platform time_t limits.
    try:
        return _EPOCH + timedelta(milliseconds=value)
    except (OverflowError, ValueError):  # inf, NaN, or past what a datetime can hold
        raise ValueError(f"epoch milliseconds out of range: {original!r}") from None


def parse_timestamp(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError("expected ISO-8601 with offset or epoch milliseconds, got a boolean")
    if isinstance(value, int | float):
        return _from_epoch_ms(value, value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return _from_epoch_ms(int(text), value)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"timestamp {value!r} has no UTC offset (write e.g. +07:00 or Z)")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+07:00 is before year 1 in UTC
            raise ValueError(f"timestamp out of range: {value!r}") from None
    raise ValueError(f"expected ISO-8601 with offset or epoch milliseconds, got {value!r}")


def parse_date(value: Any) -> date:
    """A calendar date from ISO ``YYYY-MM-DD`` (a local date: it has no time zone)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _is_timestamp(t: Any) -> bool:
    return isinstance(t, dict) and t.get("logicalType") == "timestamp-millis"


def _is_date(t: Any) -> bool:
    return isinstance(t, dict) and t.get("logicalType") == "date"


def _convert(name: str, ftype: Any, value: Any) -> Any:
    if isinstance(ftype, list):  # union: null first by convention
        if value is None:
            if "null" in ftype:
                return None
            raise ValueError("must not be null")
        non_null = [t for t in ftype if t != "null"]
        return _convert(name, non_null[0], value) if len(non_null) == 1 else value
    if value is None:
        raise ValueError("must not be null")
    if _is_timestamp(ftype):
        return parse_timestamp(value)
    if _is_date(ftype):
        return parse_date(value)
    if isinstance(ftype, dict) and ftype.get("type") == "enum":
        if value not in ftype["symbols"]:
            raise ValueError(f"{value!r} is not one of {ftype['symbols']}")
        return value
    base = ftype.get("type") if isinstance(ftype, dict) else ftype
    if base == "int" or base == "long":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
            raise ValueError(f"expected an integer, got {value!r}")
        return value
    if base in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except (ValueError, OverflowError):  # OverflowError: an integer beyond a double's range
            raise ValueError(f"expected a number, got {value!r}") from None
    if base == "string":
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value
    if base == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    return value


def json_to_record(schema: TopicSchema, obj: Any) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise ConversionError([f"expected a JSON object, got {type(obj).__name__}"])
    problems: list[str] = []
    record: dict[str, Any] = {}
    known = set()
    for field in schema.raw["fields"]:
        name = field["name"]
        known.add(name)
        if name not in obj:
            if "default" in field:
                record[name] = field["default"]
                continue
            problems.append(f"{name}: required field is missing")
            continue
        try:
            record[name] = _convert(name, field["type"], obj[name])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    unknown = sorted(set(obj) - known)
    if unknown:
        problems.append(f"unknown fields {unknown} (not in {schema.topic})")
    if problems:
        raise ConversionError(problems, record)
    return record


def content_digest(record: Mapping[str, Any], exclude: tuple[str, ...] = ()) -> str:
    """SHA-256 of a record's content (canonical JSON, sorted keys), independent of the wire
    framing; ``exclude`` leaves fields out (e.g. ``event_id`` when deriving one)."""
    body = {k: v for k, v in record.items() if k not in exclude}
    canonical = json.dumps(record_to_json(body), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def record_to_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse for display and files: datetimes as ISO-8601 UTC strings, dates as YYYY-MM-DD."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, datetime):
            out[k] = v.astimezone(UTC).isoformat().replace("+00:00", "Z")
        elif isinstance(v, date):
            out[k] = v.isoformat()
        elif isinstance(v, bytes):
            out[k] = v.hex()
        else:
            out[k] = v
    return out


__all__ = ["Catalogue", "ConversionError", "content_digest", "json_to_record", "parse_date",
           "parse_timestamp", "record_to_json"]
