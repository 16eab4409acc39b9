"""The whole pipeline through the real broker and real chDB: producer → Kafka → Faust worker
→ Kafka → sink → ClickHouse, driven through the platform's own commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import find_free_port_pair
from pipeline import FIGURE_QUERIES, FaultFigures, Pipeline, SteadyProducer, scrape

from ioc.streams.rules import alert_fingerprint

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
FLOW = "ioc.traffic.flow.v1"
INCIDENT = "ioc.traffic.incident.v1"


def flow(eid: str, at: datetime, seg: str, count: int, speed: float, area: str = "502"
         ) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": at, "source": "SGTVT-QNA", "area_code": area,
            "segment_id": seg, "vehicle_count": count, "avg_speed_kmh": speed,
            "occupancy": 0.3}


def crafted_flow() -> list[dict[str, Any]]:
    """TK-HV-01 (free flow 40 km/h): 30, 10, 10, 30 km/h in the four 5m windows from 07:00;
    QL1A-TK-01 (free flow 50): steady 50 km/h. One reading per minute each."""
    events = []
    for m in range(20):
        speed = 10.0 if 5 <= m < 15 else 30.0
        at = T0 + timedelta(minutes=m, seconds=30)
        events.append(flow(f"hv-{m}", at, "TK-HV-01", 10 + m, speed))
        events.append(flow(f"ql-{m}", at, "QL1A-TK-01", 20, 50.0))
    # a later reading on the same segment moves its partition's watermark past 07:20 + 1 min
    events.append(flow("hv-end", T0 + timedelta(minutes=22), "TK-HV-01", 1, 30.0))
    return events


def incidents() -> list[dict[str, Any]]:
    base = {"source": "CA-QNA", "area_code": "502", "segment_id": "TK-HV-01", "lat": None,
            "lon": None, "description": "Va chạm giữa xe tải và xe máy"}
    return [
        dict(base, event_id="inc-1", occurred_at=T0 + timedelta(minutes=5),
             incident_type="accident", severity="critical"),
        dict(base, event_id="inc-2", occurred_at=T0 + timedelta(minutes=9),
             incident_type="breakdown", severity="minor"),
    ]


KPI_SQL = ("SELECT kpi, `window`, toString(window_start) AS ws, entity, value, sample_count, "
           "is_final FROM ioc.kpi FINAL ORDER BY kpi, `window`, entity, window_start")


def kpi_map(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    return {(r["kpi"], r["window"], r["ws"][11:16], r["entity"]): r for r in rows}


def test_exact_kpis_and_congestion_alert_through_kafka(pipeline: Pipeline) -> None:
    pipeline.send(FLOW, crafted_flow())
    pipeline.send(INCIDENT, incidents())
    pipeline.run_until_idle()
    got = pipeline.query(
        kpi=KPI_SQL,
        raw="SELECT count() AS n, uniqExact(event_id) AS ids FROM ioc.traffic_flow FINAL",
        alerts="SELECT alert_id, rule, severity, status, toString(starts_at) AS starts, "
               "toString(ends_at) AS ends, summary, value, threshold FROM ioc.alerts FINAL "
               "ORDER BY rule, starts_at",
    )
    assert got["raw"] == [{"n": 41, "ids": 41}]
    k = kpi_map(got["kpi"])
    assert k[("traffic.vehicle_count", "1m", "07:03", "TK-HV-01")]["value"] == 13.0
    assert k[("traffic.vehicle_count", "1m", "07:03", "TK-HV-01")]["is_final"] == 1
    assert k[("traffic.vehicle_count", "1m", "07:19", "QL1A-TK-01")]["value"] == 20.0
    # 10 + 11 + … + 29 + 1 = 391 vehicles in the open hour, from 21 readings
    hour = k[("traffic.vehicle_count", "1h", "07:00", "TK-HV-01")]
    assert (hour["value"], hour["sample_count"], hour["is_final"]) == (391.0, 21, 0)
    speeds = [k[("traffic.avg_speed_kmh", "5m", f"07:{m:02d}", "TK-HV-01")]["value"]
              for m in (0, 5, 10, 15)]
    assert speeds == [30.0, 10.0, 10.0, 30.0]
    congestion = [k[("traffic.congestion_index", "5m", f"07:{m:02d}", "TK-HV-01")]["value"]
                  for m in (0, 5, 10, 15)]
    assert congestion == [0.25, 0.75, 0.75, 0.25]
    assert k[("traffic.congestion_index", "5m", "07:05", "QL1A-TK-01")]["value"] == 0.0
    assert k[("traffic.incidents", "1h", "07:00", "")]["value"] == 2.0

    alerts = {(a["rule"], a["status"]): a for a in got["alerts"]}
    assert len(got["alerts"]) == 2
    congestion_alert = alerts[("traffic.congestion", "resolved")]
    assert congestion_alert["alert_id"] == alert_fingerprint("traffic.congestion",
                                                             {"segment_id": "TK-HV-01"})
    assert congestion_alert["starts"].startswith("2026-11-02 07:15:00")
    assert congestion_alert["ends"].startswith("2026-11-02 07:20:00")
    incident_alert = alerts[("traffic.critical_incident", "firing")]
    assert incident_alert["severity"] == "critical"
    assert "tai nạn giao thông" in incident_alert["summary"]


def test_every_dashboard_panel_runs_on_pipeline_data(pipeline: Pipeline) -> None:
    # live-looking data: the last 20 minutes, so the dashboards' "now" panels have rows
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    events = []
    for m in range(20):
        at = now - timedelta(minutes=20 - m)
        events.append(flow(f"hv-{m}", at, "TK-HV-01", 12, 8.0 if m > 5 else 30.0))
        events.append(flow(f"db-{m}", at, "QL1A-DB-01", 30, 45.0, area="507"))
    pipeline.send(FLOW, events)
    pipeline.send(INCIDENT, [dict(incidents()[0], occurred_at=now - timedelta(minutes=3))])
    pipeline.run_until_idle()
    script = r"""
