"""Socio-economic indicators through the real broker, worker, sink and chDB: exact year-to-date
KPIs, the behind-plan alert fired by a report and resolved by a correction, the missing-report
alert fired by the timer (a later report moves event time past the deadline) and resolved by the
late report. (A restart replaying the held reports is proven on the pure processor in
tests/streams/test_econ.py; one worker run keeps this test short.)"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from confluent_kafka import Consumer
from pipeline import Pipeline

from ioc.infra.reference import DEFAULT_DIR
from ioc.schemas.serde import Serde

TOPIC = "ioc.econ.indicator_report.v1"
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
DISB, REV, GRDP = "public_investment_disbursement", "budget_revenue", "grdp_growth"

PANELS = r"""
import json, sys
from datetime import datetime
from ioc.connectors.clickhouse import connect
from ioc.dashboards.build import render_dict
from ioc.dashboards.testing import problems, run_panel_queries
url, start, end = sys.argv[1:4]
board = render_dict("econ")
res = run_panel_queries(connect(url), "ioc", board, datetime.fromisoformat(start),
                        datetime.fromisoformat(end), strict=False)
print(json.dumps({"problems": problems(board, res, require_rows=False),
                  "rows": {t: len(r.rows) for t, r in res.items()}}, ensure_ascii=False))
"""


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=LOCAL).astimezone(UTC)


def report(indicator: str, area: str, period: str, value: float, when: datetime,
           unit: str, revision: int = 0) -> dict[str, Any]:
    return {"event_id": f"{indicator}-{area or 'tinh'}-{period}-r{revision}",
            "occurred_at": when, "source": "STC-QNA", "area_code": area,
            "indicator_code": indicator, "period": period, "value": value, "unit": unit,
            "reporting_agency": "Sở Tài chính", "revision": revision}


def reference_dir(tmp: Path) -> Path:
    """The shipped areas, segments and indicator catalogue, with two of the shipped targets
    only: so the only required monthly reporters are Thăng Bình's disbursement and the
    province's revenue."""
    ref = tmp / "reference"
    ref.mkdir()
    for name in ("areas.csv", "road_segments.csv"):
        shutil.copy(DEFAULT_DIR / name, ref / name)
    (ref / "econ_targets.csv").write_text(
        "indicator_code,area_code,year,target,approximate\n"
        f"{DISB},513,2026,480,0\n{REV},,2026,27000,0\n", encoding="utf-8")
    return ref  # econ_indicators.csv and econ_actuals.csv: the shipped defaults


