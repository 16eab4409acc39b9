"""Scale-out: several stream workers in one consumer group, one joining and one dying
mid-stream, and the KPIs stay exact (issue 7). Real broker, real `ioc run` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pipeline import FIGURE_QUERIES, IOC, FaultFigures, Pipeline

T0 = datetime(2026, 11, 3, 0, 0, tzinfo=UTC)
FLOW = "ioc.traffic.flow.v1"
SEGMENTS = ["QL1A-DB-01", "QL1A-DX-01", "QL1A-QS-01", "QL1A-TB-01", "QL1A-TK-01", "QL1A-NT-01",
            "CT-DNQN-DB", "CT-DNQN-TK", "CT-DNQN-NT", "TK-HV-01", "HA-HBT-01", "DT608-HA-01"]


def worker(p: Pipeline, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([IOC, "run", *args], env=p.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(60)


def test_workers_joining_and_dying_mid_stream_keep_kpis_exact(kafka_broker: str,
                                                               tmp_path: Path) -> None:
    p = Pipeline(kafka_broker, tmp_path)
    p.env["IOC_TOPIC_PARTITIONS"] = "6"  # room for three workers
    p.setup()
    events: list[dict[str, Any]] = []
    expected_1h: dict[tuple[str, int], int] = {}
    expected_5m: dict[tuple[str, str], tuple[float, int, int]] = {}
    for i in range(len(SEGMENTS) * 30 * 30):  # 30 simulated minutes, one reading per 2 s
        seg = SEGMENTS[i % len(SEGMENTS)]
        at = T0 + timedelta(seconds=2 * (i // len(SEGMENTS)), milliseconds=i % len(SEGMENTS))
        count, speed = 3 + (i * 7) % 19, 15.0 + (i * 13) % 47
        events.append({"event_id": f"s-{i}", "occurred_at": at, "source": "SGTVT-QNA",
                       "area_code": "502", "segment_id": seg, "vehicle_count": count,
                       "avg_speed_kmh": speed, "occupancy": 0.3})
        expected_1h[(seg, at.hour)] = expected_1h.get((seg, at.hour), 0) + count
        w = at.replace(minute=at.minute - at.minute % 5, second=0, microsecond=0)
        s, n, k = expected_5m.get((seg, f"{w:%Y-%m-%d %H:%M}"), (0.0, 0, 0))
        expected_5m[(seg, f"{w:%Y-%m-%d %H:%M}")] = (s + speed * count, n + count, k + 1)
    # A final reading an hour later moves every partition's watermark past all windows.
    last = T0 + timedelta(hours=2)
    for k, seg in enumerate(SEGMENTS):
        events.append({"event_id": f"end-{k}", "occurred_at": last, "source": "SGTVT-QNA",
                       "area_code": "502", "segment_id": seg, "vehicle_count": 0,
                       "avg_speed_kmh": 50.0, "occupancy": 0.0})
        expected_1h[(seg, last.hour)] = 0
    half = len(events) // 2
    p.send(FLOW, events[:half])
    a = worker(p)  # worker + sink
    b = worker(p, "--worker-only")
    c: subprocess.Popen[str] | None = None
    try:
        p.wait_for("ioc.kpi.v1", at_least=50, timeout=180)
        c = worker(p, "--worker-only")  # a third worker joins: partitions move
        p.send(FLOW, events[half:])
        time.sleep(8)
        stop(b, signal.SIGKILL)  # one dies without leaving the group: its partitions move too
        deadline = time.monotonic() + 240
        while p.committed("ioc-streams", FLOW) < len(events) - 6 * 100:
            assert time.monotonic() < deadline, "the remaining workers did not catch up"
            assert a.poll() is None and c.poll() is None
            time.sleep(1)
    finally:
        for proc in (c, b, a):
            if proc is not None:
                stop(proc)
    # Whatever the group left open (windows still held at the end) is finished by one run.
    p.run_until_idle(idle_s=3.0)
    got = p.query(
        **FIGURE_QUERIES,
        raw="SELECT count() AS n, uniqExact(event_id) AS ids FROM ioc.traffic_flow FINAL",
        hours="SELECT entity, toHour(window_start) AS h, value FROM ioc.kpi FINAL "
              "WHERE kpi = 'traffic.vehicle_count' AND `window` = '1h'",
        speed="SELECT entity, toString(window_start) AS ws, value, sample_count FROM ioc.kpi "
              "FINAL WHERE kpi = 'traffic.avg_speed_kmh'",
        dupes="SELECT count() AS n FROM (SELECT kpi, `window`, window_start, entity, count() c "
              "FROM ioc.kpi FINAL GROUP BY ALL HAVING c > 1)")
    p.close()
    # faults: a third worker joins mid-stream, one is SIGKILLed (both move partitions)
    fig = FaultFigures.of("scale_out_join_and_kill", got, (e["event_id"] for e in events),
                          faults=2, workers=3).report()
    fig.assert_nothing_lost_or_doubled()
    assert got["raw"] == [{"n": len(events), "ids": len(events)}]
    assert {(r["entity"], r["h"]): r["value"] for r in got["hours"]} == {
        k: float(v) for k, v in expected_1h.items()}
    speeds = {(r["entity"], r["ws"][:16]): (r["value"], r["sample_count"])
              for r in got["speed"] if r["ws"][:13] != f"{last:%Y-%m-%d %H}"}
    assert len(speeds) == len(expected_5m)
    for key, (weighted, vehicles, readings) in expected_5m.items():
        value, samples = speeds[key]
        assert samples == readings, key  # sample_count of the speed KPI counts readings
        assert value == pytest.approx(weighted / vehicles), key
    assert got["dupes"] == [{"n": 0}]
