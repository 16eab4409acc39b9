"""The econ wall dashboard: model, layout, and every panel's SQL on real chDB.

The data is the simulator's plan year up to 30 November 2026, run through the real processor
to just after the demo starts (the behind-plan and missing-report alerts are firing); raw
reports, KPI records and alerts are inserted as the sink would, and the expected numbers are
computed from the reports and the reference files in Python.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.connectors.sim_econ import EconSimulator, Episodes
from ioc.connectors.simulator import SimEvent
from ioc.dashboards import econ
from ioc.dashboards.build import iter_panels
from ioc.dashboards.common import serialise, to_dict
from ioc.dashboards.testing import PanelResult, problems, run_panel_queries
from ioc.infra.reference import load_reference
from ioc.infra.reference_econ import load_econ
from ioc.schemas.catalogue import Catalogue
from ioc.streams.econ import econ_domain, report_deadline
from ioc.streams.processor import Processor
from ioc.streams.windows import LOCAL_TZ

START = datetime(2026, 11, 30, 2, 30, tzinfo=UTC)  # the simulation's anchor, 09:30 local
NOW = START + timedelta(minutes=3)                   # before the live episodes resolve
REF = load_reference()
ECON = load_econ()


def _has_diacritics(text: str) -> bool:
    return any(unicodedata.decomposition(ch) for ch in text if ch.isalpha() and ord(ch) > 127)


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return to_dict(econ.build())


def test_identity_and_deterministic_serialisation() -> None:
    text = serialise(econ.build())
    assert text == serialise(econ.build())
    data = json.loads(text)
    assert (data["uid"], data["title"]) == ("ioc-econ", "Chỉ tiêu kinh tế – xã hội")
    assert "Chỉ tiêu kinh tế – xã hội" in text
    assert data["refresh"] == "30s" and data["timezone"] == "Asia/Ho_Chi_Minh"
    assert data["time"] == {"from": "now/y", "to": "now"}
    assert data["editable"] is False


# --- the SQL on a real database ------------------------------------------------------------


def simulated() -> tuple[list[SimEvent], Episodes]:
    sim = EconSimulator(ECON, REF.areas, seed=2)
    events = sim.events_at(START + timedelta(seconds=10), 10)
    t = START + timedelta(seconds=10)
    while t < NOW:
        t += timedelta(seconds=10)
        events.extend(sim.events_at(t, 10))
    assert sim.episodes is not None
    return events, sim.episodes


def load(client: Any, db: str) -> list[SimEvent]:
    events, _ = simulated()
    clock = [NOW]
    proc = Processor([econ_domain(REF)], timedelta(minutes=2), lambda: clock[0])
    kpis: dict[tuple[Any, ...], dict[str, Any]] = {}
    alerts: dict[tuple[str, datetime], dict[str, Any]] = {}
    for offset, ev in enumerate(events):
        step = proc.handle(ev.topic, ev.value, (ev.topic, 0), offset)
        for a in step.alerts:
            alerts[(a["alert_id"], a["starts_at"])] = a
    # The worker's timer clock runs on event time; live data of the other subsystems carries
    # it to the present. Here the wall clock stands in: move it so the timer reads NOW.
    now = proc.timer_now()
    assert now is not None
    clock[0] += NOW - now - timedelta(seconds=3)
    for _ in range(3):
        clock[0] += timedelta(seconds=1)
        step = proc.tick()
        for a in step.alerts:
            alerts[(a["alert_id"], a["starts_at"])] = a
        for r in step.kpis:
            kpis[(r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])] = r
    cat = Catalogue()
    topic = "ioc.econ.indicator_report.v1"
    fields = cat.get(topic).field_names
    client.insert(f"{db}.econ_indicator_report",
                  [[e.value[f] for f in fields] + [topic, 0, i, NOW]
                   for i, e in enumerate(events)],
                  column_names=[*fields, "_topic", "_partition", "_offset", "_ingested_at"])
    kpi_fields = cat.get("ioc.kpi.v1").field_names
    client.insert(f"{db}.kpi", [[int(r[f]) if f == "is_final" else r[f] for f in kpi_fields]
                                for r in kpis.values()], column_names=kpi_fields)
    alert_fields = cat.get("ioc.alert.v1").field_names
    client.insert(f"{db}.alerts", [[a[f] for f in alert_fields] for a in alerts.values()],
                  column_names=alert_fields)
    return events


@pytest.fixture(scope="module")
def results(chdb_client: Any) -> Iterator[tuple[dict[str, Any], dict[str, PanelResult]]]:
    import uuid

    from ioc.infra.migrations import migrate
    from ioc.infra.runtime import load_reference_tables

    db = f"dash_econ_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, db)
    load_reference_tables(chdb_client, db)
    try:
        load(chdb_client, db)
        board = to_dict(econ.build())
        yield board, run_panel_queries(chdb_client, db, board,
                                       datetime(2025, 12, 31, 17, tzinfo=UTC), NOW)
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


def test_every_panel_query_runs_and_returns_drawable_rows(
        results: tuple[dict[str, Any], dict[str, PanelResult]]) -> None:
    board, res = results
    assert len(res) == len(list(iter_panels(board)))
    assert problems(board, res) == {}


def _in_force(events: list[SimEvent], indicator: str, area: str) -> dict[str, float]:
    best: dict[str, tuple[int, datetime, float]] = {}
    for e in events:
        v = e.value
        if (v["indicator_code"], v["area_code"]) != (indicator, area) or e.occurred_at > NOW:
            continue
        rank = (v["revision"], e.occurred_at, v["value"])
        if v["period"] not in best or rank > best[v["period"]]:
            best[v["period"]] = rank
    return {p: r[2] for p, r in best.items()}


def test_numbers_are_exact(results: tuple[dict[str, Any], dict[str, PanelResult]]) -> None:
    _, res = results
    events, ep = simulated()
    assert res["Chỉ tiêu chậm tiến độ"].value("behind") == 1
    assert res["Báo cáo quá hạn"].value("missing") == 1
    month_start = datetime(2026, 11, 1, tzinfo=LOCAL_TZ)
    november = [e.value for e in events if month_start <= e.occurred_at <= NOW]
    month = res["Báo cáo nhận trong tháng"]
    assert month.value("reports") == sum(v["revision"] == 0 for v in november)
    assert month.value("corrections") == 0
    # province-wide budget revenue: sum of October's year to date, target 27 000 (approx.)
    table = res["Chỉ tiêu toàn tỉnh lũy kế từ đầu năm"]
    rows = {r[0]: dict(zip(table.columns, r, strict=True)) for r in table.rows}
    revenue = rows["Thu ngân sách nhà nước trên địa bàn"]
    ytd = sum(_in_force(events, "budget_revenue", "").values())
    assert revenue["ytd_value"] == pytest.approx(ytd)
    assert (revenue["through"], revenue["unit"], revenue["target"]) == (
        "10/2026", "tỷ đồng", 27000.0)
    assert revenue["progress"] == pytest.approx(ytd / 27000)
    assert revenue["elapsed"] == pytest.approx(10 / 12)
    before = sum(ECON.actuals[("budget_revenue", "", f"2025-{m:02d}")] for m in range(1, 11))
    assert revenue["yoy"] == pytest.approx(ytd / before - 1)
    assert rows["Tốc độ tăng trưởng GRDP"]["yoy"] is None  # a rate: no YoY
    assert rows["Tốc độ tăng trưởng GRDP"]["through"] == "09/2026"
    gauge = res["Tiến độ thực hiện kế hoạch năm – toàn tỉnh"]
    assert dict(zip(gauge.column("indicator"), gauge.column("progress"), strict=True))[
        "Thu ngân sách nhà nước trên địa bàn"] == pytest.approx(ytd / 27000)
    on_track = res["Chỉ tiêu toàn tỉnh đạt tiến độ"]
    assert on_track.value("tracked") == 5  # the five province-wide flows with a target
    # the district behind on disbursement heads the areas table
    assert ep.behind is not None and ep.missing is not None
    areas = res["Địa bàn chậm tiến độ nhất"]
    first = dict(zip(areas.columns, areas.rows[0], strict=True))
    assert first["area"] == REF.areas[ep.behind[1]].name_vi
    assert first["indicator"] == "Giải ngân vốn đầu tư công"
    disbursed = sum(_in_force(events, ep.behind[0], ep.behind[1]).values())
    target = ECON.targets[(ep.behind[0], ep.behind[1], 2026)]
    assert first["progress"] == pytest.approx(disbursed / target)
    assert first["pace"] < 0.8
    missing = res["Báo cáo chưa nhận"]
    [row] = [dict(zip(missing.columns, r, strict=True)) for r in missing.rows]
    assert (row["area"], row["period"], row["agency"]) == (
        REF.areas[ep.missing[1]].name_vi, "10/2026", "Sở Tài chính")
    overdue = (NOW - report_deadline(2026, 10)) // timedelta(days=1) + 1
    assert row["days_late"] == overdue == 25
    firing = res["Cảnh báo kinh tế – xã hội đang bật"]
    assert len(firing.rows) == 2
    assert REF.areas[ep.behind[1]].name_vi in firing.column("area")


def test_reference_loader_writes_all_three_tables(chdb_client: Any, fresh_db: str) -> None:
    from ioc.infra.reference_econ import load_into_clickhouse

    counts = load_into_clickhouse(chdb_client, fresh_db)
    again = load_into_clickhouse(chdb_client, fresh_db)  # replaces, no doubles
    assert counts == again == {"ref_econ_indicators": len(ECON.indicators),
                               "ref_econ_targets": len(ECON.targets),
                               "ref_econ_actuals": len(ECON.actuals)}
    rows = chdb_client.query(
        f"SELECT name_vi, unit, aggregation, behind_plan FROM {fresh_db}.ref_econ_indicators "
        "FINAL WHERE code = 'public_investment_disbursement'").result_rows
    assert rows == [("Giải ngân vốn đầu tư công", "tỷ đồng", "sum", 1)]
    n = chdb_client.query(
        f"SELECT count(), min(approximate) FROM {fresh_db}.ref_econ_targets").result_rows
    assert n == [(counts["ref_econ_targets"], 1)]
