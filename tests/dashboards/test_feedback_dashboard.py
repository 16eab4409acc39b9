"""The citizen-feedback wall dashboard: model, layout, and every panel's SQL on real chDB.

The data is realistic end to end: the simulator's eight days of backfill and the first 30
minutes of the live part (with the flooding surge) run through the real processor; raw events,
KPI records and alerts are inserted as the sink would, and the expected numbers are computed
from the raw events in Python.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from ioc.connectors.sim_feedback import FeedbackSimulator
from ioc.connectors.simulator import SimEvent
from ioc.dashboards import feedback
from ioc.dashboards.build import iter_panels, panel_queries
from ioc.dashboards.common import DATASOURCE_UID, serialise, to_dict
from ioc.dashboards.testing import PanelResult, problems, run_panel_queries
from ioc.infra import reference_feedback
from ioc.infra.reference import load_reference
from ioc.schemas.catalogue import Catalogue
from ioc.streams.feedback import REPORT_TOPIC, Report, feedback_domain
from ioc.streams.processor import Processor

ANCHOR = datetime(2026, 10, 20, 2, 0, tzinfo=UTC)  # 09:00 in Quảng Nam
NOW = ANCHOR + timedelta(minutes=30)
START = NOW - timedelta(hours=6)
DAY_START = datetime(2026, 10, 19, 17, 0, tzinfo=UTC)  # 20 Oct, 00:00 local
DAY_END = DAY_START + timedelta(days=1)
REF = load_reference()


def _has_diacritics(text: str) -> bool:
    return any(unicodedata.decomposition(ch) for ch in text if ch.isalpha() and ord(ch) > 127)


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return to_dict(feedback.build())


def test_identity_and_deterministic_serialisation() -> None:
    text = serialise(feedback.build())
    assert text == serialise(feedback.build())
    data = json.loads(text)
    assert (data["uid"], data["title"]) == ("ioc-feedback", "Phản ánh kiến nghị")
    assert "Phản ánh kiến nghị" in text
    assert data["refresh"] == "30s" and data["timezone"] == "Asia/Ho_Chi_Minh"


def test_panels_titles_ids_datasource_and_round_trip(board: dict[str, Any]) -> None:
    panels = list(iter_panels(board))
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    titles = [p["title"] for p in panels]
    assert len(set(titles)) == len(titles)
    assert all(_has_diacritics(t) for t in [board["title"], *titles])
    for panel in panels:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
    register_default_plugins()
    assert to_dict(Dashboard.from_json(json.loads(serialise(board)))) == board


def test_every_table_is_read_with_final_and_no_personal_column(board: dict[str, Any]) -> None:
    table_ref = re.compile(r"\b(FROM|JOIN)\s+(?!\()(\S+)(\s+AS\s+\w+)?(\s+FINAL)?", re.I)
    for title, raw in panel_queries(board):
        sql = re.sub(r"--[^\n]*", "", raw)
        for _, table, _, final in table_ref.findall(sql):
            assert table.startswith("ioc."), f"{title}: {table}"
            assert final.strip().upper() == "FINAL", f"{title}: {table} read without FINAL"
        assert not re.search(r"(?<!`)\bwindow\b(?!`)", sql.replace("window_", "")), title
        assert "$__timeFilter(" in sql or "$__toTime" in sql, title
        for personal in ("reporter_pseudonym", "description", "address"):
            assert personal not in sql, f"{title} reads {personal}"


# --- the SQL on a real database ------------------------------------------------------------


def simulated() -> tuple[FeedbackSimulator, list[SimEvent]]:
    sim = FeedbackSimulator(REF.areas, reference_feedback.load_categories(),
                            reference_feedback.load_agencies(), 4,
                            pseudonym_key=b"dashboard-test-key-0123")
    events: list[SimEvent] = []
    for k in range(1, 31):
        events.extend(sim.events_at(ANCHOR + timedelta(minutes=k), 60))
    return sim, events


def load(client: Any, db: str) -> tuple[FeedbackSimulator, list[SimEvent], Processor]:
    sim, events = simulated()
    wall = [ANCHOR]
    proc = Processor([feedback_domain(REF)], timedelta(minutes=2), lambda: wall[0])
    kpis: dict[tuple[Any, ...], dict[str, Any]] = {}
    alerts: dict[tuple[str, datetime], dict[str, Any]] = {}

    def take(recs: list[dict[str, Any]]) -> None:
        for r in recs:
            if "alert_id" in r:
                alerts[(r["alert_id"], r["starts_at"])] = r
            else:
                kpis[(r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])] = r

    for offset, ev in enumerate(events):
        wall[0] = max(wall[0], ev.occurred_at)
        step = proc.handle(REPORT_TOPIC, ev.value, (REPORT_TOPIC, 0), offset)
        take(step.kpis + step.alerts)
        if offset % 20 == 0:
            tick = proc.tick()
            take(tick.kpis + tick.alerts)
    tick = proc.tick()  # the timer sees the last event at its own time, then time passes
    take(tick.kpis + tick.alerts)
    wall[0] = NOW
    for _ in range(4):
        tick = proc.tick()
        take(tick.kpis + tick.alerts)
    take(proc.flush())  # windows still open at NOW, as the worker publishes them
    cat = Catalogue()
    fields = cat.get(REPORT_TOPIC).field_names
    client.insert(f"{db}.feedback_report",
                  [[e.value[f] for f in fields] + [REPORT_TOPIC, 0, i, NOW]
                   for i, e in enumerate(events)],
                  column_names=[*fields, "_topic", "_partition", "_offset", "_ingested_at"])
    kpi_fields = cat.get("ioc.kpi.v1").field_names
    client.insert(f"{db}.kpi", [[int(r[f]) if f == "is_final" else r[f] for f in kpi_fields]
                                for r in kpis.values()], column_names=kpi_fields)
    alert_fields = cat.get("ioc.alert.v1").field_names
    client.insert(f"{db}.alerts", [[a[f] for f in alert_fields] for a in alerts.values()],
                  column_names=alert_fields)
    return sim, events, proc


@pytest.fixture(scope="module")
def results(chdb_client: Any) -> Iterator[tuple[dict[str, PanelResult], FeedbackSimulator,
                                                 list[SimEvent], Processor]]:
    from ioc.infra.migrations import migrate
    from ioc.infra.runtime import load_reference_tables

    db = f"dash_fb_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, db)
    load_reference_tables(chdb_client, db)
    try:
        sim, events, proc = load(chdb_client, db)
        board = to_dict(feedback.build())
        yield run_panel_queries(chdb_client, db, board, START, NOW), sim, events, proc
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


def test_every_panel_query_runs_and_returns_drawable_rows(results: Any,
                                                          board: dict[str, Any]) -> None:
    res = results[0]
    assert len(res) == len(list(iter_panels(board)))
    assert problems(board, res) == {}


def reports_of(events: list[SimEvent]) -> dict[str, Report]:
    out: dict[str, Report] = {}
    for e in events:
        out.setdefault(e.value["report_id"], Report(e.value["report_id"])).add(e.value)
    return out


def test_numbers_are_exact(results: Any) -> None:
    res, _, events, _ = results
    submitted_today = [e for e in events if e.value["status"] == "submitted"
                       and DAY_START <= e.occurred_at <= NOW]
    assert res["Phản ánh mới hôm nay"].value("reports") == len(submitted_today)
    by_category = res["Phản ánh mới hôm nay theo lĩnh vực"]
    assert sum(by_category.column("reports")) == len(submitted_today)
    assert "Ngập úng" in by_category.column("category")  # the surge

    reports = reports_of(events)
    minute = NOW.replace(second=0, microsecond=0)
    views = [r.view(minute) for r in reports.values()]
    open_now = res["Phản ánh đang tồn đọng"]
    assert open_now.value("open_reports") == sum(v.open for v in views)
    assert open_now.value("unassigned") == sum(v.open and not v.agency for v in views)
    backlog = dict(zip(res["Tồn đọng theo đơn vị"].column("agency"),
                       res["Tồn đọng theo đơn vị"].column("open_reports"), strict=True))
    assert backlog["Công an tỉnh"] == sum(v.open and v.agency == "CA-QNA" for v in views)

    resolved = [v for v in (r.view(NOW) for r in reports.values())
                if v.status == "resolved" and v.closed_at is not None
                and DAY_END - timedelta(days=30) <= v.closed_at < DAY_END]
    on_time = sum(v.due_at is None or v.closed_at <= v.due_at for v in resolved)  # type: ignore[operator]
    assert res["Tỷ lệ đúng hạn (30 ngày)"].value("on_time") == pytest.approx(
        on_time / len(resolved))
    rated = [v.rating for v in resolved if v.rating is not None]
    assert res["Mức hài lòng (30 ngày)"].value("satisfaction") == pytest.approx(
        sum(rated) / len(rated))
    results_table = res["Kết quả giải quyết theo đơn vị (30 ngày)"]
    assert sum(results_table.column("resolved")) == len(resolved)
    assert sum(results_table.column("ratings")) == len(rated)


def test_overdue_table_and_firing_alerts(results: Any) -> None:
    res, sim, events, _ = results
    overdue = res["Phản ánh quá hạn"]
    rows = {r[0]: dict(zip(overdue.columns, r, strict=True)) for r in overdue.rows}
    critical = rows[sim.scripted[0]]
    assert critical["severity"] == "critical"
    assert critical["days_overdue"] == pytest.approx(4.8, abs=0.05)  # 4 days 18 h + 30 min
    assert critical["category"] == "An ninh trật tự" and critical["agency"] == "Công an tỉnh"
    assert sim.scripted[1] in rows and sim.scripted[3] in rows  # due at anchor + 20 min
    assert sim.scripted[2] not in rows  # resolved at anchor + 10 min
    pseudonyms = {e.value["reporter_pseudonym"] for e in events} - {""}
    cells = {str(c) for r in overdue.rows for c in r}
    assert not cells & pseudonyms
    firing = res["Cảnh báo phản ánh kiến nghị đang bật"]
    assert any("ngập úng" in s and "tăng đột biến" in s for s in firing.column("summary"))
    counts = res["Cảnh báo phản ánh đang bật"]
    assert counts.value("critical") >= 1 and counts.value("warning") >= 2
    hourly = res["Phản ánh mới theo giờ và lĩnh vực"]
    assert max(hourly.column("reports")) >= 9  # the surge hour of flooding reports


def test_reference_loader_writes_both_tables(chdb_client: Any, fresh_db: str) -> None:
    counts = reference_feedback.load_into_clickhouse(chdb_client, fresh_db)
    again = reference_feedback.load_into_clickhouse(chdb_client, fresh_db)
    assert counts == again == {"ref_feedback_categories": 11, "ref_feedback_agencies": 8}
    rows = chdb_client.query(f"SELECT name_vi, due_days, agency FROM "
                             f"{fresh_db}.ref_feedback_categories FINAL WHERE code = 'flooding'"
                             ).result_rows
    assert rows == [("Ngập úng", 3, "BCH-PCTT-QNA")]
