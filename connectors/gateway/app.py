"""The gateway's HTTP application (aiohttp): routes, answers, metrics.

Routes (all answers JSON; errors carry English and Vietnamese texts):

==========================================  ====================================================
``POST /v1/events/{topic}``                 one event (object) or a batch (array); 200 after
                                            the broker acknowledged every event
``GET /v1/topics``                          the topics this key may write, with their docs
``GET /v1/dead-letters/{topic}``            rejected records of a topic this key may write
``GET /openapi.json``                       the OpenAPI 3.1 description (from the catalogue)
``GET /health``                             200 when Kafka answers, else 503
``GET /metrics``                            Prometheus metrics (the gateway's own registry)
``/open311/v2/...``                         Open311 GeoReport v2 (:mod:`.open311`), when the
                                            citizen-feedback topic is in the catalogue
==========================================  ====================================================

Status codes of ``POST /v1/events/{topic}``: 200 stored (``results`` per event:
``accepted`` or ``duplicate``); 400 not JSON; 401 no or unknown key (``Authorization: Bearer
<key>`` or ``X-API-Key``); 403 topic not in the key's permission list; 404 unknown topic; 413
body larger than ``IOC_GATEWAY_MAX_BODY_BYTES`` or more than ``IOC_GATEWAY_MAX_EVENTS`` events;
415 not ``application/json``; 422 an event is invalid — nothing of the batch was sent, every
problem is listed with ``index``, ``event_id``, ``field``, ``code``, ``en``, ``vi``; 429 the
agency's rate limit (``Retry-After`` seconds); 503 Kafka did not acknowledge in time or the
schema registry is unreachable (``Retry-After``; retrying is safe: event ids make it idempotent).

"Stored once": the gateway sends an event only after validating it, and answers 200 only when
the broker acknowledged it (``acks=all``, idempotent producer). A client that retries after a
timeout may send an event twice; the raw tables are ``ReplacingMergeTree`` ordered by
``event_id`` (one row per id with ``FINAL``) and the stream processor counts an id once per
window, so a duplicate never shows. :class:`~.ingest.RecentEvents` additionally answers a retry
of an id acknowledged recently with ``duplicate`` without sending it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from ioc.connectors.deadletters import read_dead_letters
from ioc.connectors.gateway.delivery import KafkaSender, Outgoing
from ioc.connectors.gateway.ingest import (
    BodyError,
    RecentEvents,
    Transform,
    conflict_error,
    parse_events,
    prepare,
)
from ioc.connectors.gateway.keys import AgencyKey, KeyStore, KeyStoreError
from ioc.connectors.gateway.openapi import openapi_spec
from ioc.connectors.gateway.ratelimit import RateLimiter
from ioc.connectors.gateway.settings import GatewaySettings
from ioc.connectors.schema_registry import RegistryError
from ioc.schemas.serde import Serde

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter("ioc_gateway_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=registry)
        self.events = Counter("ioc_gateway_events",
                              "Events by topic, agency and outcome (accepted, duplicate, "
                              "rejected, failed)", ["topic", "agency", "outcome"],
                              registry=registry)
        self.rate_limited = Counter("ioc_gateway_rate_limited",
                                    "Requests refused by an agency's rate limit", ["agency"],
                                    registry=registry)
        self.seconds = Histogram("ioc_gateway_request_seconds",
                                 "Request handling time, including the broker's ack",
                                 ["route"], registry=registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                          10, 30))


@dataclass
class Gateway:
    """Everything the handlers share (one per application)."""

    settings: GatewaySettings
    serde: Serde
    keys: KeyStore
    sender: KafkaSender
    metrics: GatewayMetrics
    limiter: RateLimiter = field(default_factory=RateLimiter)
    transforms: Mapping[str, Transform] = field(default_factory=dict)
    recent: RecentEvents = field(default_factory=RecentEvents)
    spec: dict[str, Any] = field(default_factory=dict)


GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)


def error_response(status: int, code: str, en: str, vi: str,
                   errors: list[dict[str, Any]] | None = None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "en": en, "vi": vi}}
    if errors is not None:
        body["errors"] = errors
    return web.json_response(body, status=status, headers=headers,
                             dumps=_dumps)


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False, default=str)


_HTTP_ERRORS = {
    404: ("not_found", "no such route", "không có đường dẫn này"),
    405: ("method_not_allowed", "method not allowed on this route",
          "phương thức không được hỗ trợ ở đường dẫn này"),
    413: ("too_large", "request body too large", "nội dung yêu cầu quá lớn"),
}


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer is JSON with both languages — also aiohttp's own 404/405/413 — and an
    unexpected exception is logged and answered 500 without details."""
    gw = request.app[GATEWAY]
    route = request.match_info.route.resource.canonical if request.match_info.route.resource \
        else "unmatched"
    start = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except web.HTTPException as exc:
        status = exc.status
        code, en, vi = _HTTP_ERRORS.get(exc.status, ("http_error", exc.reason, exc.reason))
        return error_response(exc.status, code, en, vi, headers={
            k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    except Exception:
        log.exception("gateway: unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; the request was not processed",
                              "lỗi nội bộ; yêu cầu chưa được xử lý")
    finally:
        gw.metrics.requests.labels(route, str(status)).inc()
        gw.metrics.seconds.labels(route).observe(time.perf_counter() - start)


def presented_key(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("X-API-Key") or None


def authenticate(request: web.Request) -> AgencyKey | web.Response:
    gw = request.app[GATEWAY]
    token = presented_key(request)
    if not token:
        return error_response(401, "no_key", "an API key is required (Authorization: Bearer "
                              "<key>)", "cần khóa API (Authorization: Bearer <khóa>)",
                              headers={"WWW-Authenticate": "Bearer"})
    try:
        key = gw.keys.authenticate(token)
    except KeyStoreError:
        log.exception("gateway: keys file unreadable")
        return error_response(503, "keys_unavailable", "the gateway cannot read its keys",
                              "cổng tiếp nhận không đọc được danh sách khóa",
                              headers={"Retry-After": "30"})
    if key is None:
        return error_response(401, "bad_key", "unknown or revoked API key",
                              "khóa API không tồn tại hoặc đã bị thu hồi",
                              headers={"WWW-Authenticate": "Bearer"})
    return key


def topic_checks(request: web.Request, key: AgencyKey, topic: str) -> web.Response | None:
    gw = request.app[GATEWAY]
    if topic not in gw.serde.catalogue.event_topics:
        return error_response(404, "unknown_topic", f"unknown topic {topic!r}",
                              f"không có chủ đề (topic) {topic!r}")
    if not key.may_write(topic):
        return error_response(403, "topic_forbidden",
                              f"agency {key.agency} may not write {topic}",
                              f"cơ quan {key.agency} không có quyền gửi dữ liệu vào {topic}")
    return None


async def read_body(request: web.Request, limit: int) -> bytes | web.Response:
    too_large = error_response(413, "too_large", f"request body larger than {limit} bytes",
                               f"nội dung yêu cầu lớn hơn {limit} byte")
    if request.content_length is not None and request.content_length > limit:
        return too_large
    body = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        body += chunk
        if len(body) > limit:
            return too_large
    return bytes(body)


async def post_events(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    topic = request.match_info["topic"]
    key = authenticate(request)
    if isinstance(key, web.Response):
        return key
    refused = topic_checks(request, key, topic)
    if refused is not None:
        return refused
    ctype = request.content_type
    if ctype not in ("application/json", "application/octet-stream", "text/plain") \
            and not ctype.endswith("+json"):
        return error_response(415, "content_type", "send JSON (Content-Type: application/json)",
                              "hãy gửi JSON (Content-Type: application/json)")
    body = await read_body(request, gw.settings.max_body_bytes)
    if isinstance(body, web.Response):
        return body
    try:
        items = parse_events(body)
    except BodyError as exc:
        return error_response(400, exc.code, exc.en, exc.vi)
    events_counter = gw.metrics.events
    if len(items) > gw.settings.max_events or len(items) > key.burst:
        limit = min(gw.settings.max_events, key.burst)
        return error_response(413, "too_many_events",
                              f"{len(items)} events in one request; at most {limit}",
                              f"{len(items)} sự kiện trong một yêu cầu; tối đa {limit}")
    wait = gw.limiter.take(key.agency, len(items), key.rate_per_s, key.burst)
    if wait:
        gw.metrics.rate_limited.labels(key.agency).inc()
        return error_response(429, "rate_limited",
                              f"rate limit of agency {key.agency} ({key.rate_per_s:g} events/s)"
                              f"; retry after {wait} s",
                              f"vượt giới hạn tần suất của cơ quan {key.agency} "
                              f"({key.rate_per_s:g} sự kiện/giây); thử lại sau {wait} giây",
                              headers={"Retry-After": str(wait)})
    try:
        prepared, problems = prepare(gw.serde, topic, items, key, gw.transforms.get(topic))
    except RegistryError as exc:
        log.warning("gateway: schema registry: %s", exc)
        return error_response(503, "registry_unavailable", "the schema registry is unreachable",
                              "không kết nối được kho lược đồ (schema registry)",
                              headers={"Retry-After": "10"})
    results: dict[int, dict[str, Any]] = {}
    to_send = []
    for p in prepared:
        known = gw.recent.get(topic, p.event_id)
        if known is None:
            to_send.append(p)
        elif known == p.digest:
            results[p.index] = {"index": p.index, "event_id": p.event_id, "status": "duplicate"}
        else:
            problems.append(_conflict(p.index, p.event_id))
    if problems:
        events_counter.labels(topic, key.agency, "rejected").inc(len(items))
        return error_response(
            422, "invalid_events",
            f"{len({e.index for e in problems})} of {len(items)} events are invalid; nothing "
            "was sent", f"{len({e.index for e in problems})}/{len(items)} sự kiện không hợp "
            "lệ; chưa gửi sự kiện nào", errors=[e.as_json() for e in problems])
    try:
        outcomes = await asyncio.wait_for(
            gw.sender.send_all([Outgoing(topic, p.key, p.value) for p in to_send]),
            timeout=gw.settings.send_timeout_s + 5)
    except TimeoutError:
        outcomes = ["no acknowledgement from Kafka in time"] * len(to_send)
    failed = []
    for p, reason in zip(to_send, outcomes, strict=True):
        if reason is None:
            gw.recent.add(topic, p.event_id, p.digest)
            results[p.index] = {"index": p.index, "event_id": p.event_id, "status": "accepted"}
        else:
            failed.append({"index": p.index, "event_id": p.event_id, "reason": reason})
    accepted = sum(1 for r in results.values() if r["status"] == "accepted")
    duplicates = len(items) - accepted - len(failed)
    events_counter.labels(topic, key.agency, "accepted").inc(accepted)
    events_counter.labels(topic, key.agency, "duplicate").inc(duplicates)
    if failed:
        events_counter.labels(topic, key.agency, "failed").inc(len(failed))
        log.warning("gateway: %d events to %s not acknowledged: %s", len(failed), topic,
                    failed[0]["reason"])
        return error_response(503, "not_acknowledged",
                              f"{len(failed)} events were not acknowledged by Kafka; send the "
                              "batch again (event ids make it safe)",
                              f"{len(failed)} sự kiện chưa được Kafka xác nhận; hãy gửi lại cả "
                              "lô (event_id bảo đảm không bị trùng)",
                              errors=failed, headers={"Retry-After": "5"})
    return web.json_response({"topic": topic, "accepted": accepted, "duplicates": duplicates,
                              "results": [results[i] for i in sorted(results)]}, dumps=_dumps)


def _conflict(index: int, event_id: str) -> Any:
    from ioc.connectors.gateway.ingest import ItemError

    return ItemError(index, event_id, conflict_error(event_id))


async def get_topics(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    key = authenticate(request)
    if isinstance(key, web.Response):
        return key
    topics = [t for t in gw.serde.catalogue.event_topics if key.may_write(t)]
    return web.json_response({"agency": key.agency, "sources": list(key.allowed_sources),
                              "rate_per_s": key.rate_per_s, "burst": key.burst,
                              "topics": [{"topic": t, "doc": f"/docs/contracts/{t}.md"}
                                         for t in topics]}, dumps=_dumps)


async def get_dead_letters(request: web.Request) -> web.Response:
    """Dead letters follow their source topic's rules: a key reads those of the topics it may
    write, and nothing else."""
    gw = request.app[GATEWAY]
    topic = request.match_info["topic"]
    key = authenticate(request)
    if isinstance(key, web.Response):
        return key
    refused = topic_checks(request, key, topic)
    if refused is not None:
        return refused
    try:
        limit = max(1, min(int(request.query.get("limit", "100")), 1000))
    except ValueError:
        return error_response(400, "bad_limit", "limit must be an integer",
                              "limit phải là số nguyên")
    platform = gw.settings.platform
    loop = asyncio.get_running_loop()
    entries = await loop.run_in_executor(
        None, lambda: read_dead_letters(platform, gw.serde,
                                        topic=topic))
    return web.json_response({"topic": topic, "dead_letters": [
        e.summary() for e in entries[-limit:]]}, dumps=_dumps)


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[GATEWAY].spec, dumps=_dumps)


async def get_health(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    loop = asyncio.get_running_loop()
    kafka = await loop.run_in_executor(None, gw.sender.reachable)
    body = {"status": "ok" if kafka else "degraded", "kafka": "ok" if kafka else "unreachable"}
    return web.json_response(body, status=200 if kafka else 503)


async def get_metrics(request: web.Request) -> web.Response:
    data = generate_latest(request.app[GATEWAY].metrics.registry)
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(gw: Gateway) -> web.Application:
    """The aiohttp application around ``gw`` (tests build their own ``Gateway``)."""
    app = web.Application(middlewares=[errors_middleware],
                          client_max_size=gw.settings.max_body_bytes)
    app[GATEWAY] = gw
    if not gw.spec:
        gw.spec = openapi_spec(gw.serde.catalogue)
    app.router.add_post("/v1/events/{topic}", post_events)
    app.router.add_get("/v1/topics", get_topics)
    app.router.add_get("/v1/dead-letters/{topic}", get_dead_letters)
    app.router.add_get("/openapi.json", get_openapi)
    app.router.add_get("/health", get_health)
    app.router.add_get("/metrics", get_metrics)
    from ioc.connectors.gateway import open311

    if open311.REPORT_TOPIC in gw.serde.catalogue.by_topic:
        open311.add_routes(app)
    return app
