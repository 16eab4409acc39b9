"""The JSON form of each topic's Avro schema, as JSON Schema (for OpenAPI and the docs).

This is the JSON that :func:`ioc.schemas.jsonconv.json_to_record` accepts: timestamps as
ISO-8601 with an offset or epoch milliseconds, enums as their symbols, nullable unions as the
value or ``null``, fields with a default optional, unknown fields refused.
"""

from __future__ import annotations

from typing import Any

from ioc.schemas.catalogue import TopicSchema

_PRIMITIVES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "int": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "float"},
    "double": {"type": "number", "format": "double"},
    "boolean": {"type": "boolean"},
    "bytes": {"type": "string", "description": "bytes"},
    "null": {"type": "null"},
}

TIMESTAMP = {"oneOf": [{"type": "string", "format": "date-time",
                        "description": "ISO-8601 with an offset, e.g. 2026-11-30T07:30:00+07:00"},
                       {"type": "integer", "description": "epoch milliseconds (UTC)"}]}


def type_schema(avro_type: Any) -> dict[str, Any]:
    if isinstance(avro_type, list):
        branches = [type_schema(t) for t in avro_type]
        return branches[0] if len(branches) == 1 else {"anyOf": branches}
    if isinstance(avro_type, str):
        return dict(_PRIMITIVES.get(avro_type, {"description": avro_type}))
    if avro_type.get("logicalType") == "timestamp-millis":
        return dict(TIMESTAMP)
    kind = avro_type.get("type")
    if kind == "enum":
        return {"type": "string", "enum": list(avro_type["symbols"])}
    if kind == "array":
        return {"type": "array", "items": type_schema(avro_type["items"])}
    if kind == "map":
        return {"type": "object", "additionalProperties": type_schema(avro_type["values"])}
    if kind == "record":
        return record_schema(avro_type)
    return type_schema(kind)


def record_schema(raw: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    required = []
    for f in raw["fields"]:
        s = type_schema(f["type"])
        if f.get("doc"):
            s = {**s, "description": f["doc"]}
        if "default" in f:
            s = {**s, "default": f["default"]}
        else:
            required.append(f["name"])
        props[f["name"]] = s
    out: dict[str, Any] = {"type": "object", "properties": props, "required": required,
                           "additionalProperties": False}
    if raw.get("doc"):
        out["description"] = raw["doc"]
    return out


def topic_json_schema(ts: TopicSchema) -> dict[str, Any]:
    return {"title": ts.full_name, **record_schema(ts.raw)}
