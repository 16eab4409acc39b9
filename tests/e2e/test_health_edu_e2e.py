"""Health and education through the real broker, worker, sink and chDB.

Crafted events with known answers: a hospital crossing 90 % then 95 % occupancy and coming
back; 45 days of dengue and influenza cases in Hội An with an outbreak in the sixth week; a
low-attendance day in Nam Giang. The exact KPIs are read from ``ioc.kpi FINAL``, every alert
transition from the alert topic itself (the table keeps the latest state of each episode), and
every panel of both wall screens runs on what the pipeline stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pipeline import Pipeline

from ioc.schemas.serde import Serde

PANELS = r"""
import json, sys
from datetime import datetime
from ioc.connectors.clickhouse import connect
from ioc.dashboards.build import render_dict
from ioc.dashboards.testing import problems, run_panel_queries
url, ranges = sys.argv[1], json.loads(sys.argv[2])
client = connect(url)
out = {}
for name, (start, end) in ranges.items():
    board = render_dict(name)
    res = run_panel_queries(client, "ioc", board, datetime.fromisoformat(start),
                            datetime.fromisoformat(end), strict=False)
    out[name] = {"problems": problems(board, res, require_rows=False),
                 "rows": {t: len(r.rows) for t, r in res.items()}}
print(json.dumps(out, ensure_ascii=False))
"""

DAY0 = date(2026, 9, 1)
M = timedelta(minutes=1)


def local(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour - 7)


def d(n: int) -> date:
    return DAY0 + timedelta(days=n)


def day_end(day: date) -> str:
    """The local midnight after ``day``, as ClickHouse prints it in UTC."""
    return f"{day.isoformat()} 17:00:00"


def status(eid: str, ts: datetime, occupied: int, waiting: int) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": ts, "source": "SYT-QNA", "area_code": "502",
            "facility_id": "bvdk-qnam", "beds_total": 600, "beds_occupied": occupied,
            "emergency_waiting": waiting, "icu_total": 30, "icu_occupied": 24}


def case(eid: str, day: int, disease: str = "dengue", hour: float = 9) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": local(d(day), hour), "source": "CDC-QNA",
            "area_code": "503", "case_id": eid, "disease": disease,
            "classification": "confirmed", "onset_date": d(day - 2), "age_group": "age_25_49",
            "hospitalized": True, "facility_id": "ttyt-503"}


def report(eid: str, day: date, school: str, level: str, enrolled: int, present: int
           ) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": local(day, 7.5), "source": "SGDDT-QNA",
            "area_code": "510", "school_id": school, "level": level, "school_day": day,
            "enrolled": enrolled, "present": present}


def alert_log(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every record the worker put on the alert topic (read by assignment up to the end of
    each partition, no consumer group), ordered by rule and event time."""
    serde = Serde()
    topic = pipeline.prefix + "ioc.alert.v1"
    consumer = Consumer({"bootstrap.servers": pipeline.bootstrap, "group.id": "probe",
                         "enable.auto.commit": False})
    out: list[dict[str, Any]] = []
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in parts}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        done = {p for p, end in ends.items() if end == 0}
        while len(done) < len(ends):
            for m in consumer.consume(500, timeout=1.0):
                assert not m.error(), m.error()
                out.append(serde.decode("ioc.alert.v1", m.value()))
                if m.offset() + 1 >= ends[m.partition()]:
                    done.add(m.partition())
    finally:
        consumer.close()
    return sorted(out, key=lambda a: (a["rule"], a["updated_at"]))


