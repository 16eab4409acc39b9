"""Citizen feedback through the real commands: `ioc produce` (with reporters' names and phone
numbers in the file), the broker, the worker, the sink and chDB — exact KPIs, the overdue alert
firing → critical → resolved, the surge firing and resolving, no personal data anywhere, and
every panel of the wall screen on the stored data."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from pipeline import Pipeline

from ioc.connectors.privacy import pseudonymize
from ioc.schemas.serde import Serde

TOPIC = "ioc.feedback.report.v1"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 08:00 in Quảng Nam
H, D, M, S = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1), timedelta(seconds=1)
SURGE = T0 + 6 * D + 2 * H  # Sunday 8 Nov, 10:00 local
LAST = T0 + 6 * D + 4 * H  # the last step in the file
PHONE, NAME, OTHER_NAME = "0905 111 222", "Nguyễn Văn Phúc", "Trần Thị Lan"

QUERIES = {
    "raw": "SELECT * FROM ioc.feedback_report FINAL ORDER BY occurred_at",
    "kpi": "SELECT kpi, `window`, toString(window_start) AS ws, toString(window_end) AS we, "
           "area_code, entity, value, sample_count FROM ioc.kpi FINAL "
           "WHERE kpi LIKE 'feedback.%'",
    "alerts": "SELECT rule, entity, severity, status, toString(starts_at) AS starts, "
              "toString(ends_at) AS ends, summary FROM ioc.alerts FINAL "
              "WHERE domain = 'feedback'",
    "other": "SELECT (SELECT count() FROM ioc.dead_letters FINAL) AS dead, "
             "(SELECT groupArray(summary) FROM ioc.alerts FINAL) AS summaries",
}

# The queries above and every panel of the wall screen, in one process (one embedded engine).
READ = r"""
import json, sys
from datetime import date, datetime
from ioc.connectors.clickhouse import connect
from ioc.dashboards.build import render_dict
from ioc.dashboards.testing import problems, run_panel_queries
url, start, end, queries = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
client = connect(url)
def conv(v):
    return v.isoformat() if isinstance(v, (date, datetime)) else v
out = {}
for name, sql in queries.items():
    r = client.query(sql)
    out[name] = [{c: conv(v) for c, v in zip(r.column_names, row)} for row in r.result_rows]
board = render_dict("feedback")
res = run_panel_queries(client, "ioc", board, datetime.fromisoformat(start),
                        datetime.fromisoformat(end), strict=False)
out["panels"] = {"problems": problems(board, res, require_rows=False),
                 "rows": {t: len(r.rows) for t, r in res.items()}}