def read_alerts(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every record on the alert topic, in rule order."""
    serde = Serde()
    consumer = Consumer({"bootstrap.servers": pipeline.bootstrap, "group.id": "econ-probe",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([pipeline.prefix + "ioc.alert.v1"])
    out: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 30
        while len(out) < 2 and time.monotonic() < deadline:
            for msg in consumer.consume(10, timeout=1.0):
                if msg.error() is None and msg.value() is not None:
                    out.append(serde.decode("ioc.alert.v1", msg.value()))
    finally:
        consumer.close()
    return sorted(out, key=lambda a: a["rule"])


def actual(indicator: str, area: str, months: range) -> float:
    with (DEFAULT_DIR / "econ_actuals.csv").open(encoding="utf-8") as fh:
        rows = {(r["indicator_code"], r["area_code"], r["period"]): float(r["value"])
                for r in csv.DictReader(fh)}
    return sum(rows[(indicator, area, f"2025-{m:02d}")] for m in months)


KPI_SQL = ("SELECT kpi, area_code, entity, `window`, toString(window_start) AS ws, "
           "toString(window_end) AS we, value, sample_count FROM ioc.kpi FINAL "
           "WHERE kpi LIKE 'econ.%'")
ALERT_SQL = ("SELECT rule, status, area_code, entity, value, threshold, "
             "toString(starts_at) AS starts, toString(ends_at) AS ends, summary "
             "FROM ioc.alerts FINAL WHERE domain = 'econ' ORDER BY rule")


def test_econ_kpis_and_both_alerts_fire_and_resolve(pipeline: Pipeline, tmp_path: Path
                                                   ) -> None:
    # The worker reads this folder; ClickHouse keeps the shipped reference tables (the same
    # names and, for these two series, the same targets) for the dashboard queries.
    pipeline.env["IOC_REFERENCE_DIR"] = str(reference_dir(tmp_path))
    # Phase 1. Thăng Bình: 40 + 40 + 10 = 90 of 480 by March: 18.75 % < 0.8 × 3/12 → behind.
    # Province revenue: January and February only; March's report is due by 5 April.
    # GRDP growth of Q1, sent on 10 April, moves event time past that deadline.
    pipeline.send(TOPIC, [
        report(DISB, "513", "2026-01", 40.0, at(2, 3), "tỷ đồng"),
        report(DISB, "513", "2026-02", 40.0, at(3, 3), "tỷ đồng"),
        report(DISB, "513", "2026-03", 10.0, at(4, 3), "tỷ đồng"),
        report(REV, "", "2026-01", 2100.0, at(2, 4), "tỷ đồng"),
        report(REV, "", "2026-02", 1900.0, at(3, 4), "tỷ đồng"),
        report(GRDP, "", "2026-Q1", 7.1, at(4, 10), "%"),
    ])
    # Phase 2, once both alerts fired (the missing one on a timer tick): a corrected March for
    # Thăng Bình (10 → 40) and the late revenue report. The worker is still running.
    fired: list[dict[str, Any]] = []

    def phase_two() -> None:
        pipeline.wait_for("ioc.alert.v1", 2, timeout=240)
        fired.extend(read_alerts(pipeline))
        pipeline.send(TOPIC, [
            report(DISB, "513", "2026-03", 40.0, at(4, 12, 10), "tỷ đồng", revision=1),
            report(REV, "", "2026-03", 2300.0, at(4, 14, 8), "tỷ đồng"),
        ])

    sender = threading.Thread(target=phase_two, daemon=True)
    sender.start()
    pipeline.run_until_idle(idle_s=8)
    sender.join(10)
    assert [(a["rule"], a["status"], a["area_code"], a["entity"]) for a in fired] == [
        ("econ.behind_plan", "firing", "513", DISB),
        ("econ.report_missing", "firing", "", REV)]
    behind, missing = fired
    assert (behind["value"], behind["threshold"]) == (0.1875, 0.2)
    assert behind["starts_at"] == at(4, 3)
    assert "Huyện Thăng Bình đạt 19% kế hoạch năm 2026" in behind["summary"]
    assert missing["starts_at"] == datetime(2026, 4, 5, 17, tzinfo=UTC)  # 6 April, local
    assert "tháng 03/2026" in missing["summary"] and "(toàn tỉnh)" in missing["summary"]

    got = pipeline.query(
        kpi=KPI_SQL, alerts=ALERT_SQL,
        raw="SELECT count() AS reports, countIf(revision = 1) AS corrections "
            "FROM ioc.econ_indicator_report FINAL")
    assert got["raw"] == [{"reports": 8, "corrections": 1}]
    k = {(r["kpi"], r["area_code"], r["entity"]): r for r in got["kpi"]}
    assert {r["window"] for r in got["kpi"]} == {"ytd"}
    assert {r["ws"] for r in got["kpi"]} == {"2025-12-31 17:00:00.000"}  # 1 Jan, local
    ytd = k[("econ.ytd_value", "513", DISB)]
    assert (ytd["value"], ytd["sample_count"]) == (120.0, 3)
    assert ytd["we"] == "2026-03-31 17:00:00.000"  # end of March, local
    assert k[("econ.progress", "513", DISB)]["value"] == 120.0 / 480.0
    assert k[("econ.elapsed_share", "513", DISB)]["value"] == 3 / 12
    assert k[("econ.yoy_growth", "513", DISB)]["value"] == 120.0 / actual(
        DISB, "513", range(1, 4)) - 1
    assert k[("econ.ytd_value", "", REV)]["value"] == 6300.0
    assert k[("econ.progress", "", REV)]["value"] == 6300.0 / 27000.0
    assert k[("econ.yoy_growth", "", REV)]["value"] == 6300.0 / actual(
        REV, "", range(1, 4)) - 1
    assert k[("econ.ytd_value", "", GRDP)]["value"] == 7.1
    assert ("econ.progress", "", GRDP) not in k  # no GRDP target in this reference
    alerts = {a["rule"]: a for a in got["alerts"]}
    assert len(got["alerts"]) == 2  # the same two episodes, now resolved
    resolved = alerts["econ.behind_plan"]
    assert (resolved["status"], resolved["value"]) == ("resolved", 0.25)
    assert resolved["starts"].startswith("2026-04-03 02:00:00")
    assert resolved["ends"].startswith("2026-04-12 03:00:00")
    late = alerts["econ.report_missing"]
    assert late["status"] == "resolved"
    assert late["starts"].startswith("2026-04-05 17:00:00")
    assert late["ends"].startswith("2026-04-14 01:00:00")
    assert "trễ 9 ngày so với hạn 05/04/2026" in late["summary"]
    # two firing records, two resolutions: nothing published twice
    assert pipeline.high_watermark("ioc.alert.v1") == 4

    proc = subprocess.run([sys.executable, "-c", PANELS, pipeline.clickhouse_url,
                           datetime(2025, 12, 31, 17, tzinfo=UTC).isoformat(),
                           (at(4, 14) + timedelta(days=1)).isoformat()],
                          capture_output=True, text=True, timeout=120, env=pipeline.env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    panels = json.loads(proc.stdout)
    assert panels["problems"] == {}
    assert panels["rows"]["Chỉ tiêu toàn tỉnh lũy kế từ đầu năm"] == 2
    assert panels["rows"]["Địa bàn chậm tiến độ nhất"] == 1
