"""The health and education wall dashboards: model, layout, and every panel's SQL on real chDB.

The data is what a demo produces: half an hour of simulated facility status, cases and
attendance (with the history the simulators send first: the past and current outbreaks, the
low-attendance day, the occupancy episode) run through the real processor; its raw events, KPI
records and alerts are inserted as the sink would, and the expected numbers are computed from
the raw events in Python.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.connectors.sim_health_edu import EduSimulator, HealthSimulator
from ioc.connectors.simulator import LOCAL_TZ, SimEvent
from ioc.dashboards import edu, health
from ioc.dashboards.build import iter_panels
from ioc.dashboards.common import serialise, to_dict
from ioc.dashboards.testing import PanelResult, problems, run_panel_queries
from ioc.infra import reference_health_edu
from ioc.infra.reference import load_reference
from ioc.schemas.catalogue import Catalogue
from ioc.streams.edu import edu_domain
from ioc.streams.health import health_domain
from ioc.streams.processor import Processor

NOW = datetime(2026, 11, 30, 3, 30, tzinfo=UTC)  # Monday 10:30 in Quảng Nam
START = NOW - timedelta(hours=6)
REF = load_reference()
BOARDS: dict[str, Callable[[], Any]] = {"health": health.build, "edu": edu.build}


def _has_diacritics(text: str) -> bool:
    return any(unicodedata.decomposition(ch) for ch in text if ch.isalpha() and ord(ch) > 127)


@pytest.fixture(scope="module", params=sorted(BOARDS))
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    return to_dict(BOARDS[request.param]())


# --- the model -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "uid", "title"), [
    ("health", "ioc-health", "Y tế"),
    ("edu", "ioc-edu", "Giáo dục"),
])
def test_identity_and_deterministic_serialisation(name: str, uid: str, title: str) -> None:
    text = serialise(BOARDS[name]())
    assert text == serialise(BOARDS[name]())
    data = json.loads(text)
    assert (data["uid"], data["title"]) == (uid, title)
    assert title in text
    assert data["refresh"] == "30s" and data["timezone"] == "Asia/Ho_Chi_Minh"
    assert data["editable"] is False


# --- the SQL on a real database ------------------------------------------------------------


class Demo:
    def __init__(self) -> None:
        self.health = HealthSimulator(reference_health_edu.load_facilities(), REF.areas, 5)
        self.edu = EduSimulator(reference_health_edu.load_schools(), 5)
        self.events: list[SimEvent] = []
        t = NOW - timedelta(minutes=30)
        while t < NOW:
            t += timedelta(seconds=10)
            self.events += self.health.events_at(t, 10) + self.edu.events_at(t, 10)

    def values(self, topic: str) -> list[dict[str, Any]]:
        return [e.value for e in self.events if e.topic == topic]


def load(client: Any, db: str, demo: Demo) -> None:
    proc = Processor([health_domain(REF), edu_domain(REF)], timedelta(minutes=2), lambda: NOW)
    kpis: dict[tuple[Any, ...], dict[str, Any]] = {}
    alerts: dict[tuple[str, datetime], dict[str, Any]] = {}
    offsets: dict[tuple[str, int], int] = {}

    def keep(step: Any) -> None:
        for a in step.alerts:
            alerts[(a["alert_id"], a["starts_at"])] = a
        for r in step.kpis:
            kpis[(r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])] = r

    for ev in demo.events:
        tp = (ev.topic, sum(ev.key.encode()) % 3)
        offsets[tp] = offsets.get(tp, -1) + 1
        keep(proc.handle(ev.topic, ev.value, tp, offsets[tp]))
        keep(proc.tick())
    for r in proc.flush():
        kpis[(r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])] = r
    cat = Catalogue()
    for topic in sorted({e.topic for e in demo.events}):
        fields = cat.get(topic).field_names
        rows = [[e.value[f] for f in fields] + [topic, 0, i, NOW]
                for i, e in enumerate(demo.events) if e.topic == topic]
        table = topic.removeprefix("ioc.").rsplit(".", 1)[0].replace(".", "_")
        client.insert(f"{db}.{table}", rows,
                      column_names=[*fields, "_topic", "_partition", "_offset", "_ingested_at"])
    kpi_fields = cat.get("ioc.kpi.v1").field_names
    client.insert(f"{db}.kpi", [[int(r[f]) if f == "is_final" else r[f] for f in kpi_fields]
                                for r in kpis.values()], column_names=kpi_fields)
    alert_fields = cat.get("ioc.alert.v1").field_names
    client.insert(f"{db}.alerts", [[a[f] for f in alert_fields] for a in alerts.values()],
                  column_names=alert_fields)
    reference_health_edu.load_into_clickhouse(client, db)


@pytest.fixture(scope="module")
def results(chdb_client: Any) -> Iterator[tuple[Demo, dict[str, dict[str, PanelResult]]]]:
    from ioc.infra.migrations import migrate
    from ioc.infra.reference import load_into_clickhouse

    db = f"dash_he_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, db)
    load_into_clickhouse(chdb_client, db)
    demo = Demo()
    try:
        load(chdb_client, db, demo)
        out = {name: run_panel_queries(chdb_client, db, to_dict(fn()), START, NOW)
               for name, fn in BOARDS.items()}
        yield demo, out
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_query_runs_and_returns_drawable_rows(
        results: tuple[Demo, dict[str, dict[str, PanelResult]]], name: str) -> None:
    _, res = results
    board = to_dict(BOARDS[name]())
    assert len(res[name]) == len(list(iter_panels(board)))
    found = problems(board, res[name])
    if name == "edu":  # the demo's low-attendance episode resolved in its history
        assert found.pop("Cảnh báo giáo dục đang bật", None) == ["no rows"]
    assert found == {}


def _latest_statuses(demo: Demo) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for v in demo.values("ioc.health.facility_status.v1"):
        if v["occurred_at"] <= NOW:
            latest[v["facility_id"]] = v  # events are in time order
    return latest


def test_health_numbers_are_exact(results: tuple[Demo, dict[str, dict[str, PanelResult]]]
                                  ) -> None:
    demo, out = results
    res = out["health"]
    latest = _latest_statuses(demo)
    occupied = sum(v["beds_occupied"] for v in latest.values())
    beds = sum(v["beds_total"] for v in latest.values())
    assert res["Công suất giường bệnh toàn tỉnh"].value("occupancy") == pytest.approx(
        occupied / beds)
    assert res["Cơ sở quá tải"].value("over_warning") == sum(
        v["beds_occupied"] / v["beds_total"] >= 0.9 for v in latest.values())
    assert res["Người bệnh chờ cấp cứu"].value("waiting") == sum(
        v["emergency_waiting"] for v in latest.values())
    by_facility = res["Công suất giường bệnh theo cơ sở"]
    assert len(by_facility.rows) == len(reference_health_edu.load_facilities())
    cases = [v for v in demo.values("ioc.health.disease_case.v1")
             if NOW - timedelta(days=7) < v["occurred_at"] <= NOW]
    totals = res["Ca bệnh truyền nhiễm 7 ngày qua"]
    assert totals.value("cases") == len({v["case_id"] for v in cases})
    assert totals.value("dengue") == len({v["case_id"] for v in cases
                                          if v["disease"] == "dengue"})
    # the occupancy episode's hospital tops the curves (96 % at its peak)
    episode = reference_health_edu.load_facilities()[demo.health.episode_facility or ""]
    series = res["Công suất giường bệnh các cơ sở đông nhất"]
    assert episode.name_vi in series.column("facility")
    assert max(series.column("occupancy")) == pytest.approx(0.96, abs=0.002)
    # the current dengue outbreak: its area leads the 7-day table; figures from raw events
    plan = next(p for p in demo.health.plans if p.disease == "dengue")
    area = REF.areas[plan.area_code]
    today = NOW.astimezone(LOCAL_TZ).date()
    week = [v for v in demo.values("ioc.health.disease_case.v1")
            if v["area_code"] == plan.area_code and v["disease"] == "dengue"
            and today - timedelta(days=6) <= v["occurred_at"].astimezone(LOCAL_TZ).date()
            <= today and v["occurred_at"] <= NOW]
    table = res["Ca bệnh 7 ngày và tỷ lệ mắc trên 100.000 dân theo địa bàn"]
    row = dict(zip(table.columns, table.rows[0], strict=True))
    assert row["area"] == area.name_vi
    assert row["dengue"] == len(week)
    assert row["dengue_per_100k"] == pytest.approx(len(week) / area.population * 100_000)
    daily = res["Ca bệnh mới theo ngày (8 tuần)"]
    assert "sốt xuất huyết" in daily.column("disease")
    firing = res["Cảnh báo y tế đang bật"].column("summary")
    assert any(s.startswith(f"Nguy cơ bùng phát dịch sốt xuất huyết tại {area.name_vi}")
               for s in firing)
    assert res["Cảnh báo đang bật"].value("warning") == len(firing) == 1


def test_edu_numbers_are_exact(results: tuple[Demo, dict[str, dict[str, PanelResult]]]
                               ) -> None:
    demo, out = results
    res = out["edu"]
    today = NOW.astimezone(LOCAL_TZ).date()
    reports = [v for v in demo.values("ioc.edu.attendance.v1") if v["school_day"] == today]
    assert reports
    enrolled = sum(v["enrolled"] for v in reports)
    present = sum(v["present"] for v in reports)
    assert res["Tỷ lệ đi học toàn tỉnh"].value("rate") == pytest.approx(present / enrolled)
    assert res["Học sinh vắng mặt"].value("absent") == enrolled - present
    schools = res["Trường đã báo cáo"]
    assert (schools.value("reported"), schools.value("schools")) == (
        len(reports), len(reference_health_edu.load_schools()))
    by_area = res["Tỷ lệ đi học theo địa bàn"]
    assert len(by_area.rows) == len({v["area_code"] for v in reports})
    assert by_area.column("rate") == sorted(by_area.column("rate"))
    # the low day (resolved since) shows on the 14-day curves
    low_name = REF.areas[demo.edu.low_area or ""].name_vi
    daily = res["Tỷ lệ đi học theo ngày (14 ngày)"]
    assert low_name in daily.column("area")
    assert min(daily.column("rate")) < 0.85
    levels = res["Tỷ lệ đi học theo cấp học"].column("level")
    assert levels == ["Mầm non", "Tiểu học", "Trung học cơ sở", "Trung học phổ thông"]
    assert res["Cảnh báo giáo dục đang bật"].rows == []


def test_reference_loader_writes_both_tables(chdb_client: Any, fresh_db: str) -> None:
    counts = reference_health_edu.load_into_clickhouse(chdb_client, fresh_db)
    again = reference_health_edu.load_into_clickhouse(chdb_client, fresh_db)
    assert counts == again == {
        "ref_health_facilities": len(reference_health_edu.load_facilities()),
        "ref_schools": len(reference_health_edu.load_schools())}
    rows = chdb_client.query(
        f"SELECT name_vi, area_code, beds FROM {fresh_db}.ref_health_facilities FINAL "
        "WHERE facility_id = 'bvdk-qnam'").result_rows
    assert rows == [("Bệnh viện Đa khoa tỉnh Quảng Nam", "502", 700)]
