"""Open311 GeoReport v2 for citizens' reports, mapped onto ``ioc.feedback.report.v1``.

Routes (JSON; the ``.json`` suffix of the GeoReport spec is optional, ``.xml`` is refused):

- ``GET /open311/v2/services`` — one service per feedback category: the symbols of the
  schema's ``category`` enum (so a new category appears by itself), named from the reference
  file ``feedback_categories.csv`` when present (``service_name`` Vietnamese, with the usual
  handling time and agency in ``description``).
- ``GET /open311/v2/services/{code}`` — the service definition: one optional attribute,
  ``area_code`` (administrative unit).
- ``POST /open311/v2/requests`` — a new report (form-encoded as the spec says, or JSON).
  ``api_key`` (form) or the usual ``Authorization``/``X-API-Key`` header, whose agency may
  write the feedback topic. Mapping: ``service_code`` → ``category``; ``lat``/``long`` →
  ``lat``/``lon``; ``address_string`` → ``address``; ``description`` → ``description``;
  ``attribute[area_code]`` → ``area_code``, else the administrative unit whose centroid is
  nearest to ``lat``/``long`` (reference ``areas.csv``), else the province; ``status`` =
  ``submitted``, ``channel`` = ``open311``, ``source`` = the key's agency;
  ``service_request_id`` = ``report_id``. An ``Idempotency-Key`` header makes a retried POST
  return the same request id (and the event is stored once).
- ``GET /open311/v2/requests`` and ``GET /open311/v2/requests/{id}`` — current status from
  ClickHouse (the latest lifecycle step of each report): ``open`` until ``resolved`` or
  ``rejected`` (``closed``), ``status_notes`` in Vietnamese and English,
  ``agency_responsible``, ``expected_datetime`` (the due time). A request created moments ago
  and not yet stored is answered from memory as ``open``/submitted.

**Personal data** — ``first_name``, ``last_name``, ``phone`` (and ``email`` when neither name
nor phone is given) are turned into the keyed ``reporter_pseudonym`` by
:func:`ioc.connectors.privacy.protect_report` before validation; ``description`` and
``address`` have phone-number-like digits masked; ``device_id``, ``account_id`` and
``media_url`` are dropped. Nothing of them reaches Kafka in clear. Without the privacy module
the Open311 routes refuse to start.

**Where status is read** — :func:`clickhouse_reports` opens ClickHouse per query with
``connect(settings.clickhouse)``. With the embedded store this works only while no ``ioc run``
holds it (it answers 503 otherwise); the platform's read-only query server (a ClickHouse HTTP
endpoint inside the sink process) is the intended target: point ``Open311.reports`` — one
function ``(sql) -> rows`` — at it.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import math
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from ioc.connectors.gateway.delivery import Outgoing
from ioc.connectors.gateway.ingest import prepare
from ioc.infra.reference import DEFAULT_DIR, Area, load_areas
from ioc.infra.settings import Settings
from ioc.schemas.catalogue import Catalogue

REPORT_TOPIC = "ioc.feedback.report.v1"
RAW_TABLE = "feedback_report"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
_CLOSED = ("resolved", "rejected")
STATUS_NOTES = {
    "submitted": ("Đã tiếp nhận", "Received"),
    "assigned": ("Đã chuyển cơ quan xử lý", "Assigned to an agency"),
    "in_progress": ("Đang xử lý", "In progress"),
    "resolved": ("Đã xử lý xong", "Resolved"),
    "rejected": ("Không tiếp nhận (không đủ điều kiện hoặc trùng lặp)",
                 "Rejected (not admissible or a duplicate)"),
}

Rows = list[dict[str, Any]]
ReportQuery = Callable[[str], Rows]


def clickhouse_reports(settings: Settings) -> ReportQuery:
    """``(sql) -> rows`` against ``settings.clickhouse``, opened and closed per call (so the
    gateway never keeps the embedded store from ``ioc run``). Blocking; serialised."""
    from ioc.connectors.clickhouse import connect

    lock = threading.Lock()

    def query(sql: str) -> Rows:
        with lock:
            client = connect(settings.clickhouse)
            try:
                r = client.query(sql, settings={"readonly": 1})
                return [dict(zip(r.column_names, row, strict=True)) for row in r.result_rows]
            finally:
                client.close()

    return query


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    description: str


def load_services(catalogue: Catalogue, reference_dir: Path | None) -> list[Service]:
    """Services = the schema's categories, named from ``feedback_categories.csv`` if any."""
    fields = {f["name"]: f for f in catalogue.get(REPORT_TOPIC).raw["fields"]}
    symbols = list(fields["category"]["type"]["symbols"])
    names: dict[str, dict[str, str]] = {}
    for directory in (reference_dir, DEFAULT_DIR):
        path = (directory or DEFAULT_DIR) / "feedback_categories.csv"
        if path.exists():
            with path.open(encoding="utf-8", newline="") as fh:
                names = {r["code"]: r for r in csv.DictReader(fh) if r.get("code")}
            break
    out = []
    for code in symbols:
        row = names.get(code, {})
        desc = []
        if row.get("due_days"):
            desc.append(f"Thời hạn xử lý {row['due_days']} ngày")
        if row.get("agency"):
            desc.append(f"cơ quan xử lý: {row['agency']}")
        out.append(Service(code, row.get("name_vi") or code.replace("_", " "),
                           "; ".join(desc)))
    return out


