"""The security and cyber wall dashboards: model, layout, and every panel's SQL on real chDB.

The data is realistic end to end: six simulated hours of incidents, mentions (with the
negative surge) and security events are run through the real processor; its raw events, KPI
records and alerts are inserted as the sink would, and the expected numbers are computed from
the raw events in Python.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.connectors.sim_security_cyber import CyberSimulator, SecuritySimulator
from ioc.connectors.simulator import SimEvent
from ioc.dashboards import cyber, security
from ioc.dashboards.build import iter_panels
from ioc.dashboards.common import (
    serialise,
    to_dict,
)
from ioc.dashboards.testing import PanelResult, problems, run_panel_queries
from ioc.infra import reference_cyber
from ioc.infra.reference import load_reference
from ioc.schemas.catalogue import Catalogue
from ioc.streams.cyber import NEGATIVE_BELOW, cyber_domain
from ioc.streams.processor import Processor
from ioc.streams.security import security_domain

NOW = datetime(2025, 3, 10, 13, 0, tzinfo=UTC)  # 20:00 in Quảng Nam
START = NOW - timedelta(hours=6)
REF = load_reference()
BOARDS: dict[str, Callable[[], Any]] = {"security": security.build, "cyber": cyber.build}


def _has_diacritics(text: str) -> bool:
    return any(unicodedata.decomposition(ch) for ch in text if ch.isalpha() and ord(ch) > 127)


@pytest.fixture(scope="module", params=sorted(BOARDS))
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    return to_dict(BOARDS[request.param]())


# --- the model -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "uid", "title"), [
    ("security", "ioc-security", "An ninh trật tự"),
    ("cyber", "ioc-cyber", "Thông tin trên mạng và an toàn thông tin"),
])
def test_identity_and_deterministic_serialisation(name: str, uid: str, title: str) -> None:
    text = serialise(BOARDS[name]())
    assert text == serialise(BOARDS[name]())
    data = json.loads(text)
    assert (data["uid"], data["title"]) == (uid, title)
    assert title in text  # Vietnamese kept, not \\u escapes
    assert data["refresh"] == "30s" and data["timezone"] == "Asia/Ho_Chi_Minh"
    assert data["editable"] is False


# --- the SQL on a real database ------------------------------------------------------------


def simulated() -> list[SimEvent]:
    sec = SecuritySimulator(REF.areas, seed=4)
    cy = CyberSimulator(reference_cyber.load_topics(), reference_cyber.load_systems(), seed=4,
                        areas=REF.areas)
    events: list[SimEvent] = []
    for k in range(1, 6 * 60 + 1):
        now = START + timedelta(minutes=k)
        events.extend(sec.events_at(now, 60))
        events.extend(cy.events_at(now, 60))
    # Two critical events shortly before NOW, so both walls have a firing alert.
    events.append(SimEvent("ioc.security.incident.v1", "503", {
        "event_id": "fire-1", "occurred_at": NOW - timedelta(minutes=20), "source": "PCCC",
        "area_code": "503", "incident_type": "fire", "severity": "critical",
        "description": "Cháy nhà phố cổ", "casualties": 2, "address": "Phố cổ Hội An",
        "lat": 15.877, "lon": 108.327}))
    events.append(SimEvent("ioc.cyber.security_event.v1", "cong-dvc", {
        "event_id": "ddos-1", "occurred_at": NOW - timedelta(minutes=10), "source": "SOC-QNA",
        "area_code": "", "system": "cong-dvc", "event_type": "ddos", "severity": "critical",
        "src_ip": "198.51.100.23", "description": "Tấn công từ chối dịch vụ"}))
    return sorted(events, key=lambda e: e.occurred_at)


def load(client: Any, db: str) -> list[SimEvent]:
    events = simulated()
    proc = Processor([security_domain(REF), cyber_domain(REF)], timedelta(minutes=2),
                     lambda: NOW)
    kpis: dict[tuple[Any, ...], dict[str, Any]] = {}
    alerts: dict[tuple[str, datetime], dict[str, Any]] = {}
    for offset, ev in enumerate(events):
        steps = [proc.handle(ev.topic, ev.value, (ev.topic, 0), offset), proc.tick()]
        for step in steps:
            for a in step.alerts:
                alerts[(a["alert_id"], a["starts_at"])] = a
            for r in step.kpis:
                kpis[(r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])] = r
    for r in proc.flush():  # windows still open at NOW, as the worker publishes them
        kpis[(r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])] = r
    cat = Catalogue()
    for topic in sorted({e.topic for e in events}):
        fields = cat.get(topic).field_names
        rows = [[e.value[f] for f in fields] + [topic, 0, i, NOW]
                for i, e in enumerate(events) if e.topic == topic]
        table = topic.removeprefix("ioc.").rsplit(".", 1)[0].replace(".", "_")
        client.insert(f"{db}.{table}", rows,
                      column_names=[*fields, "_topic", "_partition", "_offset", "_ingested_at"])
    kpi_fields = cat.get("ioc.kpi.v1").field_names
    client.insert(f"{db}.kpi", [[int(r[f]) if f == "is_final" else r[f] for f in kpi_fields]
                                for r in kpis.values()], column_names=kpi_fields)
    alert_fields = cat.get("ioc.alert.v1").field_names
    client.insert(f"{db}.alerts", [[a[f] for f in alert_fields] for a in alerts.values()],
                  column_names=alert_fields)
    reference_cyber.load_into_clickhouse(client, db)
    return events


@pytest.fixture(scope="module")
def results(chdb_client: Any
            ) -> Iterator[dict[str, tuple[dict[str, Any], dict[str, PanelResult],
                                          list[SimEvent]]]]:
    import uuid

    from ioc.infra.migrations import migrate
    from ioc.infra.reference import load_into_clickhouse

    db = f"dash_sc_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, db)
    load_into_clickhouse(chdb_client, db)
    try:
        events = load(chdb_client, db)
        out = {}
        for name, fn in BOARDS.items():
            board = to_dict(fn())
            out[name] = (board, run_panel_queries(chdb_client, db, board, START, NOW), events)
        yield out
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_query_runs_and_returns_drawable_rows(
        results: dict[str, Any], name: str) -> None:
    board, res, _ = results[name]
    assert len(res) == len(list(iter_panels(board)))
    assert problems(board, res) == {}


def test_security_numbers_are_exact(results: dict[str, Any]) -> None:
    _, res, events = results["security"]
    incidents = [e.value for e in events if e.topic == "ioc.security.incident.v1"]
    totals = res["Vụ việc trong 24 giờ qua"]
    assert totals.value("incidents") == len(incidents)
    assert totals.value("critical") == sum(v["severity"] == "critical" for v in incidents)
    assert totals.value("casualties") == sum(v["casualties"] for v in incidents)
    assert res["Cảnh báo an ninh đang bật"].value("critical") >= 1
    firing = res["Cảnh báo an ninh trật tự đang bật"]
    assert any("(cháy) tại Thành phố Hội An" in s for s in firing.column("summary"))
    by_area = dict(zip(res["Vụ việc theo địa bàn (24 giờ qua)"].column("area"),
                       res["Vụ việc theo địa bàn (24 giờ qua)"].column("incidents"),
                       strict=True))
    assert by_area["Thành phố Hội An"] == sum(v["area_code"] == "503" for v in incidents)
    today = [v for v in incidents if v["occurred_at"] >= datetime(2025, 3, 9, 17, tzinfo=UTC)]
    assert sum(res["Vụ việc hôm nay theo loại"].column("incidents")) == len(today)
    assert "cháy" in res["Vụ việc hôm nay theo loại"].column("incident_type")


def test_cyber_numbers_are_exact(results: dict[str, Any]) -> None:
    _, res, events = results["cyber"]
    last_hour = [e.value for e in events if e.topic == "ioc.cyber.mention.v1"
                 and NOW - timedelta(hours=1) < e.value["occurred_at"] <= NOW]
    now = res["Đề cập trong giờ qua"]
    assert now.value("mentions") == len(last_hour)
    negative = sum(v["sentiment_score"] < NEGATIVE_BELOW for v in last_hour)
    assert now.value("negative_share") == pytest.approx(negative / len(last_hour))
    sec = [e.value for e in events if e.topic == "ioc.cyber.security_event.v1"]
    assert res["Sự cố an toàn thông tin 24 giờ qua"].value("events") == len(sec)
    by_system = res["Sự cố theo hệ thống (24 giờ qua)"]
    row = dict(zip(by_system.column("system"), by_system.rows, strict=True))[
        "Cổng Dịch vụ công tỉnh"]
    cols = by_system.columns
    for sev in ("critical", "high", "medium", "low"):
        assert row[cols.index(sev)] == sum(v["system"] == "cong-dvc" and v["severity"] == sev
                                           for v in sec), sev
    last_full = [e.value for e in events if e.topic == "ioc.cyber.mention.v1"
                 and NOW - timedelta(hours=1) <= e.value["occurred_at"] < NOW]
    bars = res["Lượt đề cập theo chủ đề (giờ gần nhất)"]
    assert sum(bars.column("mentions")) == len(last_full)
    firing = res["Cảnh báo thông tin và an toàn thông tin đang bật"]
    assert "Cổng Dịch vụ công tỉnh" in firing.column("area")
    # the surge raised (and later resolved) a negative-share alert on the timeline
    series = res["Tỷ lệ tiêu cực theo chủ đề (theo giờ)"]
    assert max(series.column("negative_share")) >= 0.5


def test_reference_loader_writes_both_tables(chdb_client: Any, fresh_db: str) -> None:
    counts = reference_cyber.load_into_clickhouse(chdb_client, fresh_db)
    again = reference_cyber.load_into_clickhouse(chdb_client, fresh_db)  # replaces, no doubles
    assert counts == again == {"ref_cyber_topics": len(reference_cyber.load_topics()),
                               "ref_gov_systems": len(reference_cyber.load_systems())}
    rows = chdb_client.query(
        f"SELECT name_vi FROM {fresh_db}.ref_cyber_topics FINAL WHERE code = 'dat_dai'"
    ).result_rows
    assert rows == [("Đất đai",)]
    n = chdb_client.query(f"SELECT count() FROM {fresh_db}.ref_gov_systems").result_rows
    assert n == [(counts["ref_gov_systems"],)]
