"""From an HTTP body to Kafka messages: parsing, validation, the agency's ``source``, dedup.

Pure logic (no HTTP, no Kafka) so that every rule is tested directly and fuzzed:

- the body is one JSON object (one event) or a JSON array of objects (a batch); ``NaN`` and
  ``Infinity`` are not JSON and are refused, as are nesting deeper than :data:`MAX_DEPTH`;
- each event is converted (:func:`~ioc.schemas.jsonconv.json_to_record`), checked and
  encoded exactly as every other producer does (:meth:`~ioc.schemas.serde.Serde.encode`);
  a batch is **all or nothing**: one bad event and nothing is sent, and every problem of every
  event is listed (index, field, code, English, Vietnamese);
- ``source`` must be one of the key's allowed sources (an agency cannot send as another); when
  missing it is filled with the agency's code;
- event ids: the same ``event_id`` twice in one batch with the same content is sent once; with
  different content it is an error (``event_id_conflict``), as it is against an id the gateway
  acknowledged recently (:class:`RecentEvents`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ioc.connectors.gateway.keys import AgencyKey
from ioc.connectors.producer import partition_key
from ioc.schemas.errors import FieldError, conversion_errors, field_errors
from ioc.schemas.jsonconv import ConversionError, content_digest, json_to_record
from ioc.schemas.serde import EncodeError, Serde

MAX_DEPTH = 32

Transform = Callable[[dict[str, Any]], dict[str, Any]]


class BodyError(ValueError):
    """The body is not a JSON event or batch (HTTP 400)."""

    def __init__(self, code: str, en: str, vi: str) -> None:
        super().__init__(en)
        self.code, self.en, self.vi = code, en, vi


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(obj: Any) -> int:
    depth, level = 0, [obj]
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return depth
        nxt: list[Any] = []
        for o in level:
            if isinstance(o, dict):
                nxt.extend(o.values())
            elif isinstance(o, list):
                nxt.extend(o)
        level = nxt
    return depth


def parse_events(body: bytes) -> list[Any]:
    """The events of a request body (a single object becomes a batch of one)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError("not_utf8", f"the body is not UTF-8 text (byte {exc.start})",
                        f"nội dung không phải văn bản UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise BodyError("empty_body", "the body is empty: send a JSON object or array",
                        "nội dung rỗng: hãy gửi một đối tượng hoặc mảng JSON")
    try:
        obj = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BodyError("invalid_json", f"invalid JSON: {exc.msg} at line {exc.lineno} "
                                        f"column {exc.colno}",
                        f"JSON không hợp lệ: {exc.msg} tại dòng {exc.lineno} cột "
                        f"{exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        reason = str(exc)[:200]
        raise BodyError("invalid_json", f"invalid JSON: {reason}",
                        f"JSON không hợp lệ: {reason}") from None
    if _depth(obj) > MAX_DEPTH:
        raise BodyError("too_deep", f"JSON nested deeper than {MAX_DEPTH} levels",
                        f"JSON lồng nhau quá {MAX_DEPTH} cấp")
    if isinstance(obj, dict):
        return [obj]
    if isinstance(obj, list):
        if not obj:
            raise BodyError("empty_batch", "the batch is empty", "lô sự kiện rỗng")
        return obj
    raise BodyError("not_an_event", "send one event as a JSON object or a batch as a JSON array",
                    "hãy gửi một sự kiện là đối tượng JSON hoặc một lô là mảng JSON")


@dataclass(frozen=True)
class Prepared:
    index: int
    event_id: str
    key: bytes
    value: bytes
    digest: str


@dataclass(frozen=True)
class ItemError:
    index: int
    event_id: str | None
    error: FieldError

    def as_json(self) -> dict[str, Any]:
        return self.error.as_json(index=self.index, event_id=self.event_id)


def _source_errors(obj: dict[str, Any], key: AgencyKey) -> list[FieldError]:
    allowed = key.allowed_sources
    if "source" not in obj or obj["source"] is None:
        obj["source"] = allowed[0]
        return []
    if obj["source"] not in allowed:
        shown = ", ".join(allowed)
        return [FieldError("source", "source_not_allowed",
                           f"{obj['source']!r} is not your agency's code (allowed: {shown})",
                           f"{obj['source']!r} không phải mã cơ quan của bạn (được phép: "
                           f"{shown})")]
    return []


def prepare(serde: Serde, topic: str, items: list[Any], key: AgencyKey,
            transform: Transform | None = None
            ) -> tuple[list[Prepared], list[ItemError]]:
    """Validate and encode every event; returns the messages (one per distinct event id) and
    every problem found. Sending is allowed only when the problem list is empty."""
    schema = serde.catalogue.get(topic)
    out: list[Prepared] = []
    errors: list[ItemError] = []
    seen: dict[str, str] = {}
    for index, obj in enumerate(items):
        if not isinstance(obj, dict):
            errors.append(ItemError(index, None, field_errors(
                [f"expected a JSON object, got {type(obj).__name__}"])[0]))
            continue
        obj = dict(obj)
        raw_id = obj.get("event_id")
        event_id = raw_id if isinstance(raw_id, str) else None
        problems = _source_errors(obj, key)
        try:
            if transform is not None:
                obj = transform(obj)
            record = json_to_record(schema, obj)
            value = serde.encode(topic, record)
        except ConversionError as exc:
            problems += conversion_errors(topic, exc)
        except EncodeError as exc:
            problems += field_errors(exc.problems)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            problems += field_errors([f"cannot encode: {type(exc).__name__}: {str(exc)[:200]}"])
        if problems:
            errors.extend(ItemError(index, event_id, p) for p in problems)
            continue
        event_id = str(record["event_id"])
        digest = content_digest(record)
        if event_id in seen:
            if seen[event_id] != digest:
                errors.append(ItemError(index, event_id, conflict_error(event_id)))
            continue
        seen[event_id] = digest
        out.append(Prepared(index, event_id, partition_key(topic, record), value, digest))
    return out, errors


def conflict_error(event_id: str) -> FieldError:
    return FieldError("event_id", "event_id_conflict",
                      f"event_id {event_id!r} was already used for an event with different "
                      "content; a new event needs a new id",
                      f"event_id {event_id!r} đã được dùng cho một sự kiện có nội dung khác; "
                      "sự kiện mới cần event_id mới")


class RecentEvents:
    """Event ids the broker acknowledged recently (per topic), with their content digests.

    Not needed for correctness — raw tables keep one row per ``event_id`` and KPI windows count
    an id once — but it answers an agency's retry without sending the event again, and catches
    an id reused for different content while it is remembered (the last ``capacity`` ids).
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[tuple[str, str], str] = OrderedDict()

    def get(self, topic: str, event_id: str) -> str | None:
        return self._ids.get((topic, event_id))

    def add(self, topic: str, event_id: str, digest: str) -> None:
        self._ids[(topic, event_id)] = digest
        self._ids.move_to_end((topic, event_id))
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