def nearest_area(areas: dict[str, Area], lat: float | None, lon: float | None) -> str:
    """The unit whose centroid is nearest (equirectangular distance; units are small), else
    the top-level unit (the province)."""
    top = next((a.code for a in areas.values() if not a.parent_code), "")
    if lat is None or lon is None:
        return top
    best, best_d = top, math.inf
    for a in areas.values():
        if a.lat is None or a.lon is None or not a.parent_code:
            continue
        dx = (a.lon - lon) * math.cos(math.radians(lat))
        d = dx * dx + (a.lat - lat) ** 2
        if d < best_d:
            best, best_d = a.code, d
    return best


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))


def open311_error(status: int, description: str) -> web.Response:
    return _json([{"code": status, "description": description}], status=status)


@dataclass
class Open311:
    services: list[Service]
    areas: dict[str, Area]
    reports: ReportQuery
    database: str
    recent: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)

    def remember(self, report: dict[str, Any]) -> None:
        self.recent[report["service_request_id"]] = report
        while len(self.recent) > 10_000:
            self.recent.popitem(last=False)


OPEN311: web.AppKey[Open311] = web.AppKey("open311", Open311)


def _ext_ok(request: web.Request) -> web.Response | None:
    ext = request.match_info.get("ext", "")
    if ext not in ("", ".json"):
        return open311_error(400, "only JSON is served (use .json) / chỉ hỗ trợ JSON")
    return None


async def get_services(request: web.Request) -> web.Response:
    bad = _ext_ok(request)
    if bad:
        return bad
    o = request.app[OPEN311]
    return _json([{"service_code": s.code, "service_name": s.name,
                               "description": s.description, "metadata": True,
                               "type": "realtime", "keywords": s.code.replace("_", ","),
                               "group": "phan_anh_kien_nghi"} for s in o.services])


async def get_service(request: web.Request) -> web.Response:
    bad = _ext_ok(request)
    if bad:
        return bad
    o = request.app[OPEN311]
    code = request.match_info["code"]
    if code not in {s.code for s in o.services}:
        return open311_error(404, f"unknown service_code {code!r} / không có dịch vụ này")
    return _json({"service_code": code, "attributes": [{
        "variable": True, "code": "area_code", "datatype": "string", "required": False,
        "datatype_description": "Mã đơn vị hành chính (administrative unit code); if "
                                "omitted, the unit nearest to lat/long", "order": 1,
        "description": "Đơn vị hành chính / Administrative unit", "values": [
            {"key": a.code, "name": a.name_vi} for a in o.areas.values()]}]})


