"""An Open311 GeoReport v2 client against `ioc gateway`, through the real broker and pipeline:
list services, post a request, read its status back after the pipeline processed it; the
reporter's name, phone and e-mail appear nowhere in clear — not in Kafka, not in any column of
any ClickHouse table.

Needs the citizen-feedback subsystem (topic ``ioc.feedback.report.v1``, the privacy module,
the raw table); skipped where it is not installed."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
from gateway_harness import call, read_all
from pipeline import Pipeline
from test_agency_routes_e2e import GatewayProcess, add_key

from ioc.schemas.catalogue import Catalogue

REPORT = "ioc.feedback.report.v1"
pytestmark = pytest.mark.skipif(REPORT not in Catalogue().by_topic,
                                reason="the citizen-feedback subsystem is not installed")

PHONE = "0905 123 456"
NAME = ("Nguyễn", "Văn Bình")
EMAIL = "binh.nguyen@example.vn"
# (not "Nguyễn Văn" alone: schools are named after people, e.g. "THCS Nguyễn Văn Trỗi")
SECRETS = ["0905123456", "905123456", "0905 123 456", "Văn Bình", "Nguyễn Văn Bình", EMAIL]


def form_post(url: str, fields: dict[str, str], headers: dict[str, str]) -> object:
    raw = urllib.parse.urlencode(fields).encode()
    return call(url, "POST", raw=raw, content_type="application/x-www-form-urlencoded",
                headers=headers)


def test_open311_client_flow_and_no_personal_data_anywhere(pipeline: Pipeline) -> None:
    pipeline.env["IOC_PSEUDONYM_KEY"] = "test-key-for-open311-e2e-0123456789"
    key = add_key(pipeline, "TTGSDH-QNA", REPORT)
    g = GatewayProcess(pipeline)
    base = f"{g.url}/open311/v2"
    try:
        services = call(f"{base}/services.json").body
        flooding = next(s for s in services if s["service_code"] == "flooding")
        assert flooding["service_name"] == "Ngập úng"
        definition = call(f"{base}/services/flooding.json").body
        assert definition["attributes"][0]["code"] == "area_code"
        assert call(f"{base}/services/volcano").status == 404
        fields = {"api_key": key, "service_code": "flooding", "lat": "15.8801",
                  "long": "108.3380", "address_string": "Đường Trần Phú, Hội An",
                  "description": f"Nước ngập sâu 40cm, liên hệ {PHONE}",
                  "first_name": NAME[0], "last_name": NAME[1], "phone": PHONE,
                  "email": EMAIL, "device_id": "dev-1"}
        first = form_post(f"{base}/requests.json", fields, {"Idempotency-Key": "app-42"})
        assert first.status == 200, first.body
        rid = first.body[0]["service_request_id"]
        again = form_post(f"{base}/requests.json", fields, {"Idempotency-Key": "app-42"})
        assert again.body[0]["service_request_id"] == rid
        assert form_post(f"{base}/requests.json", dict(fields, api_key="ioc_bad_key"),
                         {}).status == 403
        assert form_post(f"{base}/requests.json", dict(fields, service_code="volcano"),
                         {}).status == 400
        # before the pipeline ran: answered from the gateway's memory
        early = call(f"{base}/requests/{rid}.json").body[0]
        assert (early["status"], early["service_code"]) == ("open", "flooding")
        assert PHONE not in early["description"]
    finally:
        g.stop()
    # The feedback centre assigns it (its own system, straight to Kafka).
    submitted_at = datetime.now(UTC)
    pipeline.send(REPORT, [{
        "event_id": f"{rid}:assigned", "occurred_at": submitted_at + timedelta(minutes=5),
        "source": "TTGSDH-QNA", "area_code": "503", "report_id": rid, "status": "assigned",
        "channel": "open311", "category": "flooding", "assigned_agency": "BCH-PCTT-QNA",
        "due_at": submitted_at + timedelta(days=3)}])
    pipeline.run_until_idle()

    g = GatewayProcess(pipeline)
    base = f"{g.url}/open311/v2"
    try:
        got = call(f"{base}/requests/{rid}.json").body[0]
        assert got["status"] == "open"
        assert got["status_notes"].startswith("Đã chuyển cơ quan xử lý")
        assert got["agency_responsible"] == "BCH-PCTT-QNA"
        assert got["expected_datetime"] is not None
        assert got["address"] == "Đường Trần Phú, Hội An"
        listed = call(f"{base}/requests.json?service_code=flooding&status=open").body
        assert [r["service_request_id"] for r in listed] == [rid]
        assert call(f"{base}/requests.json?status=closed").body == []
        assert call(f"{base}/requests/311-nothing.json").status == 404
    finally:
        g.stop()

    stored = pipeline.query(r=f"SELECT area_code, reporter_pseudonym, description, channel "
                              f"FROM ioc.feedback_report FINAL WHERE report_id = '{rid}' "
                              "AND status = 'submitted'")["r"]
    assert len(stored) == 1
    assert stored[0]["area_code"] == "503"  # nearest unit to the point: Hội An
    assert len(stored[0]["reporter_pseudonym"]) == 16 and stored[0]["channel"] == "open311"
    assert "[số đã ẩn]" in stored[0]["description"]
    # No clear text anywhere: every column of every table, and the raw Kafka bytes.
    columns = pipeline.query(c="SELECT table, name FROM system.columns WHERE database = 'ioc'")
    by_table: dict[str, list[str]] = {}
    for row in columns["c"]:
        by_table.setdefault(row["table"], []).append(row["name"])
    checks = {}
    for table, cols in by_table.items():
        cond = " OR ".join(f"positionCaseInsensitiveUTF8(toString(`{c}`), '{s}') > 0"
                           for c in cols for s in SECRETS)
        checks[table] = f"SELECT count() AS n FROM ioc.`{table}` WHERE {cond}"
    found = pipeline.query(**checks)
    assert {t: r[0]["n"] for t, r in found.items() if r[0]["n"]} == {}
    for value in read_all(pipeline.bootstrap, pipeline.prefix + REPORT):
        for s in SECRETS:
            assert s.encode() not in value
