"""The health and education simulators: valid, deterministic, believable, and the demo's
episodes — checked by running the simulated events through the real processor."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from ioc.connectors.producer import partition_key
from ioc.connectors.sim_health_edu import (
    ATTENDANCE_TOPIC,
    DISEASE_CASE_TOPIC,
    FACILITY_STATUS_TOPIC,
    EduSimulator,
    HealthSimulator,
    is_school_day,
)
from ioc.connectors.simulate import INTERVAL_SIMULATORS
from ioc.connectors.simulator import LOCAL_TZ, SimEvent
from ioc.infra.reference import load_reference
from ioc.infra.reference_health_edu import load_facilities, load_schools
from ioc.schemas.catalogue import AVRO_DIR, Catalogue
from ioc.schemas.serde import Serde
from ioc.schemas.validation import semantic_errors
from ioc.streams.edu import edu_domain
from ioc.streams.health import day_end, health_domain
from ioc.streams.processor import Processor

REF = load_reference()
FACILITIES = load_facilities()
SCHOOLS = load_schools()
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Monday 10:00 in Quảng Nam
TOPICS = (FACILITY_STATUS_TOPIC, DISEASE_CASE_TOPIC, ATTENDANCE_TOPIC)


def run(start: datetime, minutes: int, seed: int = 0, step_s: float = 10.0,
        ) -> tuple[HealthSimulator, EduSimulator, list[SimEvent]]:
    """``minutes`` of simulated time from ``start``, stepped like ``ioc simulate`` does."""
    health = HealthSimulator(FACILITIES, REF.areas, seed)
    edu = EduSimulator(SCHOOLS, seed)
    events: list[SimEvent] = []
    for k in range(1, int(minutes * 60 / step_s) + 1):
        now = start + timedelta(seconds=k * step_s)
        events += health.events_at(now, step_s) + edu.events_at(now, step_s)
    return health, edu, events


@pytest.fixture(scope="module")
def demo() -> tuple[HealthSimulator, EduSimulator, list[SimEvent]]:
    return run(NOW, 30)


def process(events: list[SimEvent]) -> list[dict[str, Any]]:
    """Through the real processor, three partitions per topic chosen by the Kafka key (as the
    producer would), ticking as the worker does; the alert records in order."""
    proc = Processor([health_domain(REF), edu_domain(REF)], timedelta(minutes=2),
                     lambda: NOW)
    offsets: Counter[tuple[str, int]] = Counter()
    out: list[dict[str, Any]] = []
    for i, ev in enumerate(events):
        tp = (ev.topic, zlib.crc32(partition_key(ev.topic, ev.value)) % 3)
        out += proc.handle(ev.topic, ev.value, tp, offsets[tp]).alerts
        offsets[tp] += 1
        if i % 100 == 0:
            out += proc.tick().alerts
    return out + proc.tick().alerts


def test_every_event_is_valid_avro_passes_the_checks_and_round_trips(demo: Any) -> None:
    _, _, events = demo
    schemas = {t: fastavro.parse_schema(json.loads((AVRO_DIR / f"{t}.avsc").read_text("utf-8")))
               for t in TOPICS}
    names = {t: Catalogue().get(t).field_names for t in TOPICS}
    assert {e.topic for e in events} == set(TOPICS)
    serde = Serde()
    for event in events:
        assert validate(event.value, schemas[event.topic], raise_errors=True)
        assert list(event.value) == names[event.topic]
        assert semantic_errors(event.topic, event.value) == [], event
        assert event.key == partition_key(event.topic, event.value).decode()
    for event in events[:: max(1, len(events) // 300)]:
        assert serde.decode(event.topic, serde.encode(event.topic, event.value)) == event.value


def test_ids_unique_and_the_first_call_brings_a_small_history(demo: Any) -> None:
    _, _, events = demo
    ids = [e.value["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    t0 = NOW  # the first call covered (NOW, NOW + 10 s]
    history = [e for e in events if e.occurred_at <= t0]
    assert 1000 < len(history) < 5000
    oldest = {t: min(e.occurred_at for e in history if e.topic == t) for t in TOPICS}
    assert oldest[DISEASE_CASE_TOPIC] < t0 - timedelta(days=55)
    assert t0 - timedelta(hours=6) <= oldest[FACILITY_STATUS_TOPIC] < t0 - timedelta(hours=5)
    assert t0 - timedelta(days=11) < oldest[ATTENDANCE_TOPIC] < t0 - timedelta(days=8)
    assert max(e.occurred_at for e in events) <= NOW + timedelta(minutes=30)


def test_deterministic_in_the_seed_and_times() -> None:
    _, _, a = run(NOW, 5, seed=3)
    _, _, b = run(NOW, 5, seed=3)
    _, _, c = run(NOW, 5, seed=4)
    assert [e.value for e in a] == [e.value for e in b]
    assert [e.value for e in a] != [e.value for e in c]


def test_events_at_returns_only_its_interval_after_the_first_call() -> None:
    sim = HealthSimulator(FACILITIES, REF.areas, 1)
    sim.events_at(NOW, 10)
    later = sim.events_at(NOW + timedelta(hours=2), 3600)
    assert later
    assert all(NOW + timedelta(hours=1) < e.occurred_at <= NOW + timedelta(hours=2)
               for e in later)
    with pytest.raises(ValueError):
        sim.events_at(NOW, 0)


def test_status_every_15_minutes_and_believable_occupancy() -> None:
    sim = HealthSimulator(FACILITIES, REF.areas, 2, episodes=False)
    day = [e.value for k in range(1, 24 * 4 + 1)
           for e in sim.events_at(NOW + timedelta(minutes=15 * k), 900)
           if e.topic == FACILITY_STATUS_TOPIC and e.occurred_at > NOW]
    per_facility = Counter(v["facility_id"] for v in day)
    assert set(per_facility) == set(FACILITIES)
    assert set(per_facility.values()) == {96}
    occupancy = [v["beds_occupied"] / v["beds_total"] for v in day]
    assert max(occupancy) <= 0.881 and min(occupancy) > 0.4

    def mean_at(hours: set[int]) -> float:
        sel = [v["beds_occupied"] / v["beds_total"] for v in day
               if v["occurred_at"].astimezone(LOCAL_TZ).hour in hours]
        return sum(sel) / len(sel)

    assert mean_at({22, 23, 0, 1}) > mean_at({10, 11, 12, 13}) + 0.03  # night vs midday
    queue_evening = sum(v["emergency_waiting"] for v in day
                        if v["occurred_at"].astimezone(LOCAL_TZ).hour in (19, 20, 21))
    queue_night = sum(v["emergency_waiting"] for v in day
                      if v["occurred_at"].astimezone(LOCAL_TZ).hour in (2, 3, 4))
    assert queue_evening > 2 * queue_night
    icu = [v for v in day if v["icu_total"] is not None]
    assert icu and all(0 <= v["icu_occupied"] <= v["icu_total"] for v in icu)


def test_cases_follow_population_season_and_weekday(demo: Any) -> None:
    health, _, events = demo
    cases = [e.value for e in events if e.topic == DISEASE_CASE_TOPIC]
    by_disease = Counter(v["disease"] for v in cases)
    assert by_disease.most_common(1)[0][0] == "dengue"  # late November: dengue season
    plans = {(p.area_code, p.disease) for p in health.plans}
    ordinary = [v for v in cases if (v["area_code"], v["disease"]) not in plans]
    by_area = Counter(v["area_code"] for v in ordinary if v["disease"] == "dengue")
    assert by_area["507"] > 3 * by_area["504"]  # Điện Bàn (232k people) vs Tây Giang (20k)
    weekday = Counter(v["occurred_at"].astimezone(LOCAL_TZ).weekday() for v in ordinary)
    assert weekday[6] < 0.75 * weekday[2]  # fewer notifications on Sundays
    hfmd = [v for v in cases if v["disease"] == "hand_foot_mouth"]
    assert Counter(v["age_group"] for v in hfmd).most_common(1)[0][0] == "age_0_4"
    assert all(v["facility_id"] in FACILITIES for v in cases)


def test_attendance_only_on_school_days_one_report_per_school(demo: Any) -> None:
    _, _, events = demo
    reports = [e.value for e in events if e.topic == ATTENDANCE_TOPIC]
    days = Counter(v["school_day"] for v in reports)
    assert all(day.weekday() != 6 for day in days)
    per_school_day = Counter((v["school_id"], v["school_day"]) for v in reports)
    assert set(per_school_day.values()) == {1}
    for v in reports:
        level = SCHOOLS[v["school_id"]].level
        assert is_school_day(level, v["school_day"])
        local = v["occurred_at"].astimezone(LOCAL_TZ)
        assert (7, 15) <= (local.hour, local.minute) <= (8, 55)
        assert v["enrolled"] == SCHOOLS[v["school_id"]].enrolled
    saturday = {SCHOOLS[v["school_id"]].level for v in reports if v["school_day"].weekday() == 5}
    assert saturday == {"lower_secondary", "upper_secondary"}


@pytest.mark.parametrize(("start", "seed"), [
    (NOW, 0),
    (datetime(2026, 4, 1, 5, 0, tzinfo=UTC), 7),      # low dengue season
    (datetime(2026, 8, 20, 23, 30, tzinfo=UTC), 2),   # dengue season starting
    (datetime(2026, 6, 7, 17, 1, tzinfo=UTC), 6),     # just after local midnight
])
def test_the_demo_shows_every_alert_rule_firing_and_resolving(start: datetime,
                                                               seed: int) -> None:
    health, edu, events = run(start, 30, seed=seed)
    got = process(events)
    rules = Counter((a["rule"], a["status"]) for a in got)
    today = start.astimezone(LOCAL_TZ).date()
    # occupancy: warning → critical → warning → resolved within 20 minutes, one episode
    occ = [a for a in got if a["rule"] == "health.bed_occupancy"]
    assert [(a["severity"], a["status"]) for a in occ] == [
        ("warning", "firing"), ("critical", "firing"), ("warning", "firing"),
        ("warning", "resolved")]
    assert {a["entity"] for a in occ} == {health.episode_facility}
    assert occ[-1]["ends_at"] <= start + timedelta(minutes=20)
    # outbreaks: the past one fired and resolved in the history; the current one fires at
    # yesterday's close and is still firing; no other area or disease alerts
    outbreaks = [a for a in got if a["rule"] == "health.outbreak"]
    assert {(a["area_code"], a["entity"]) for a in outbreaks} == {
        (p.area_code, p.disease) for p in health.plans}
    past = [a for a in outbreaks if a["entity"] == "hand_foot_mouth"]
    assert past[-1]["status"] == "resolved"
    assert start - timedelta(days=20) < past[0]["starts_at"] < past[-1]["ends_at"] < start
    current = [a for a in outbreaks if a["entity"] == "dengue"]
    assert current[0]["starts_at"] == day_end(today - timedelta(days=1))
    assert current[-1]["status"] == "firing"
    # attendance: one area low on one history day, back the next school day
    low = [a for a in got if a["rule"] == "edu.attendance_low"]
    assert [a["status"] for a in low] == ["firing", "resolved"]
    assert low[0]["area_code"] == edu.low_area
    assert edu.low_day is not None and low[0]["starts_at"] == day_end(edu.low_day)
    assert low[1]["ends_at"] < start
    assert set(rules) == {("health.bed_occupancy", "firing"),
                          ("health.bed_occupancy", "resolved"),
                          ("health.outbreak", "firing"), ("health.outbreak", "resolved"),
                          ("edu.attendance_low", "firing"), ("edu.attendance_low", "resolved")}


def test_interval_simulators_are_registered() -> None:
    for name in ("health", "edu"):
        sim = INTERVAL_SIMULATORS[name](REF, 5)
        assert sim.events_at(NOW, 10)


def test_the_low_attendance_day_is_the_third_school_day_before_today() -> None:
    edu = EduSimulator(SCHOOLS, 0)
    edu.events_at(NOW, 10)
    # Monday 30 Nov: Saturday 28, Friday 27, Thursday 26
    assert edu.low_day == date(2026, 11, 26)
