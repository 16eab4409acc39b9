"""The traffic simulator: deterministic, schema-valid, and realistic enough for the demo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from statistics import mean
from zoneinfo import ZoneInfo

import fastavro
import pytest
from fastavro.validation import validate

from ioc.connectors.simulator import (
    FLOW_TOPIC,
    INCIDENT_TOPIC,
    SAMPLE_PATH,
    SimEvent,
    TrafficSimulator,
    _write_sample,
    write_jsonl,
)
from ioc.infra.reference import load_segments

ROOT = Path(__file__).resolve().parents[2]
AVRO_DIR = ROOT / "schemas" / "avro"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
# Tuesday 10 March 2026, midnight local time.
TUESDAY = datetime(2026, 3, 10, tzinfo=VN)


@pytest.fixture(scope="module")
def segments():
    return load_segments()


@pytest.fixture(scope="module")
def schemas():
    def parse(topic: str):
        with (AVRO_DIR / f"{topic}.avsc").open(encoding="utf-8") as fh:
            return fastavro.parse_schema(json.load(fh))

    return {FLOW_TOPIC: parse(FLOW_TOPIC), INCIDENT_TOPIC: parse(INCIDENT_TOPIC)}


def minutes(sim: TrafficSimulator, start: datetime, n: int) -> Iterator[SimEvent]:
    for m in range(1, n + 1):
        yield from sim.events_at(start + timedelta(minutes=m))


def flows(events) -> list[SimEvent]:
    return [e for e in events if e.topic == FLOW_TOPIC]


def ci(event: SimEvent, segments) -> float:
    v = event.value
    return 1 - v["avg_speed_kmh"] / segments[v["segment_id"]].free_flow_kmh


def test_same_seed_gives_identical_events_and_another_seed_does_not(segments):
    start = TUESDAY.replace(hour=17)

    def run(seed: int) -> list[SimEvent]:
        sim = TrafficSimulator(segments, seed=seed, incident_rate_per_hour=20)
        return list(minutes(sim, start, 30)) + list(
            TrafficSimulator(segments, seed=seed).stream(start, rate=5, duration_s=60)
        )

    first, second = run(7), run(7)
    assert first == second
    assert any(e.topic == INCIDENT_TOPIC for e in first)
    other = run(8)
    assert [e.value.get("vehicle_count") for e in other] != [
        e.value.get("vehicle_count") for e in first
    ]


def test_a_reading_depends_only_on_seed_segment_and_time(segments):
    """A replay that starts elsewhere still reproduces the same readings (and ids)."""
    t = TUESDAY.replace(hour=9)
    a = TrafficSimulator(segments, seed=3, congestion_episode_rate_per_hour=0)
    b = TrafficSimulator(segments, seed=3, congestion_episode_rate_per_hour=0)
    b.events_at(t - timedelta(hours=5))
    assert a.events_at(t) == b.events_at(t)


def test_every_event_validates_against_its_avro_schema(segments, schemas):
    sim = TrafficSimulator(
        segments, seed=11, incident_rate_per_hour=60, congestion_episode_rate_per_hour=4
    )
    events = list(minutes(sim, TUESDAY.replace(hour=6), 120))
    events += list(sim.stream(TUESDAY.replace(hour=12), rate=20, duration_s=30))
    topics = {e.topic for e in events}
    assert topics == {FLOW_TOPIC, INCIDENT_TOPIC}
    for event in events:
        assert validate(event.value, schemas[event.topic], raise_errors=True)
        assert list(event.value) == [f["name"] for f in schemas[event.topic]["fields"]]


def test_flow_is_keyed_by_segment_and_incidents_by_area(segments):
    sim = TrafficSimulator(segments, seed=5, incident_rate_per_hour=60)
    for event in minutes(sim, TUESDAY.replace(hour=10), 60):
        v = event.value
        assert event.key == (v["segment_id"] if event.topic == FLOW_TOPIC else v["area_code"])
        seg = segments[v["segment_id"]]
        assert v["area_code"] == seg.area_code
        assert v["source"] == "SGTVT-QNA"
        if event.topic == FLOW_TOPIC:
            assert v["vehicle_count"] >= 0 and v["avg_speed_kmh"] > 0
            if seg.road_class == "expressway":
                assert v["occupancy"] is None
            else:
                assert 0.0 <= v["occupancy"] <= 1.0


def test_morning_rush_carries_far_more_vehicles_than_the_night(segments):
    sim = TrafficSimulator(segments, seed=2)
    rush: dict[str, list[int]] = {}
    night: dict[str, list[int]] = {}
    for day in range(5):  # Tuesday to Saturday
        base = TUESDAY + timedelta(days=day)
        for m in range(10):
            for e in sim.events_at(base.replace(hour=7, minute=30 + m)):
                if e.topic == FLOW_TOPIC:
                    rush.setdefault(e.key, []).append(e.value["vehicle_count"])
            for e in sim.events_at(base.replace(hour=2, minute=m)):
                if e.topic == FLOW_TOPIC:
                    night.setdefault(e.key, []).append(e.value["vehicle_count"])
    ratios = {sid: mean(rush[sid]) / max(mean(night[sid]), 0.5) for sid in rush}
    for sid, ratio in ratios.items():
        floor = 1.5 if segments[sid].road_class == "expressway" else 4.0
        assert ratio > floor, (sid, ratio)
    assert mean(ratios.values()) > 5


def test_lunchtime_dips_below_both_rush_hours(segments):
    sim = TrafficSimulator(segments, seed=4, congestion_episode_rate_per_hour=0)

    def total(hour: int, minute: int) -> int:
        return sum(
            e.value["vehicle_count"]
            for m in range(10)
            for e in sim.events_at(TUESDAY.replace(hour=hour, minute=minute + m))
            if e.topic == FLOW_TOPIC
        )

    lunch = total(12, 40)
    assert total(7, 15) > 1.5 * lunch and total(17, 15) > 1.5 * lunch


def test_congestion_index_is_high_exactly_during_episodes(segments):
    sim = TrafficSimulator(
        segments, seed=21, congestion_episode_rate_per_hour=4, incident_rate_per_hour=2
    )
    start = TUESDAY.replace(hour=6)
    events = flows(minutes(sim, start, 6 * 60))
    episodes = sim.episodes_between(start, start + timedelta(hours=6, minutes=1))
    assert len(episodes) >= 10
    assert {e.cause for e in episodes} >= {"opening", "random"}
    inside = outside = 0
    for e in events:
        jammed = any(ep.segment_id == e.key and ep.active_at(e.occurred_at) for ep in episodes)
        if jammed:
            inside += 1
            assert ci(e, segments) >= 0.6, e.value
            assert e.value["occupancy"] is None or e.value["occupancy"] > 0.4
        else:
            outside += 1
            assert ci(e, segments) < 0.6, e.value
    assert inside > 100 and outside > 1000
    assert max(ci(e, segments) for e in events) > 0.8


def test_an_episode_starts_within_the_first_minute_with_default_settings(segments):
    for seed in range(5):
        sim = TrafficSimulator(segments, seed=seed)
        start = datetime(2026, 3, 10, 8, 0, 0, tzinfo=UTC)  # 15:00 local: no rush to help
        events = list(sim.stream(start, rate=5, duration_s=180))  # a 3-minute demo
        first = [
            ep
            for ep in sim.episodes_between(start, start + timedelta(minutes=1))
            if start <= ep.start < start + timedelta(minutes=1)
        ]
        assert first, seed
        ep = first[0]
        assert ep.end - ep.start >= timedelta(minutes=10)
        jammed = [e for e in flows(events) if e.key == ep.segment_id and e.occurred_at >= ep.start]
        assert jammed, seed  # the demo actually shows it
        assert all(ci(e, segments) >= 0.6 for e in jammed)


def test_no_opening_episode_when_congestion_is_switched_off(segments):
    sim = TrafficSimulator(
        segments, seed=1, congestion_episode_rate_per_hour=0, incident_rate_per_hour=0
    )
    start = TUESDAY.replace(hour=14)
    events = flows(minutes(sim, start, 30))
    assert sim.episodes_between(start, start + timedelta(hours=1)) == []
    assert max(ci(e, segments) for e in events) < 0.6


def test_event_ids_are_unique_over_an_hour(segments):
    sim = TrafficSimulator(segments, seed=9, incident_rate_per_hour=30)
    start = TUESDAY.replace(hour=16)
    ids = [e.value["event_id"] for e in minutes(sim, start, 60)]
    assert len(ids) > 22 * 60
    assert len(ids) == len(set(ids))
    streamed = [
        e.value["event_id"]
        for e in TrafficSimulator(segments, seed=9).stream(start, rate=3, duration_s=3600)
    ]
    assert len(streamed) >= 3 * 3600
    assert len(streamed) == len(set(streamed))
    assert all(i.startswith("sim-9-") for i in ids + streamed)


def test_incidents_arrive_at_about_the_configured_rate(segments):
    for rate, subset in ((0.5, ["QL1A-TK-01"]), (2.0, list(segments))):
        sim = TrafficSimulator(
            {k: segments[k] for k in subset}, seed=13, interval_s=3600, incident_rate_per_hour=rate
        )
        hours = 1000 if rate < 1 else 300
        incidents = [
            e
            for h in range(1, hours + 1)
            for e in sim.events_at(TUESDAY + timedelta(hours=h))
            if e.topic == INCIDENT_TOPIC
        ]
        expected = rate * hours
        assert abs(len(incidents) - expected) < 0.15 * expected, (rate, len(incidents))
        severities = [e.value["severity"] for e in incidents]
        assert severities.count("minor") > 0.5 * len(severities)
        assert severities.count("critical") < 0.15 * len(severities)
        for e in incidents:
            assert e.value["segment_id"] in subset
            assert e.key == e.value["area_code"] == segments[e.value["segment_id"]].area_code
            assert e.value["description"].endswith(".")
    kinds = {e.value["incident_type"] for e in incidents}
    assert {"accident", "breakdown"} <= kinds
    assert any("Va chạm" in e.value["description"] for e in incidents)


def test_timestamps_are_timezone_aware_utc(segments):
    sim = TrafficSimulator(segments, seed=0, incident_rate_per_hour=30)
    local_now = TUESDAY.replace(hour=7, minute=31, second=5, microsecond=123456)
    events = sim.events_at(local_now) + list(minutes(sim, local_now, 30))
    events += list(sim.stream(local_now, rate=10, duration_s=20))
    for e in events:
        assert e.occurred_at.tzinfo is not None
        assert e.occurred_at.utcoffset() == timedelta(0)
    assert sim.events_at(local_now)[0].occurred_at == datetime(
        2026, 3, 10, 0, 31, 5, 123000, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="naive"):
        sim.events_at(datetime(2026, 3, 10, 7, 30))  # noqa: DTZ001 - the point of the test


def test_stream_paces_rate_events_per_second_staggered_over_segments(segments):
    sim = TrafficSimulator(segments, seed=3, incident_rate_per_hour=0)
    start = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    events = list(sim.stream(start, rate=10, duration_s=60))
    assert len(events) == 600
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    assert start < times[0] <= start + timedelta(seconds=0.1)
    assert times[-1] == start + timedelta(seconds=60)
    one = [e.occurred_at for e in events if e.key == "TK-HV-01"]
    gaps = {(b - a).total_seconds() for a, b in pairwise(one)}
    assert gaps <= {2.2, 2.199, 2.201}  # len(segments) / rate, rounded to the millisecond


def test_schedule_due_advances_a_cursor_and_tells_how_long_to_wait(segments):
    sim = TrafficSimulator(segments, seed=3, incident_rate_per_hour=0)
    start = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    sched = sim.schedule(start, rate=4, duration_s=10)
    assert sched.period_s == pytest.approx(len(segments) / 4)
    assert sched.due(start) == []
    assert sched.seconds_until_next(start) == pytest.approx(0.25)
    first = sched.due(start + timedelta(seconds=1))
    assert len(first) == 4
    assert sched.due(start + timedelta(seconds=1)) == []
    rest = sched.due(start + timedelta(hours=1))
    assert len(first) + len(rest) == 40 and sched.done and sched.next_at is None
    assert first + rest == list(
        TrafficSimulator(segments, seed=3, incident_rate_per_hour=0).stream(
            start, rate=4, duration_s=10
        )
    )


def test_stream_with_a_clock_only_yields_events_that_are_due(segments):
    start = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    ticks = {"now": start}

    def clock() -> datetime:
        ticks["now"] += timedelta(milliseconds=700)
        return ticks["now"]

    sim = TrafficSimulator(segments, seed=6, incident_rate_per_hour=100)
    paced = []
    for event in sim.stream(start, rate=5, duration_s=120, clock=clock):
        assert event.occurred_at <= ticks["now"]
        paced.append(event)
    unpaced = list(
        TrafficSimulator(segments, seed=6, incident_rate_per_hour=100).stream(
            start, rate=5, duration_s=120
        )
    )
    assert paced == unpaced
    assert len(flows(paced)) == 600


def test_write_jsonl_writes_values_with_iso_offsets(segments, schemas, tmp_path):
    sim = TrafficSimulator(segments, seed=1, incident_rate_per_hour=60)
    events = list(minutes(sim, TUESDAY.replace(hour=8), 10))
    path = tmp_path / "out" / "events.jsonl"
    assert write_jsonl(events, path) == len(events)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(events)
    for line, event in zip(lines, events, strict=True):
        record = json.loads(line)
        assert datetime.fromisoformat(record["occurred_at"]) == event.occurred_at
        assert {**record, "occurred_at": event.occurred_at} == event.value
    assert any("ạ" in line or "ơ" in line or "ư" in line for line in lines)  # not \u-escaped


def test_committed_sample_is_what_the_simulator_produces(schemas, tmp_path):
    """If the model changes on purpose, regenerate: ``python -m ioc.connectors.simulator``."""
    regenerated = tmp_path / "sample.jsonl"
    assert _write_sample(regenerated) == 20
    committed = SAMPLE_PATH.read_text(encoding="utf-8")
    assert committed == regenerated.read_text(encoding="utf-8")
    for line in committed.splitlines():
        record = json.loads(line)
        record["occurred_at"] = datetime.fromisoformat(record["occurred_at"])
        assert validate(record, schemas[FLOW_TOPIC], raise_errors=True)


def test_the_demo_sees_a_scripted_critical_accident_fire_and_resolve(segments):
    """The scripted accident 3–8 minutes after the first call: ``traffic.critical_incident``
    fires then and resolves by itself an hour later, inside the demo's 75 simulated minutes;
    its segment jams."""
    from ioc.infra.reference import load_reference
    from ioc.streams.processor import TrafficProcessor

    start = datetime(2026, 11, 2, 2, 35, tzinfo=UTC)
    sim = TrafficSimulator(segments, seed=5)
    events = list(sim.stream(start, rate=1, duration_s=75 * 60))
    assert sim.accident is not None
    acc = sim.accident.value
    assert (acc["incident_type"], acc["severity"]) == ("accident", "critical")
    assert timedelta(minutes=3) <= acc["occurred_at"] - start < timedelta(minutes=8)
    assert segments[acc["segment_id"]].road_class in ("national", "urban")
    assert [e.value for e in events if e.value["event_id"] == acc["event_id"]] == [acc]
    assert any(e.cause == acc["event_id"] and e.segment_id == acc["segment_id"]
               for e in sim.episodes_between(start, start + timedelta(hours=2)))
    # the same seed and anchor give the same accident; none when disabled or without incidents
    again = TrafficSimulator(segments, seed=5)
    list(again.stream(start, rate=1, duration_s=60))
    assert again.accident == sim.accident
    for off in (TrafficSimulator(segments, seed=5, scripted_accident=False),
                TrafficSimulator(segments, seed=5, incident_rate_per_hour=0)):
        assert [e for e in off.stream(start, rate=1, duration_s=75 * 60)
                if e.topic == INCIDENT_TOPIC and e.value["severity"] == "critical"] == []
    proc = TrafficProcessor(segments, load_reference().areas)
    seen = []
    for offset, event in enumerate(events):
        step = proc.handle(event.topic, event.value, (event.topic, 0), offset)
        seen += [(a["status"], a["updated_at"], a["entity"]) for a in step.alerts
                 + proc.tick().alerts if a["rule"] == "traffic.critical_incident"]
    assert seen == [("firing", acc["occurred_at"], acc["segment_id"]),
                    ("resolved", acc["occurred_at"] + timedelta(hours=1), acc["segment_id"])]
