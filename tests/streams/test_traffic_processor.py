"""Exact KPI values and alerts from the pure traffic processor (no Kafka)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.infra.reference import Area, RoadSegment, load_areas
from ioc.streams.engine import Outcome
from ioc.streams.processor import Step, TrafficProcessor
from ioc.streams.rules import alert_fingerprint
from ioc.streams.traffic import FLOW_TOPIC, INCIDENT_TOPIC

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
FIXED_NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SEGMENTS = {
    "S1": RoadSegment("S1", "Đường Hùng Vương", "502", 40.0, "urban", 3.0),
    "S2": RoadSegment("S2", "Quốc lộ 1A", "507", 60.0, "national", 6.0),
}
AREAS: dict[str, Area] = load_areas()
TP0 = (FLOW_TOPIC, 0)


def flow(eid: str, minute: float, seg: str = "S1", count: int = 10, speed: float = 30.0,
         area: str = "502") -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": T0 + timedelta(minutes=minute), "source": "T",
            "area_code": area, "segment_id": seg, "vehicle_count": count,
            "avg_speed_kmh": speed, "occupancy": None}


def incident(eid: str, minute: float, severity: str = "minor", area: str = "502"
             ) -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": T0 + timedelta(minutes=minute), "source": "CA",
            "area_code": area, "segment_id": "S1", "incident_type": "accident",
            "severity": severity, "description": "Va chạm giữa xe tải và xe máy",
            "lat": None, "lon": None}


def make(lateness_s: float = 60) -> TrafficProcessor:
    return TrafficProcessor(SEGMENTS, AREAS, timedelta(seconds=lateness_s), lambda: FIXED_NOW)


def feed(proc: TrafficProcessor, events: Iterable[dict[str, Any]], topic: str = FLOW_TOPIC,
         start_offset: int = 0, partition: int = 0) -> list[Step]:
    steps = []
    for i, ev in enumerate(events):
        steps.append(proc.handle(topic, ev, (topic, partition), start_offset + i))
        steps.append(proc.tick())
    return steps


def kpis(steps: Iterable[Step], final_only: bool = True) -> dict[tuple[str, str, datetime, str],
                                                                 tuple[float, int]]:
    out = {}
    for step in steps:
        for r in step.kpis:
            if final_only and not r["is_final"]:
                continue
            out[(r["kpi"], r["window"], r["window_start"], r["entity"])] = (r["value"],
                                                                          r["sample_count"])
    return out


def alerts(steps: Iterable[Step]) -> list[dict[str, Any]]:
    return [a for s in steps for a in s.alerts]


def test_vehicle_count_speed_and_congestion_exact() -> None:
    proc = make()
    steps = feed(proc, [
        flow("a", 0.5, count=10, speed=30.0),
        flow("b", 1.5, count=30, speed=10.0),
        flow("c", 2.0, count=0, speed=50.0),      # no vehicles: counts as a reading only
        flow("d", 3.0, seg="S2", count=5, speed=60.0, area="507"),
        flow("z", 8.5, seg="S2", count=1, speed=60.0, area="507"),  # moves the watermark
    ])
    got = kpis(steps)
    assert got[("traffic.vehicle_count", "1m", T0, "S1")] == (10.0, 1)
    assert got[("traffic.vehicle_count", "1m", T0 + timedelta(minutes=1), "S1")] == (30.0, 1)
    assert got[("traffic.vehicle_count", "1m", T0 + timedelta(minutes=2), "S1")] == (0.0, 1)
    # vehicle-weighted: (10*30 + 30*10 + 0*50) / 40 = 15 km/h
    assert got[("traffic.avg_speed_kmh", "5m", T0, "S1")] == (15.0, 3)
    assert got[("traffic.congestion_index", "5m", T0, "S1")] == (pytest.approx(1 - 15 / 40), 3)
    # free-flow on S2: congestion index 0 (never negative)
    assert got[("traffic.congestion_index", "5m", T0, "S2")] == (0.0, 1)
    # the 1h window is still open: not final yet, but flushed provisionally with exact values
    prov = {(r["kpi"], r["window"], r["entity"]): r for r in proc.flush()}
    assert prov[("traffic.vehicle_count", "1h", "S1")]["value"] == 40.0
    assert prov[("traffic.vehicle_count", "1h", "S1")]["is_final"] is False
    assert prov[("traffic.vehicle_count", "1h", "S1")]["area_code"] == "502"


def test_all_readings_without_vehicles_use_plain_mean_speed() -> None:
    proc = make()
    steps = feed(proc, [flow("a", 0, count=0, speed=20.0), flow("b", 1, count=0, speed=40.0),
                        flow("z", 10, seg="S2")])
    assert kpis(steps)[("traffic.avg_speed_kmh", "5m", T0, "S1")] == (30.0, 2)


def test_resent_event_is_not_counted_twice() -> None:
    proc = make()
    first = proc.handle(FLOW_TOPIC, flow("a", 0.5, count=10), TP0, 0)
    again = proc.handle(FLOW_TOPIC, flow("a", 0.5, count=10), TP0, 1)
    assert first.outcome is Outcome.COUNTED
    assert again.outcome is Outcome.DUPLICATE
    assert again.released == [(TP0, 1)]  # nothing holds a duplicate
    steps = feed(proc, [flow("z", 70, seg="S2")], start_offset=2)
    assert kpis(steps)[("traffic.vehicle_count", "1h", T0, "S1")] == (10.0, 1)


def test_late_event_is_dropped_not_reopening_a_closed_window() -> None:
    proc = make(lateness_s=60)
    feed(proc, [flow("a", 0.5), flow("b", 10.0)])
    step = proc.handle(FLOW_TOPIC, flow("late", 0.7, count=99), TP0, 2)
    # the 1m and 5m windows of 07:00 closed; the 1h window is still open, so it counts there
    assert step.outcome is Outcome.COUNTED
    assert all(r["window"] != "1m" for r in proc.flush() if r["window_start"] == T0
               and r["entity"] == "S1" and r["value"] == 99)
    totally_late = proc.handle(FLOW_TOPIC, flow("old", -120.0), TP0, 3)
    assert totally_late.outcome is Outcome.LATE
    assert totally_late.released == [(TP0, 3)]


def test_events_are_held_until_their_windows_close() -> None:
    proc = make(lateness_s=0)
    released: list[tuple[tuple[str, int], int]] = []
    for step in feed(proc, [flow("a", 0.5), flow("b", 1.5), flow("c", 30.0)]):
        released.extend(step.released)
    # "a" and "b" are in the open 07:00–08:00 window: nothing may be committed yet
    assert released == []
    assert proc.engine.held_events == 3
    for step in feed(proc, [flow("d", 61.0), flow("e", 75.0)], start_offset=3):
        released.extend(step.released)
    # the 1h window closed at 08:00 and the 5m windows are more than two windows old
    assert sorted(off for _tp, off in released) == [0, 1, 2]
    assert proc.engine.held_events == 2


def test_closed_five_minute_window_is_held_until_its_successor_closes() -> None:
    from ioc.streams.engine import KpiEngine
    from ioc.streams.traffic import traffic_families

    speed_only = [f for f in traffic_families(SEGMENTS) if f.name == "traffic.speed.5m"]
    engine = KpiEngine(speed_only, timedelta(0), lambda: FIXED_NOW)
    engine.process(FLOW_TOPIC, flow("a", 0.5), TP0, 0)
    engine.process(FLOW_TOPIC, flow("b", 5.5), TP0, 1)
    first = engine.advance()
    assert [w.start for w in first.closed] == [T0] and first.released == []
    engine.process(FLOW_TOPIC, flow("c", 10.5), TP0, 2)
    second = engine.advance()
    # 07:05 closed, so its predecessor 07:00 (and only it) may be committed now
    assert second.released == [(TP0, 0)]


def test_congestion_alert_fires_after_two_windows_and_resolves() -> None:
    proc = make(lateness_s=0)
    events = []
    n = 0
    # windows 07:00 (0.5 → below), 07:05 (0.75), 07:10 (0.75) → warning,
    # 07:15 (0.875) and 07:20 (0.875) → critical, 07:25 (0.25) → resolved
    for window, speed in enumerate([20.0, 10.0, 10.0, 5.0, 5.0, 30.0]):
        for minute in (0.5, 2.5):
            n += 1
            events.append(flow(f"e{n}", window * 5 + minute, count=10, speed=speed))
    events.append(flow("end", 31.0, count=1, speed=30.0))
    got = alerts(feed(proc, events))
    assert [(a["status"], a["severity"]) for a in got] == [
        ("firing", "warning"), ("firing", "critical"), ("resolved", "critical")]
    warn, crit, resolved = got
    assert warn["alert_id"] == alert_fingerprint("traffic.congestion", {"segment_id": "S1"})
    assert warn["starts_at"] == T0 + timedelta(minutes=15)  # end of the second window
    assert crit["starts_at"] == warn["starts_at"]  # same episode, escalated
    assert crit["updated_at"] == T0 + timedelta(minutes=25)
    assert resolved["ends_at"] == T0 + timedelta(minutes=30)
    assert warn["value"] == 0.75 and warn["threshold"] == 0.6
    assert "Đường Hùng Vương" in warn["summary"] and "ùn tắc" in warn["summary"]
    assert warn["domain"] == "traffic" and warn["area_code"] == "502"


def test_a_missing_window_breaks_the_sequence() -> None:
    proc = make(lateness_s=0)
    events = [flow("a", 5.5, speed=10.0), flow("b", 15.5, speed=10.0),  # 07:10 window missing
              flow("z", 40.0, speed=10.0)]
    assert alerts(feed(proc, events)) == []


def test_restart_replay_does_not_duplicate_alerts() -> None:
    events = [flow(f"e{i}", i * 2.5 + 0.5, speed=10.0) for i in range(8)]  # 07:00–07:20
    events.append(flow("end", 26.0, speed=10.0))
    first = make(lateness_s=0)
    got = alerts(feed(first, events))
    assert [a["status"] for a in got] == ["firing"]
    # a restarted worker replays from its oldest held event with the alert log restored
    again = make(lateness_s=0)
    again.restore_alerts(got)
    held_from = min(off for (_tp, off) in first.engine._refs)
    replayed = alerts(feed(again, events[held_from:], start_offset=held_from))
    assert replayed == []


def test_critical_incident_alerts_at_once_and_counts() -> None:
    proc = make()
    steps = feed(proc, [incident("i1", 1.0, "critical"), incident("i2", 2.0),
                        incident("i1", 1.0, "critical")], topic=INCIDENT_TOPIC)
    got = alerts(steps)
    assert len(got) == 1
    assert got[0]["rule"] == "traffic.critical_incident"
    assert got[0]["severity"] == "critical" and got[0]["status"] == "firing"
    assert "tai nạn giao thông" in got[0]["summary"]
    assert "Đường Hùng Vương" in got[0]["summary"]
    later = feed(proc, [incident("i3", 125.0)], topic=INCIDENT_TOPIC, start_offset=3)
    assert kpis(later)[("traffic.incidents", "1h", T0, "")] == (2.0, 2)
    resolved = alerts(later)
    assert [(a["status"], a["ends_at"]) for a in resolved] == [
        ("resolved", T0 + timedelta(minutes=61))]


def test_unknown_segment_counts_vehicles_but_has_no_congestion() -> None:
    proc = make()
    steps = feed(proc, [flow("a", 0.5, seg="NEW-01", count=7, speed=33.0, area="519"),
                        flow("z", 20.0, seg="S2")])
    got = kpis(steps)
    assert got[("traffic.vehicle_count", "1m", T0, "NEW-01")] == (7.0, 1)
    assert got[("traffic.avg_speed_kmh", "5m", T0, "NEW-01")] == (33.0, 1)
    assert ("traffic.congestion_index", "5m", T0, "NEW-01") not in got


def test_revoked_partitions_forget_their_windows_and_holds() -> None:
    proc = make()
    feed(proc, [flow("a", 0.5)], partition=0)
    feed(proc, [flow("b", 0.5, seg="S2", area="507")], partition=1, start_offset=0)
    assert proc.engine.held_events == 2
    proc.engine.drop_partitions({(FLOW_TOPIC, 0)})
    assert proc.engine.held_events == 1
    assert proc.engine.open_windows == 3
    assert {r["entity"] for r in proc.flush()} == {"S2"}
    assert (FLOW_TOPIC, 0) not in proc.engine.watermarks