import json, sys
from datetime import datetime, timedelta, UTC
from ioc.connectors.clickhouse import connect
from ioc.dashboards.build import DASHBOARDS, render_dict
from ioc.dashboards.testing import problems, run_panel_queries
url = sys.argv[1]
client = connect(url)
now = datetime.now(UTC)
out = {}
for name in DASHBOARDS:
    board = render_dict(name)
    res = run_panel_queries(client, "ioc", board, now - timedelta(hours=6), now)
    out[name] = {"problems": problems(board, res),
                 "rows": {t: len(r.rows) for t, r in res.items()}}
print(json.dumps(out, ensure_ascii=False))
"""
    proc = subprocess.run([sys.executable, "-c", script, pipeline.clickhouse_url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["traffic"]["problems"] == {}
    assert all(n > 0 for n in result["traffic"]["rows"].values()), result


def test_resent_file_is_not_double_counted(pipeline: Pipeline) -> None:
    events = crafted_flow()
    pipeline.send(FLOW, events)
    pipeline.send(FLOW, events[:10])  # a producer retry inside the same run
    pipeline.run_until_idle()
    first = pipeline.query(kpi=KPI_SQL)
    pipeline.send(FLOW, events)  # the agency re-sends the whole file later
    pipeline.run_until_idle()
    got = pipeline.query(
        kpi=KPI_SQL,
        raw="SELECT count() AS n, uniqExact(event_id) AS ids, sum(vehicle_count) AS vehicles "
            "FROM ioc.traffic_flow FINAL",
        physical="SELECT count() AS n FROM ioc.traffic_flow")
    assert got["raw"] == [{"n": 41, "ids": 41,
                           "vehicles": sum(e["vehicle_count"] for e in events)}]
    assert kpi_map(got["kpi"]) == kpi_map(first["kpi"])
    hour = kpi_map(got["kpi"])[("traffic.vehicle_count", "1h", "07:00", "TK-HV-01")]
    assert hour["value"] == 391.0


def test_garbage_goes_to_dead_letters_and_processing_goes_on(pipeline: Pipeline) -> None:
    pipeline.send(FLOW, [flow("ok-1", T0, "TK-HV-01", 5, 30.0)])
    pipeline.send_raw(FLOW, b"\x00\x01garbage that is not avro", key=b"TK-HV-01")
    pipeline.send_raw(FLOW, b"{\"event_id\": \"json-not-avro\"}", key=b"TK-HV-01")
    pipeline.send(FLOW, [flow("ok-2", T0 + timedelta(seconds=20), "TK-HV-01", 7, 30.0)])
    pipeline.run_until_idle()
    got = pipeline.query(
        dlq="SELECT topic, partition, offset, error_type, reason, hex(payload) AS payload, stage "
            "FROM ioc.dead_letters FINAL ORDER BY offset",
        raw="SELECT event_id FROM ioc.traffic_flow FINAL ORDER BY event_id",
        kpi="SELECT value FROM ioc.kpi FINAL WHERE kpi = 'traffic.vehicle_count' "
            "AND `window` = '1m'")
    assert [r["event_id"] for r in got["raw"]] == ["ok-1", "ok-2"]
    assert got["kpi"] == [{"value": 12.0}]
    dlq = got["dlq"]
    assert [d["offset"] for d in dlq] == [1, 2]
    assert {d["topic"] for d in dlq} == {FLOW}
    assert dlq[0]["error_type"] == "schema" and "schema id" in dlq[0]["reason"]
    assert dlq[1]["error_type"] == "decode" and "framing byte 0x7b" in dlq[1]["reason"]
    assert bytes.fromhex(dlq[1]["payload"]) == b"{\"event_id\": \"json-not-avro\"}"
    assert dlq[0]["stage"] == "streams"


def test_worker_killed_mid_stream_loses_and_duplicates_nothing(pipeline: Pipeline) -> None:
    segments = ["TK-HV-01", "QL1A-TK-01", "QL1A-DB-01", "HA-HBT-01", "CT-DNQN-TK", "DT608-HA-01"]
    events = []
    expected_1h: dict[tuple[str, int], int] = {}
    expected_5m_speed: dict[tuple[str, datetime], tuple[float, int]] = {}
    for i in range(6 * 60 * 40):  # 4 hours of readings, one every 1 s per segment
        seg = segments[i % len(segments)]
        at = T0 + timedelta(seconds=(i // len(segments)) + (i % len(segments)) * 0.1)
        count = 5 + (i * 7) % 23
        speed = 20.0 + (i * 13) % 41
        events.append(flow(f"k-{i}", at, seg, count, speed))
        expected_1h[(seg, at.hour)] = expected_1h.get((seg, at.hour), 0) + count
        w = at.replace(minute=at.minute - at.minute % 5, second=0, microsecond=0)
        s, n = expected_5m_speed.get((seg, w), (0.0, 0))
        expected_5m_speed[(seg, w)] = (s + speed * count, n + count)
    pipeline.send(FLOW, events)
    port = find_free_port_pair()
    pipeline.env["IOC_METRICS_PORT"] = str(port)
    run = pipeline.start_run()
    try:
        pipeline.wait_for("ioc.kpi.v1", at_least=200, timeout=180)
        worker_metrics = scrape(port)
        sink_metrics = scrape(port + 1)
    finally:
        pipeline.kill(run)  # SIGKILL the worker and its sink process
    # it really was mid-stream: the worker had not committed everything
    assert pipeline.committed("ioc-streams", FLOW) < len(events)
    pipeline.env["IOC_METRICS_PORT"] = "0"
    # both processes expose Prometheus metrics while they run
    flow_in = 'ioc_events_in_total{component="streams",topic="ioc.traffic.flow.v1"}'
    assert worker_metrics[flow_in] > 0
    assert worker_metrics['ioc_events_out_total{component="streams",topic="ioc.kpi.v1"}'] >= 200
    assert 'ioc_stream_held_events' in worker_metrics
    assert any(k.startswith("ioc_sink_batch_rows_count") for k in sink_metrics)
    assert sink_metrics['ioc_events_out_total{component="sink",topic="traffic_flow"}'] > 0
    pipeline.run_until_idle(idle_s=3.0)
    got = pipeline.query(
        **FIGURE_QUERIES,
        raw="SELECT count() AS n, uniqExact(event_id) AS ids FROM ioc.traffic_flow FINAL",
        hours="SELECT entity, toHour(window_start) AS h, value, is_final FROM ioc.kpi FINAL "
              "WHERE kpi = 'traffic.vehicle_count' AND `window` = '1h'",
        speed="SELECT entity, toString(window_start) AS ws, value FROM ioc.kpi FINAL "
              "WHERE kpi = 'traffic.avg_speed_kmh'",
        dupes="SELECT count() AS n FROM (SELECT kpi, `window`, window_start, entity, count() c "
              "FROM ioc.kpi FINAL GROUP BY ALL HAVING c > 1)")
    fig = FaultFigures.of("sigkill_worker_and_sink", got, (e["event_id"] for e in events),
                          faults=1).report()
    fig.assert_nothing_lost_or_doubled()
    assert got["raw"] == [{"n": len(events), "ids": len(events)}]
    hours = {(r["entity"], r["h"]): r["value"] for r in got["hours"]}
    assert hours == {k: float(v) for k, v in expected_1h.items()}
    speeds = {(r["entity"], r["ws"][:16]): r["value"] for r in got["speed"]}
    assert len(speeds) == len(expected_5m_speed)
    for (seg, w), (weighted, vehicles) in expected_5m_speed.items():
        assert speeds[(seg, w.strftime("%Y-%m-%d %H:%M"))] == pytest.approx(weighted / vehicles)
    assert got["dupes"] == [{"n": 0}]


def test_sink_killed_mid_stream_stops_the_run_and_a_restart_loses_nothing(
        pipeline: Pipeline) -> None:
    """SIGKILL of the sink alone while events stream in: ``ioc run`` stops with an error (its
    supervisor does not hide a dead sink), and the restarted platform stores every event once
    with exact KPIs: the killed sink had committed only what it had stored."""
    run = pipeline.start_run()
    feeder = SteadyProducer(pipeline.bootstrap, pipeline.prefix, rate=200)
    feeder.start()
    try:
        deadline = time.monotonic() + 60
        sink_pid = None
        while sink_pid is None and time.monotonic() < deadline:
            for child in Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split():
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
                    sink_pid = int(child)
            time.sleep(0.5)
        assert sink_pid is not None, "no sink child process found"
        while (stored := pipeline.committed("ioc-sink", FLOW)) < 500:  # mid-stream
            assert time.monotonic() < deadline + 60, "the sink did not get going"
            time.sleep(0.5)
        os.kill(sink_pid, signal.SIGKILL)
        out, _ = run.communicate(timeout=60)
    finally:
        feeder.done.set()
        if run.poll() is None:
            pipeline.kill(run)
    feeder.join(60)
    assert run.returncode == 1
    assert "ClickHouse sink process exited" in out
    pipeline.run_until_idle(idle_s=3.0)  # the restart
    got = pipeline.query(**FIGURE_QUERIES)
    fig = FaultFigures.of("sigkill_sink", got, feeder.acked, faults=1,
                          sent=len(feeder.sent), stored_at_kill=stored).report()
    assert {r["event_id"] for r in got["fig_ids"]} <= set(feeder.sent)
    fig.assert_nothing_lost_or_doubled()