print(json.dumps(out, ensure_ascii=False))
"""


def step(rid: str, status: str, at: datetime, category: str, *, area: str = "503",
         agency: str = "", due: datetime | None = None, rating: int | None = None,
         **extra: Any) -> dict[str, Any]:
    line = {"event_id": f"{rid}-{status}", "occurred_at": at.isoformat(), "source": "TTGSDH",
            "area_code": area, "report_id": rid, "status": status, "channel": "hotline",
            "category": category, "assigned_agency": agency,
            "due_at": due.isoformat() if due else None, "rating": rating}
    line.update(extra)
    return line


def report_lines() -> list[dict[str, Any]]:
    r1_due, r2_due, r3_due = T0 + H + 2 * D, T0 + 2 * H + 7 * D, T0 + 3 * H + 10 * D
    r5_due, r7_due = T0 + 2 * H + 15 * D, T0 + 2 * H + D
    lines = [
        # R1: late; warning at its due time, critical 3 days later, resolved a day after that
        step("R1", "submitted", T0, "waste", reporter_name=NAME, reporter_phone=PHONE,
             description="Rác tồn đọng 5 ngày, gọi tôi 0905111222"),
        step("R1", "assigned", T0 + H, "waste", agency="URENCO-QNA", due=r1_due),
        step("R1", "resolved", r1_due + 4 * D, "waste", agency="URENCO-QNA", rating=2),
        # R2: the same person (another way of writing the number), resolved on time
        step("R2", "submitted", T0 + 10 * M, "waste", reporter_phone="+84 905 111 222"),
        step("R2", "assigned", T0 + 2 * H, "waste", agency="URENCO-QNA", due=r2_due),
        step("R2", "resolved", T0 + D, "waste", agency="URENCO-QNA", rating=5),
        # R3: name only, on time
        step("R3", "submitted", T0 + 20 * M, "road_damage", reporter_name=OTHER_NAME),
        step("R3", "assigned", T0 + 3 * H, "road_damage", agency="SGTVT-QNA", due=r3_due),
        step("R3", "resolved", T0 + 2 * D, "road_damage", agency="SGTVT-QNA", rating=4),
        # R4 rejected (not in the rates); R5 open; R6 never assigned; R7 overdue, still open
        step("R4", "submitted", T0 + 30 * M, "noise"),
        step("R4", "rejected", T0 + H, "noise"),
        step("R5", "submitted", T0 + 40 * M, "land"),
        step("R5", "assigned", T0 + 2 * H, "land", agency="STNMT-QNA", due=r5_due),
        step("R6", "submitted", T0 + 50 * M, "public_order"),
        step("R7", "submitted", T0 + 55 * M, "environment"),
        step("R7", "assigned", T0 + 2 * H, "environment", agency="STNMT-QNA", due=r7_due),
        step("R5", "in_progress", LAST, "land", agency="STNMT-QNA"),
    ]
    # Six flooding reports in Duy Xuyên (508) within six minutes: a surge.
    lines += [step(f"F{k}", "submitted", SURGE + k * M + 30 * S, "flooding", area="508")
              for k in range(1, 7)]
    return sorted(lines, key=lambda x: datetime.fromisoformat(x["occurred_at"]))


def alert_log(p: Pipeline) -> list[dict[str, Any]]:
    """Every record on the alert topic, in order per alert."""
    name = p.prefix + "ioc.alert.v1"
    consumer = Consumer({"bootstrap.servers": p.bootstrap, "group.id": "probe-alerts",
                         "enable.auto.commit": False})
    serde = Serde()
    out: list[dict[str, Any]] = []
    try:
        parts = consumer.list_topics(name, timeout=10).topics[name].partitions
        for part in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(name, part), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(name, part, low)])
            got = 0
            while got < high - low:
                for msg in consumer.consume(500, timeout=5):
                    if msg.error() is None:
                        out.append(serde.decode("ioc.alert.v1", msg.value()))
                        got += 1
    finally:
        consumer.close()
    return out


def test_feedback_kpis_alerts_and_no_personal_data(pipeline: Pipeline, tmp_path: Path) -> None:
    source = tmp_path / "reports.jsonl"
    source.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n"
                              for x in report_lines()), encoding="utf-8")
    sent = pipeline.ioc("produce", TOPIC, "--file", str(source))
    assert "23 events sent" in sent.stdout, sent.stdout + sent.stderr
    pipeline.run_until_idle(3.0)

    proc = subprocess.run([sys.executable, "-c", READ, pipeline.clickhouse_url,
                           (LAST - 6 * H).isoformat(), (LAST + 10 * M).isoformat(),
                           json.dumps(QUERIES)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    panels = got.pop("panels")

    # --- personal data: never stored, one pseudonym per person -------------------------------
    key = (pipeline.data_dir / "pseudonym.key")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = key.read_text().strip().encode()
    stored = json.dumps(got, ensure_ascii=False)
    for clear in ("0905", "905111222", "111 222", "111222", NAME, "Phúc", OTHER_NAME):
        assert clear not in stored, clear
    assert len(got["raw"]) == 23 and got["other"][0]["dead"] == 0
    pseudonym = {r["report_id"]: r["reporter_pseudonym"] for r in got["raw"]
                 if r["status"] == "submitted"}
    assert pseudonym["R1"] == pseudonym["R2"] == pseudonymize(PHONE, secret)
    assert pseudonym["R3"] == pseudonymize(OTHER_NAME, secret) != pseudonym["R1"]
    assert pseudonym["R4"] == ""
    r1 = next(r for r in got["raw"] if r["event_id"] == "R1-submitted")
    assert r1["description"] == "Rác tồn đọng 5 ngày, gọi tôi [số đã ẩn]"

    # --- KPIs ----------------------------------------------------------------------------------
    k = {(r["kpi"], r["window"], r["ws"][:16], r["area_code"], r["entity"]):
         (r["value"], r["sample_count"]) for r in got["kpi"]}
    new = "feedback.new_reports"
    assert k[(new, "1h", "2026-11-02 01:00", "503", "waste")] == (2.0, 2)
    assert k[(new, "1h", "2026-11-02 01:00", "503", "road_damage")] == (1.0, 1)
    assert k[(new, "1d", "2026-11-01 17:00", "503", "waste")] == (2.0, 2)
    assert k[(new, "1h", "2026-11-08 03:00", "508", "flooding")] == (6.0, 6)
    assert k[(new, "1d", "2026-11-07 17:00", "508", "flooding")] == (6.0, 6)
    # the 30-day window ending at midnight after the last step (8 Nov, local)
    start30 = "2026-10-09 17:00"
    assert k[("feedback.on_time_rate", "30d", start30, "", "URENCO-QNA")] == (0.5, 2)
    hours, n = k[("feedback.resolution_hours", "30d", start30, "", "URENCO-QNA")]
    assert (hours, n) == (pytest.approx((145 + 23 + 50 / 60) / 2), 2)
    assert k[("feedback.satisfaction", "30d", start30, "", "URENCO-QNA")] == (3.5, 2)
    assert k[("feedback.on_time_rate", "30d", start30, "", "SGTVT-QNA")] == (1.0, 1)
    assert k[("feedback.resolution_hours", "30d", start30, "", "SGTVT-QNA")] == (
        pytest.approx(47 + 40 / 60), 1)
    backlog = [r for r in got["kpi"] if r["kpi"] == "feedback.backlog"]
    last = max(r["we"] for r in backlog)
    assert last >= "2026-11-08 05:00"
    now = {r["entity"]: r["value"] for r in backlog if r["we"] == last}
    assert {e: v for e, v in now.items() if v} == {"STNMT-QNA": 2.0, "chua_phan_cong": 7.0}
    assert now["URENCO-QNA"] == 0.0 and now["CA-QNA"] == 0.0

    # --- alerts: the latest state of each episode ----------------------------------------------
    a = {(r["rule"], r["entity"]): r for r in got["alerts"]}
    r1_alert = a[("feedback.overdue", "R1")]
    assert (r1_alert["status"], r1_alert["severity"]) == ("resolved", "critical")
    assert r1_alert["starts"].startswith("2026-11-04 02:00:00")  # R1's due time
    assert r1_alert["ends"].startswith("2026-11-08 02:00:00")
    r7_alert = a[("feedback.overdue", "R7")]
    assert (r7_alert["status"], r7_alert["severity"]) == ("firing", "critical")
    assert "Sở Tài nguyên và Môi trường" in r7_alert["summary"]
    surge = a[("feedback.surge", "flooding")]
    assert surge["status"] == "resolved"
    assert surge["starts"].startswith("2026-11-08 03:06:00")  # the minute after the 5th
    assert surge["ends"].startswith("2026-11-08 04:03:00")  # the 2nd left the hour at 04:02:30
    assert "Huyện Duy Xuyên" in surge["summary"]
    assert {r["entity"] for r in got["alerts"]} == {"R1", "R7", "flooding"}

    # --- and every transition on the alert topic ---------------------------------------------
    log = alert_log(pipeline)
    r1_steps = [(x["status"], x["severity"], x["updated_at"]) for x in log
                if x["entity"] == "R1"]
    due = T0 + H + 2 * D
    assert r1_steps == [("firing", "warning", due), ("firing", "critical", due + 3 * D),
                        ("resolved", "critical", due + 4 * D)]
    surge_steps = [(x["status"], x["value"], x["updated_at"]) for x in log
                   if x["rule"] == "feedback.surge"]
    assert surge_steps == [("firing", 5.0, SURGE + 6 * M), ("firing", 6.0, SURGE + 7 * M),
                           ("resolved", 4.0, SURGE + H + 3 * M)]

    # --- every panel of the wall screen runs on what the pipeline stored -----------------------
    assert panels["problems"] == {}
    assert panels["rows"]["Phản ánh quá hạn"] == 1  # R7
    assert panels["rows"]["Tồn đọng theo đơn vị"] >= 9
