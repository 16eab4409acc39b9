"""The e-government wall dashboard: model, layout, and every panel's SQL on real chDB.

The data is the demo's: the simulator's 40-day backfill and its first eight live minutes (the
portal outage is under way) run through the real processor; raw events, KPI records and alerts
are inserted as the sink would, and the expected numbers are computed from the raw events and
the processor's records in Python.
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from ioc.connectors.sim_egov import EgovSimulator
from ioc.connectors.simulator import LOCAL_TZ, SimEvent
from ioc.dashboards import egov
from ioc.dashboards.build import iter_panels, panel_queries
from ioc.dashboards.common import DATASOURCE_UID, serialise, to_dict
from ioc.dashboards.testing import PanelResult, problems, run_panel_queries
from ioc.infra import reference_egov
from ioc.infra.migrations import migrate
from ioc.infra.reference import load_into_clickhouse, load_reference
from ioc.schemas.catalogue import Catalogue
from ioc.streams.egov import egov_domain
from ioc.streams.processor import Processor

ANCHOR = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # Tuesday 09:00 in Quảng Nam
NOW = ANCHOR + timedelta(minutes=8)
REF = load_reference()


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return to_dict(egov.build())


def test_identity_and_deterministic_serialisation() -> None:
    text = serialise(egov.build())
    assert text == serialise(egov.build())
    data = json.loads(text)
    assert (data["uid"], data["title"]) == ("ioc-egov", "Chính quyền điện tử")
    assert "Chính quyền điện tử" in text
    assert data["refresh"] == "30s" and data["timezone"] == "Asia/Ho_Chi_Minh"


def test_panels_ids_titles_and_datasource(board: dict[str, Any]) -> None:
    panels = list(iter_panels(board))
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    titles = [p["title"] for p in panels]
    assert len(set(titles)) == len(titles)
    for panel in panels:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
    register_default_plugins()
    assert to_dict(Dashboard.from_json(json.loads(serialise(board)))) == board


def test_every_table_is_read_with_final_and_the_time_range(board: dict[str, Any]) -> None:
    table_ref = re.compile(r"\b(FROM|JOIN)\s+(?!\()(\S+)(\s+AS\s+\w+)?(\s+FINAL)?", re.I)
    for title, raw in panel_queries(board):
        sql = re.sub(r"--[^\n]*", "", raw)
        for _, tbl, _, final in table_ref.findall(sql):
            assert tbl.startswith("ioc."), f"{title}: {tbl}"
            assert final.strip().upper() == "FINAL", f"{title}: {tbl} read without FINAL"
        assert not re.search(r"(?<!`)\bwindow\b(?!`)", sql.replace("window_", "")), title
        assert "$__timeFilter(" in sql or "$__toTime" in sql, title


# --- the SQL on a real database ------------------------------------------------------------


def simulated() -> tuple[EgovSimulator, list[SimEvent]]:
    s = EgovSimulator(reference_egov.load_agencies(), reference_egov.load_systems(),
                      reference_egov.load_procedures(), seed=0)
    events: list[SimEvent] = []
    for k in range(int((NOW - ANCHOR).total_seconds() // 10) + 1):
        events.extend(s.events_at(ANCHOR + timedelta(seconds=10 * k), 10))
    return s, events


def load(client: Any, db: str) -> dict[str, Any]:
    s, events = simulated()
    proc = Processor([egov_domain(REF, settle=timedelta(0))], timedelta(minutes=2),
                     lambda: NOW)
    kpis: dict[tuple[Any, ...], dict[str, Any]] = {}
    alerts: dict[tuple[str, datetime], dict[str, Any]] = {}
    offsets: Counter[tuple[str, int]] = Counter()
    for i, ev in enumerate(events):
        tp = (ev.topic, zlib.crc32(ev.key.encode()) % 3)
        steps = [proc.handle(ev.topic, ev.value, tp, offsets[tp])]
        offsets[tp] += 1
        if i % 25 == 0 or i == len(events) - 1:
            steps.append(proc.tick())
        for step in steps:
            for a in step.alerts:
                alerts[(a["alert_id"], a["starts_at"])] = a
            for r in step.kpis:
                key = (r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])
                if key not in kpis or r["computed_at"] >= kpis[key]["computed_at"]:
                    kpis[key] = r
    for r in proc.flush():  # open windows, as the worker publishes them
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
    reference_egov.load_into_clickhouse(client, db)
    return {"sim": s, "events": events, "kpis": list(kpis.values()),
            "alerts": list(alerts.values())}


@pytest.fixture(scope="module")
def results(chdb_client: Any) -> Iterator[tuple[dict[str, PanelResult], dict[str, Any]]]:
    db = f"dash_egov_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, db)
    load_into_clickhouse(chdb_client, db)
    try:
        data = load(chdb_client, db)
        board = to_dict(egov.build())
        yield run_panel_queries(chdb_client, db, board, NOW - timedelta(hours=6), NOW), data
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


def test_every_panel_query_runs_and_returns_drawable_rows(
        results: tuple[dict[str, PanelResult], dict[str, Any]], board: dict[str, Any]) -> None:
    res, _ = results
    assert len(res) == len(list(iter_panels(board)))
    assert problems(board, res) == {}


def newest(kpis: list[dict[str, Any]], kpi: str) -> dict[str, dict[str, Any]]:
    """Per agency, the record of the newest window (what the panels pick)."""
    out: dict[str, dict[str, Any]] = {}
    for r in sorted(kpis, key=lambda r: r["window_end"]):
        if r["kpi"] == kpi:
            out[r["entity"]] = r
    return out


def test_numbers_are_exact(results: tuple[dict[str, PanelResult], dict[str, Any]]) -> None:
    res, data = results
    s, events, kpis = data["sim"], data["events"], data["kpis"]
    today = NOW.astimezone(LOCAL_TZ).date()
    values = [e.value for e in events if e.topic == "ioc.egov.dossier.v1"
              and e.occurred_at.astimezone(LOCAL_TZ).date() == today]
    head = res["Hồ sơ hôm nay"]
    assert head.value("received") == sum(v["status"] == "received" for v in values) > 0
    assert head.value("resolved") == sum(v["status"] in ("resolved", "rejected")
                                         for v in values)
    on_time = newest(kpis, "egov.on_time_rate")
    province = res["Tỷ lệ 30 ngày toàn tỉnh"].value("on_time")
    assert province == pytest.approx(
        sum(r["value"] * r["sample_count"] for r in on_time.values())
        / sum(r["sample_count"] for r in on_time.values()))
    names = reference_egov.load_agencies()
    bars = res["Tỷ lệ giải quyết đúng hạn theo cơ quan (30 ngày)"]
    assert dict(zip(bars.column("agency"), bars.column("on_time"), strict=True)) == {
        names[a].name_vi: r["value"] for a, r in on_time.items()}
    # the outage is under way: one system down, large and red
    assert s.outage.start + timedelta(minutes=3) < NOW < s.outage.end
    down = res["Hệ thống đang ngừng hoạt động"]
    assert (down.value("down"), down.value("checked")) == (1, len(reference_egov.load_systems()))
    systems = reference_egov.load_systems()
    status = dict(zip(res["Trạng thái hệ thống"].column("system"),
                      res["Trạng thái hệ thống"].column("status"), strict=True))
    assert status == {sys.name_vi: 0 if sid == s.outage.system_id else 1
                      for sid, sys in systems.items()}
    firing = res["Cảnh báo chính quyền điện tử đang bật"]
    assert firing.column("place") == [systems[s.outage.system_id].name_vi]
    assert res["Cảnh báo đang bật"].value("critical") == 1
    table = res["Chỉ số theo cơ quan"]
    overdue = newest(kpis, "egov.overdue_open")
    got = dict(zip(table.column("agency"), table.column("overdue_now"), strict=True))
    assert got == {names[a].name_vi: r["value"] for a, r in overdue.items()}
    daily = res["Hồ sơ tiếp nhận và giải quyết 14 ngày qua"]
    per_day: Counter[str] = Counter()
    for e in events:
        local = e.occurred_at.astimezone(LOCAL_TZ)
        if e.topic == "ioc.egov.dossier.v1" and e.value["status"] == "received" \
                and (today - local.date()).days < 14:
            per_day[f"{local:%d/%m}"] += 1
    assert dict(zip(daily.column("day"), daily.column("received"), strict=True)) == per_day
    assert len(per_day) == 12  # two Sundays without dossiers
    uptime = dict(zip(res["Hệ thống: phản hồi và tỷ lệ hoạt động"].column("system"),
                      res["Hệ thống: phản hồi và tỷ lệ hoạt động"].column("uptime_24h"),
                      strict=True))
    assert all(0.9 < u <= 1.0 for u in uptime.values())


def test_reference_loader_writes_the_three_tables(chdb_client: Any, fresh_db: str) -> None:
    counts = reference_egov.load_into_clickhouse(chdb_client, fresh_db)
    assert counts == reference_egov.load_into_clickhouse(chdb_client, fresh_db)
    assert counts == {"ref_egov_agencies": len(reference_egov.load_agencies()),
                      "ref_egov_systems": len(reference_egov.load_systems()),
                      "ref_egov_procedures": len(reference_egov.load_procedures())}
    rows = chdb_client.query(f"SELECT name_vi, level, area_code FROM {fresh_db}.ref_egov_agencies"
                             " FINAL WHERE code = 'STNMT'").result_rows
    assert rows == [("Sở Tài nguyên và Môi trường", "province", "49")]