def _float(value: Any, name: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number / {name} phải là số") from None
    if not math.isfinite(f):
        raise ValueError(f"{name} must be a number / {name} phải là số")
    return f


async def post_request(request: web.Request) -> web.Response:
    from ioc.connectors.gateway.app import GATEWAY, presented_key

    bad = _ext_ok(request)
    if bad:
        return bad
    gw = request.app[GATEWAY]
    o = request.app[OPEN311]
    if request.content_type == "application/json":
        try:
            raw = await request.json()
        except ValueError:
            return open311_error(400, "invalid JSON / JSON không hợp lệ")
        if not isinstance(raw, dict):
            return open311_error(400, "send a JSON object / hãy gửi một đối tượng JSON")
        form = {str(k): v for k, v in raw.items()}
    else:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    token = str(form.get("api_key") or presented_key(request) or "")
    key = gw.keys.authenticate(token) if token else None
    if key is None:
        return open311_error(403, "a valid api_key is required / cần api_key hợp lệ")
    if not key.may_write(REPORT_TOPIC):
        return open311_error(403, f"agency {key.agency} may not submit reports / cơ quan "
                                  f"{key.agency} không có quyền gửi phản ánh")
    code = str(form.get("service_code") or "")
    if code not in {s.code for s in o.services}:
        return open311_error(400, f"service_code {code!r} is not a service; see services.json"
                                  f" / service_code không hợp lệ")
    try:
        lat = _float(form.get("lat"), "lat")
        lon = _float(form.get("long"), "long")
    except ValueError as exc:
        return open311_error(400, str(exc))
    address = str(form.get("address_string") or "")
    if (lat is None or lon is None) and not address:
        return open311_error(400, "a location is required: lat and long, or address_string / "
                                  "cần vị trí: lat và long, hoặc address_string")
    area = str(form.get("attribute[area_code]") or "") or nearest_area(o.areas, lat, lon)
    if gw.limiter.take(key.agency, 1, key.rate_per_s, key.burst):
        return open311_error(429, "too many requests, retry later / quá nhiều yêu cầu")
    idem = request.headers.get("Idempotency-Key")
    if idem:
        digest = hashlib.sha256(f"{key.agency}\0{idem}".encode()).hexdigest()
        report_id = f"311-{digest[:16]}"
    else:
        report_id = f"311-{uuid.uuid4().hex[:16]}"
    name = " ".join(str(form.get(k) or "").strip() for k in ("first_name", "last_name"))
    name = name.strip() or ("" if form.get("phone") else str(form.get("email") or ""))
    now = datetime.now(UTC)
    if idem and report_id in o.recent:
        first = o.recent[report_id]
        return _json([{"service_request_id": report_id,
                                   "service_notice": first["service_notice"],
                                   "account_id": None}])
    event = {"event_id": f"{report_id}:submitted", "occurred_at": now.isoformat(),
             "area_code": area, "report_id": report_id, "status": "submitted",
             "channel": "open311", "category": code,
             "description": str(form.get("description") or ""), "address": address,
             "lat": lat, "lon": lon, "reporter_name": name,
             "reporter_phone": str(form.get("phone") or "")}
    prepared, problems = prepare(gw.serde, REPORT_TOPIC, [event], key,
                                 gw.transforms[REPORT_TOPIC])
    if problems:
        text = "; ".join(f"{p.error.field}: {p.error.en} / {p.error.vi}" for p in problems)
        return open311_error(400, text)
    outcome = await gw.sender.send_all([Outgoing(REPORT_TOPIC, p.key, p.value)
                                        for p in prepared])
    if any(outcome):
        return open311_error(503, "not stored, retry later / chưa lưu được, hãy thử lại")
    gw.metrics.events.labels(REPORT_TOPIC, key.agency, "accepted").inc()
    notice = "Đã tiếp nhận phản ánh; theo dõi bằng mã " + report_id
    protected = gw.transforms[REPORT_TOPIC](dict(event))  # what was sent, nothing more
    o.remember({"service_request_id": report_id, "status": "open",
                "status_notes": _notes("submitted"), "service_code": code,
                "service_name": _service_name(o, code),
                "description": protected.get("description", ""),
                "agency_responsible": "", "service_notice": notice,
                "requested_datetime": _iso(now), "updated_datetime": _iso(now),
                "expected_datetime": None, "address": protected.get("address", ""),
                "lat": lat, "long": lon, "media_url": ""})
    return _json([{"service_request_id": report_id, "service_notice": notice,
                               "account_id": None}])


def _notes(status: str) -> str:
    vi, en = STATUS_NOTES.get(status, (status, status))
    return f"{vi} / {en}"


def _service_name(o: Open311, code: str) -> str:
    return next((s.name for s in o.services if s.code == code), code)


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ch_time(t: datetime) -> str:
    return f"toDateTime64('{t.astimezone(UTC):%Y-%m-%d %H:%M:%S}', 3, 'UTC')"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def status_sql(database: str, where: str, having: str = "", limit: int = 1000) -> str:
    return f"""
SELECT report_id,
       argMax(status, occurred_at) AS status,
       argMax(category, occurred_at) AS category,
       min(occurred_at) AS requested,
       max(occurred_at) AS updated,
       argMaxIf(assigned_agency, occurred_at, assigned_agency != '') AS agency,
       argMaxIf(due_at, occurred_at, due_at IS NOT NULL) AS due,
       argMinIf(description, occurred_at, description != '') AS description,
       argMaxIf(address, occurred_at, address != '') AS address,
       argMaxIf(lat, occurred_at, lat IS NOT NULL) AS lat,
       argMaxIf(lon, occurred_at, lon IS NOT NULL) AS lon
FROM {database}.{RAW_TABLE} FINAL
WHERE {where}
GROUP BY report_id
{('HAVING ' + having) if having else ''}
ORDER BY requested DESC
LIMIT {int(limit)}"""


def _as_request(o: Open311, row: dict[str, Any]) -> dict[str, Any]:
    status = str(row["status"])
    return {"service_request_id": row["report_id"],
            "status": "closed" if status in _CLOSED else "open",
            "status_notes": _notes(status), "service_name": _service_name(o, row["category"]),
            "service_code": row["category"], "description": row["description"],
            "agency_responsible": row["agency"], "service_notice": "",
            "requested_datetime": _iso(row["requested"]),
            "updated_datetime": _iso(row["updated"]),
            "expected_datetime": _iso(row["due"]), "address": row["address"],
            "address_id": "", "zipcode": "", "lat": row["lat"], "long": row["lon"],
            "media_url": ""}


async def _query(o: Open311, sql: str) -> Rows | web.Response:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, o.reports, sql)
    except Exception as exc:  # store unreachable, table missing, embedded store busy
        import logging

        logging.getLogger(__name__).warning("open311: status query failed: %s", exc)
        return open311_error(503, "report status is unavailable right now, retry later / "
                                  "chưa tra cứu được trạng thái, hãy thử lại sau")


