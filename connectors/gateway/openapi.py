"""The gateway's OpenAPI 3.1 description, generated from the catalogue.

One path per event topic (``/v1/events/<topic>``) with that topic's JSON Schema as the request
body, so a client generator or a tester sees every field; the Open311 paths when the
citizen-feedback topic exists. Served at ``/openapi.json`` and written to
``docs/contracts/openapi.json`` by ``ioc schemas docs``.
"""

from __future__ import annotations

from typing import Any

from ioc.schemas.catalogue import Catalogue
from ioc.schemas.jsonschema import topic_json_schema

OPEN311_TOPIC = "ioc.feedback.report.v1"

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error_schema() -> dict[str, Any]:
    text = {"type": "object", "properties": {"code": {"type": "string"},
                                             "en": {"type": "string"},
                                             "vi": {"type": "string"}}}
    item = {"type": "object", "properties": {
        "index": {"type": "integer"}, "event_id": {"type": ["string", "null"]},
        "field": {"type": ["string", "null"]}, "code": {"type": "string"},
        "en": {"type": "string"}, "vi": {"type": "string"}}}
    return {"type": "object", "properties": {"error": text,
                                             "errors": {"type": "array", "items": item}},
            "required": ["error"]}


def _responses() -> dict[str, Any]:
    def err(desc: str) -> dict[str, Any]:
        return {"description": desc, "content": {"application/json": {"schema": _ERROR}}}

    retry = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    return {
        "200": {"description": "every event acknowledged by Kafka (or a known duplicate)",
                "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Accepted"}}}},
        "400": err("the body is not a JSON event or batch"),
        "401": err("missing, unknown or revoked API key"),
        "403": err("the key may not write this topic"),
        "404": err("unknown topic"),
        "413": err("body or batch too large"),
        "415": err("not JSON"),
        "422": err("invalid events; nothing sent; every problem listed"),
        "429": {**err("the agency's rate limit; retry after Retry-After seconds"),
                "headers": retry},
        "503": {**err("Kafka did not acknowledge in time; retry (idempotent)"),
                "headers": retry},
    }


def _open311_paths() -> dict[str, Any]:
    ok = {"description": "OK (JSON; Open311 GeoReport v2)"}
    fmt = {"name": "format", "in": "path", "required": True,
           "schema": {"type": "string", "enum": ["json"]}}
    return {
        "/open311/v2/services.{format}": {"get": {
            "summary": "Service list (the feedback categories)", "tags": ["open311"],
            "parameters": [fmt], "security": [], "responses": {"200": ok}}},
        "/open311/v2/services/{service_code}.{format}": {"get": {
            "summary": "Service definition", "tags": ["open311"], "security": [],
            "parameters": [fmt, {"name": "service_code", "in": "path", "required": True,
                                 "schema": {"type": "string"}}], "responses": {"200": ok}}},
        "/open311/v2/requests.{format}": {
            "post": {"summary": "Create a service request (a citizen's report); name and "
                                "phone are pseudonymised before anything is sent",
                     "tags": ["open311"], "parameters": [fmt],
                     "requestBody": {"content": {
                         "application/x-www-form-urlencoded": {"schema": {
                             "$ref": "#/components/schemas/Open311Request"}},
                         "application/json": {"schema": {
                             "$ref": "#/components/schemas/Open311Request"}}}},
                     "responses": {"200": ok, "400": ok, "403": ok}},
            "get": {"summary": "Service requests with their current status (from ClickHouse)",
                    "tags": ["open311"], "security": [],
                    "parameters": [fmt] + [{"name": n, "in": "query",
                                            "schema": {"type": "string"}}
                                           for n in ("service_request_id", "service_code",
                                                     "start_date", "end_date", "status")],
                    "responses": {"200": ok}}},
        "/open311/v2/requests/{service_request_id}.{format}": {"get": {
            "summary": "One service request", "tags": ["open311"], "security": [],
            "parameters": [fmt, {"name": "service_request_id", "in": "path",
                                 "required": True, "schema": {"type": "string"}}],
            "responses": {"200": ok, "404": ok}}},
    }


def _open311_request_schema() -> dict[str, Any]:
    s = {"type": "string"}
    n = {"type": "number"}
    return {"type": "object", "required": ["service_code"], "properties": {
        "api_key": s, "service_code": s, "lat": n, "long": n, "address_string": s,
        "description": s, "first_name": s, "last_name": s, "phone": s, "email": s,
        "device_id": s, "account_id": s, "media_url": s,
        "attribute[area_code]": {**s, "description": "administrative unit code; else the "
                                                     "nearest unit to lat/long"}}}


def openapi_spec(catalogue: Catalogue) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": _error_schema(), "Accepted": {
        "type": "object", "properties": {
            "topic": {"type": "string"}, "accepted": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "results": {"type": "array", "items": {"type": "object", "properties": {
                "index": {"type": "integer"}, "event_id": {"type": "string"},
                "status": {"type": "string", "enum": ["accepted", "duplicate"]}}}}}}}
    for topic in catalogue.event_topics:
        ts = catalogue.get(topic)
        name = ts.raw["name"]
        schemas[name] = topic_json_schema(ts)
        ref = {"$ref": f"#/components/schemas/{name}"}
        paths[f"/v1/events/{topic}"] = {"post": {
            "summary": f"Send {topic} events",
            "description": (ts.raw.get("doc") or "") + f"\n\nContract: docs/contracts/{topic}.md",
            "operationId": "send_" + topic.replace(".", "_"),
            "tags": [topic.split(".")[1]],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "oneOf": [ref, {"type": "array", "items": ref, "minItems": 1}]}}}},
            "responses": _responses()}}
    paths["/v1/topics"] = {"get": {"summary": "Topics this key may write", "tags": ["gateway"],
                                   "responses": {"200": {"description": "OK"}}}}
    paths["/v1/dead-letters/{topic}"] = {"get": {
        "summary": "Rejected records of a topic this key may write", "tags": ["gateway"],
        "parameters": [{"name": "topic", "in": "path", "required": True,
                        "schema": {"type": "string"}},
                       {"name": "limit", "in": "query", "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "OK"}}}}
    paths["/health"] = {"get": {"summary": "Kafka reachable", "security": [],
                                "tags": ["gateway"],
                                "responses": {"200": {"description": "OK"},
                                              "503": {"description": "Kafka unreachable"}}}}
    paths["/metrics"] = {"get": {"summary": "Prometheus metrics", "security": [],
                                 "tags": ["gateway"],
                                 "responses": {"200": {"description": "OK"}}}}
    if OPEN311_TOPIC in catalogue.by_topic:
        paths.update(_open311_paths())
        schemas["Open311Request"] = _open311_request_schema()
    return {
        "openapi": "3.1.0",
        "info": {"title": "IOC ingestion gateway", "version": "1",
                 "description": "Send events to the province IOC platform. Errors come in "
                                "English (en) and Vietnamese (vi). Guide: docs/onboarding.md"},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
    }