def test_health_and_education_kpis_and_alerts(pipeline: Pipeline) -> None:
    t = datetime(2026, 10, 31, 1, 50, tzinfo=UTC)  # 08:50 in Quảng Nam
    statuses = [status("fs1", t, 480, 4), status("fs2", t + 15 * M, 552, 7),
                status("fs3", t + 30 * M, 576, 12), status("fs4", t + 45 * M, 564, 9),
                status("fs5", t + 60 * M, 528, 5), status("fs6", t + 75 * M, 510, 3)]
    pipeline.send("ioc.health.facility_status.v1", statuses)
    # Dengue in Hội An: 2 a week for 5 weeks, then 1, 2, 3 on days 35–37; influenza every
    # morning (a steady 7 a week) closes the days; the same partition carries both.
    cases = [case(f"b{n}", n) for n in range(35) if n % 7 in (1, 4)]
    cases += [case(f"o{n}-{k}", n, hour=8 + k) for n, k_max in ((35, 1), (36, 2), (37, 3))
              for k in range(k_max)]
    cases += [case(f"flu{n}", n, disease="influenza", hour=6) for n in range(45)]
    cases.sort(key=lambda c: c["occurred_at"])
    pipeline.send("ioc.health.disease_case.v1", cases)
    # Nam Giang: Thursday 5 Nov low, Friday back, Saturday's report closes Friday.
    thu, fri, sat = date(2026, 11, 5), date(2026, 11, 6), date(2026, 11, 7)
    reports = [report("a1", thu, "510-th-01", "primary", 400, 300),
               report("a2", thu, "510-thpt-01", "upper_secondary", 600, 485),
               report("b1", fri, "510-th-01", "primary", 400, 390),
               report("b2", fri, "510-thpt-01", "upper_secondary", 600, 570),
               report("c2", sat, "510-thpt-01", "upper_secondary", 600, 560)]
    pipeline.send("ioc.edu.attendance.v1", reports)
    pipeline.run_until_idle()

    got = pipeline.query(
        kpi="SELECT kpi, `window`, toString(window_start) AS ws, area_code, entity, value, "
            "sample_count, is_final FROM ioc.kpi FINAL "
            "WHERE kpi LIKE 'health.%' OR kpi LIKE 'edu.%'",
        alerts="SELECT rule, severity, status, toString(starts_at) AS starts, "
               "toString(ends_at) AS ends, value, summary FROM ioc.alerts FINAL ORDER BY rule",
        raw="SELECT (SELECT count() FROM ioc.health_facility_status FINAL) AS statuses, "
            "(SELECT count() FROM ioc.health_disease_case FINAL) AS cases, "
            "(SELECT count() FROM ioc.edu_attendance FINAL) AS reports, "
            "(SELECT toString(max(onset_date)) FROM ioc.health_disease_case FINAL) AS onset, "
            "(SELECT toString(min(school_day)) FROM ioc.edu_attendance FINAL) AS first_day")
    assert got["raw"] == [{"statuses": 6, "cases": len(cases), "reports": 5,
                           "onset": "2026-10-13", "first_day": "2026-11-05"}]
    k = {(r["kpi"], r["window"], r["ws"][:16], r["entity"]): r for r in got["kpi"]}

    # occupancy gauges: the latest status of each hour; the 08:00 hour is final
    occ8 = k[("health.bed_occupancy", "1h", "2026-10-31 01:00", "bvdk-qnam")]
    assert (occ8["value"], occ8["sample_count"], occ8["is_final"], occ8["area_code"]) == (
        0.8, 600, 1, "502")
    occ9 = k[("health.bed_occupancy", "1h", "2026-10-31 02:00", "bvdk-qnam")]
    assert (occ9["value"], occ9["is_final"]) == (528 / 600, 1)
    assert k[("health.bed_occupancy", "1h", "2026-10-31 03:00", "bvdk-qnam")]["value"] == 0.85
    assert k[("health.emergency_waiting", "1h", "2026-10-31 02:00", "bvdk-qnam")]["value"] == 5
    assert k[("health.icu_occupancy", "1h", "2026-10-31 02:00", "bvdk-qnam")]["value"] == 0.8

    # cases: the day, the rolling week, the incidence per 100,000 (Hội An: 98,600 people)
    day37 = k[("health.cases", "1d", "2026-10-07 17:00", "dengue")]
    assert (day37["value"], day37["area_code"], day37["is_final"]) == (3.0, "503", 1)
    week37 = k[("health.cases_7d", "7d", "2026-10-01 17:00", "dengue")]
    assert (week37["value"], week37["sample_count"], week37["is_final"]) == (7.0, 7, 1)
    assert k[("health.cases_7d", "7d", "2026-10-07 17:00", "dengue")]["value"] == 3.0
    assert k[("health.incidence_7d_per_100k", "7d", "2026-10-01 17:00", "dengue")][
        "value"] == 7 / 98600 * 100_000
    assert k[("health.cases_7d", "7d", "2026-10-01 17:00", "influenza")]["value"] == 7.0

    # attendance: Thursday 785/1000 in Nam Giang, by level too
    assert k[("edu.attendance_rate", "1d", "2026-11-04 17:00", "")]["value"] == 0.785
    assert k[("edu.attendance_rate", "1d", "2026-11-04 17:00", "primary")]["value"] == 0.75
    fri_rate = k[("edu.attendance_rate", "1d", "2026-11-05 17:00", "")]
    assert (fri_rate["value"], fri_rate["sample_count"], fri_rate["is_final"]) == (
        0.96, 1000, 1)
    assert k[("edu.schools_reported", "1d", "2026-11-04 17:00", "")]["value"] == 2.0
    assert k[("edu.pupils_absent", "1d", "2026-11-04 17:00", "")]["value"] == 215.0

    # every transition, as the worker published it
    log = [(a["rule"], a["severity"], a["status"], a["value"]) for a in alert_log(pipeline)]
    assert log == [
        ("edu.attendance_low", "warning", "firing", 0.785),
        ("edu.attendance_low", "warning", "resolved", 0.96),
        ("health.bed_occupancy", "warning", "firing", 0.92),
        ("health.bed_occupancy", "critical", "firing", 0.96),
        ("health.bed_occupancy", "warning", "firing", 0.94),
        ("health.bed_occupancy", "warning", "resolved", 0.88),
        ("health.outbreak", "warning", "firing", 7.0),
        ("health.outbreak", "warning", "firing", 6.0),
        ("health.outbreak", "warning", "firing", 5.0),
        ("health.outbreak", "warning", "resolved", 3.0)]
    final = {a["rule"]: a for a in got["alerts"]}
    assert len(got["alerts"]) == 3
    assert (final["health.bed_occupancy"]["starts"], final["health.bed_occupancy"]["ends"]) == (
        "2026-10-31 02:05:00.000", "2026-10-31 02:50:00.000")
    outbreak = final["health.outbreak"]
    assert (outbreak["status"], outbreak["starts"][:19], outbreak["ends"][:19]) == (
        "resolved", day_end(d(37)), day_end(d(43)))
    assert "sốt xuất huyết tại Thành phố Hội An" in outbreak["summary"]
    low = final["edu.attendance_low"]
    assert (low["starts"][:19], low["ends"][:19]) == (day_end(thu), day_end(fri))
    assert "Huyện Nam Giang" in low["summary"]

    # every panel of both wall screens runs on what the pipeline stored
    ranges = {"health": [(t - timedelta(hours=2)).isoformat(),
                         (t + timedelta(hours=4)).isoformat()],
              "edu": [local(sat, 4).isoformat(), local(sat, 10).isoformat()]}
    proc = subprocess.run([sys.executable, "-c", PANELS, pipeline.clickhouse_url,
                           json.dumps(ranges)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    panels = json.loads(proc.stdout)
    assert panels["health"]["problems"] == {} and panels["edu"]["problems"] == {}
    assert panels["health"]["rows"]["Công suất giường bệnh theo cơ sở"] == 1
    assert panels["health"]["rows"]["Công suất giường bệnh các cơ sở đông nhất"] == 6
    edu_rows = panels["edu"]["rows"]
    assert edu_rows["Tỷ lệ đi học theo địa bàn"] == 1
    assert edu_rows["Tỷ lệ đi học theo ngày (14 ngày)"] == 3  # Thursday, Friday, Saturday
    assert edu_rows["Cảnh báo giáo dục đang bật"] == 0


def test_simulated_half_hour_shows_every_rule_firing_and_resolving(pipeline: Pipeline) -> None:
    """What ``ioc simulate health edu`` + ``ioc run`` give a user: the history and half an hour
    of live events, and every alert rule of both subsystems fired and resolved."""
    sim = pipeline.ioc("simulate", "health", "edu", "--duration", "3", "--speedup", "600")
    assert "(edu, health)" in sim.stdout
    pipeline.run_until_idle()
    got = pipeline.query(
        raw="SELECT (SELECT count() FROM ioc.health_facility_status FINAL) AS statuses, "
            "(SELECT count() FROM ioc.health_disease_case FINAL) AS cases, "
            "(SELECT count() FROM ioc.edu_attendance FINAL) AS reports",
        kpis="SELECT kpi, count() AS n FROM ioc.kpi FINAL GROUP BY kpi ORDER BY kpi",
        alerts="SELECT rule, entity, status FROM ioc.alerts FINAL ORDER BY rule, starts_at")
    raw = got["raw"][0]
    assert raw["statuses"] > 500 and raw["cases"] > 300 and raw["reports"] > 500
    assert int(sim.stdout.split()[0]) == raw["statuses"] + raw["cases"] + raw["reports"]
    assert {r["kpi"] for r in got["kpis"]} == {
        "health.bed_occupancy", "health.emergency_waiting", "health.icu_occupancy",
        "health.cases", "health.cases_7d", "health.incidence_7d_per_100k",
        "edu.attendance_rate", "edu.schools_reported", "edu.pupils_absent"}
    assert [(a["rule"], a["entity"], a["status"]) for a in got["alerts"]
            if a["rule"] != "health.bed_occupancy"] == [
        ("edu.attendance_low", "", "resolved"),
        ("health.outbreak", "hand_foot_mouth", "resolved"),
        ("health.outbreak", "dengue", "firing")]
    assert [a["status"] for a in got["alerts"] if a["rule"] == "health.bed_occupancy"] == [
        "resolved"]