async def get_request(request: web.Request) -> web.Response:
    bad = _ext_ok(request)
    if bad:
        return bad
    o = request.app[OPEN311]
    rid = request.match_info["id"]
    if not _ID.match(rid):
        return open311_error(404, "no such request / không có phản ánh này")
    rows = await _query(o, status_sql(o.database, f"report_id = {_quote(rid)}"))
    if isinstance(rows, web.Response):
        if rid in o.recent:
            return _json([o.recent[rid]])
        return rows
    if rows:
        return _json([_as_request(o, rows[0])])
    if rid in o.recent:
        return _json([o.recent[rid]])
    return open311_error(404, "no such request / không có phản ánh này")


def _date(value: str, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} must be a W3C date-time / {name} phải là thời điểm ISO-8601"
                         ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


async def get_requests(request: web.Request) -> web.Response:
    bad = _ext_ok(request)
    if bad:
        return bad
    o = request.app[OPEN311]
    q = request.query
    where = ["1"]
    ids = [i for i in q.get("service_request_id", "").split(",") if i]
    if ids:
        if not all(_ID.match(i) for i in ids):
            return open311_error(400, "bad service_request_id / mã không hợp lệ")
        where.append(f"report_id IN ({', '.join(map(_quote, ids))})")
    having = []
    try:
        end = _date(q["end_date"], "end_date") if q.get("end_date") else None
        start = _date(q["start_date"], "start_date") if q.get("start_date") else None
    except ValueError as exc:
        return open311_error(400, str(exc))
    if not ids:
        start = start or (end or datetime.now(UTC)) - timedelta(days=90)
    if start:
        having.append(f"requested >= {_ch_time(start)}")
    if end:
        having.append(f"requested <= {_ch_time(end)}")
    codes = [c for c in q.get("service_code", "").split(",") if c]
    known = {s.code for s in o.services}
    if any(c not in known for c in codes):
        return open311_error(400, "unknown service_code / service_code không hợp lệ")
    if codes:
        having.append(f"category IN ({', '.join(map(_quote, codes))})")
    status = q.get("status", "")
    if status == "open":
        having.append("status NOT IN ('resolved', 'rejected')")
    elif status == "closed":
        having.append("status IN ('resolved', 'rejected')")
    elif status:
        return open311_error(400, "status must be open or closed / status phải là open hoặc "
                                  "closed")
    rows = await _query(o, status_sql(o.database, " AND ".join(where), " AND ".join(having)))
    if isinstance(rows, web.Response):
        return rows
    return _json([_as_request(o, r) for r in rows])


def add_routes(app: web.Application, reports: ReportQuery | None = None) -> None:
    """Add the Open311 routes to the gateway's application."""
    from ioc.connectors.gateway.app import GATEWAY

    gw = app[GATEWAY]
    if REPORT_TOPIC not in gw.transforms:
        raise RuntimeError("Open311 needs the personal-data protection of citizen reports "
                           "(ioc.connectors.privacy); refusing to start without it")
    platform = gw.settings.platform
    app[OPEN311] = Open311(load_services(gw.serde.catalogue, platform.reference_dir),
                           load_areas(platform.reference_dir),
                           reports or clickhouse_reports(platform), platform.database)
    ext = r"{ext:(\.json|\.xml)?}"
    app.router.add_get("/open311/v2/services" + ext, get_services)
    app.router.add_get(r"/open311/v2/services/{code:[^/.]+}" + ext, get_service)
    app.router.add_post("/open311/v2/requests" + ext, post_request)
    app.router.add_get("/open311/v2/requests" + ext, get_requests)
    app.router.add_get(r"/open311/v2/requests/{id:[^/]+?}" + ext, get_request)
