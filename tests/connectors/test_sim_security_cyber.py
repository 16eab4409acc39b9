"""The security and cyber simulators: valid, deterministic, realistic, and the demo's surge.

Also the semantic checks of the three topics (``ioc.schemas.checks_security_cyber``), which
every simulated event must pass.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from fastavro.validation import validate

from ioc.connectors.sim_security_cyber import (
    MENTION_TOPIC,
    SECURITY_EVENT_TOPIC,
    SECURITY_INCIDENT_TOPIC,
    CyberSimulator,
    SecuritySimulator,
)
from ioc.connectors.simulator import LOCAL_TZ, SimEvent
from ioc.infra.reference import load_areas, load_reference
from ioc.infra.reference_cyber import load_systems, load_topics
from ioc.schemas.catalogue import AVRO_DIR, Catalogue
from ioc.schemas.checks_security_cyber import CHECKS
from ioc.schemas.serde import Serde
from ioc.streams.cyber import NEGATIVE_BELOW, cyber_domain
from ioc.streams.processor import Processor

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Quảng Nam, a Monday
AREAS = load_areas()
TOPICS = load_topics()
SYSTEMS = load_systems()
TOPICS_OF_SIM = (SECURITY_INCIDENT_TOPIC, MENTION_TOPIC, SECURITY_EVENT_TOPIC)


def run(sim: SecuritySimulator | CyberSimulator, start: datetime, minutes: int,
        step_s: float = 60.0) -> list[SimEvent]:
    out: list[SimEvent] = []
    steps = int(minutes * 60 / step_s)
    for k in range(1, steps + 1):
        out.extend(sim.events_at(start + timedelta(seconds=k * step_s), step_s))
    return out


def cyber(seed: int = 7, **kw: Any) -> CyberSimulator:
    return CyberSimulator(TOPICS, SYSTEMS, seed, areas=AREAS, **kw)


@pytest.fixture(scope="module")
def day() -> list[SimEvent]:
    return (run(SecuritySimulator(AREAS, seed=3), T0, 24 * 60)
            + run(cyber(3), T0, 24 * 60))


def test_every_event_is_valid_avro_passes_the_checks_and_round_trips(
        day: list[SimEvent]) -> None:
    schemas = {t: fastavro.parse_schema(json.loads((AVRO_DIR / f"{t}.avsc").read_text("utf-8")))
               for t in TOPICS_OF_SIM}
    names = {t: Catalogue().get(t).field_names for t in TOPICS_OF_SIM}
    serde = Serde()
    assert {e.topic for e in day} == set(TOPICS_OF_SIM)
    for event in day:
        assert validate(event.value, schemas[event.topic], raise_errors=True)
        assert list(event.value) == names[event.topic]
        problems = [p for check in CHECKS[event.topic] for p in check(event.value)]
        assert problems == [], (event, problems)
        assert event.occurred_at.tzinfo is not None
    for event in day[:: max(1, len(day) // 200)]:
        assert serde.decode(event.topic, serde.encode(event.topic, event.value)) == event.value


def test_ids_are_unique_and_keys_follow_the_contract(day: list[SimEvent]) -> None:
    ids = [e.value["event_id"] for e in day]
    assert len(set(ids)) == len(ids)
    for e in day:
        key_field = {SECURITY_INCIDENT_TOPIC: "area_code", MENTION_TOPIC: "topic",
                     SECURITY_EVENT_TOPIC: "system"}[e.topic]
        assert e.key == e.value[key_field]


def test_same_seed_same_events_and_intervals_tile_without_gaps_or_overlaps() -> None:
    a = run(cyber(11), T0, 120)
    b = run(cyber(11), T0, 120)
    assert a == b
    assert a != run(cyber(12), T0, 120)
    sec = run(SecuritySimulator(AREAS, seed=5), T0, 600)
    assert sec == run(SecuritySimulator(AREAS, seed=5), T0, 600)
    # one 10-hour call yields exactly the events of the 600 one-minute calls
    assert SecuritySimulator(AREAS, seed=5).events_at(T0 + timedelta(hours=10), 36_000) == sec
    times = [e.occurred_at for e in sec]
    assert times == sorted(times)
    assert all(T0 < t <= T0 + timedelta(hours=10) for t in times)


def test_public_order_incidents_are_realistic() -> None:
    week = run(SecuritySimulator(AREAS, seed=1), T0, 7 * 24 * 60, step_s=3600)
    per_hour = len(week) / (7 * 24)
    assert 2.0 < per_hour < 4.0  # about 3 per hour province-wide
    assert all(AREAS[e.value["area_code"]].level != "province" for e in week)
    kinds = Counter(e.value["incident_type"] for e in week)
    assert kinds.most_common(1)[0][0] == "theft"
    severities = Counter(e.value["severity"] for e in week)
    assert 0 < severities["critical"] / len(week) < 0.10
    assert severities["minor"] > severities["moderate"] > severities["critical"]
    assert all(e.value["casualties"] == 0 for e in week if e.value["severity"] == "minor")
    evening = sum(1 for e in week if 18 <= e.occurred_at.astimezone(LOCAL_TZ).hour < 22)
    dawn = sum(1 for e in week if 2 <= e.occurred_at.astimezone(LOCAL_TZ).hour < 6)
    assert evening > 3 * dawn
    assert all(any(ord(c) > 127 for c in e.value["description"]) for e in week)


def test_mentions_and_security_events_are_realistic(day: list[SimEvent]) -> None:
    sim = cyber(3)
    run(sim, T0, 1)
    assert sim.surge is not None
    mentions = [e.value for e in day if e.topic == MENTION_TOPIC]
    ordinary = [m for m in mentions if "surge" not in m["event_id"]]
    assert 2000 < len(ordinary) < 3800  # ~150/h by day, a third of that at night
    assert set(m["topic"] for m in ordinary) == set(TOPICS)
    negative = sum(m["sentiment_score"] < NEGATIVE_BELOW for m in ordinary) / len(ordinary)
    assert 0.15 < negative < 0.35
    province_wide = sum(m["area_code"] == "" for m in ordinary) / len(ordinary)
    assert 0.7 < province_wide < 0.9
    assert all(m["area_code"] == "" or m["area_code"] in AREAS for m in mentions)
    assert all(m["reach"] >= 0 and m["url"].startswith("https://") for m in mentions)
    events = [e.value for e in day if e.topic == SECURITY_EVENT_TOPIC]
    assert 60 < len(events) < 140  # ~4 per hour
    assert all(e["system"] in SYSTEMS for e in events)
    sev = Counter(e["severity"] for e in events)
    assert sev["low"] > sev["medium"] > sev["high"] >= sev["critical"]


def test_the_surge_starts_early_lasts_over_an_hour_and_is_negative() -> None:
    sim = cyber(21)
    start = datetime(2026, 11, 2, 3, 40, tzinfo=UTC)
    events = run(sim, start, 150)
    surge = sim.surge
    assert surge is not None and surge.topic in TOPICS
    assert timedelta(minutes=1) <= surge.start - start <= timedelta(minutes=4)
    assert surge.end - surge.start >= timedelta(minutes=75)
    surged = [e.value for e in events if "surge" in e.value["event_id"]]
    assert all(surge.start <= v["occurred_at"] < surge.end for v in surged)
    assert all(v["topic"] == surge.topic and v["area_code"] == "" for v in surged)
    per_min = len(surged) / ((surge.end - surge.start).total_seconds() / 60)
    assert 4 < per_min < 8
    assert sum(v["sentiment_score"] < NEGATIVE_BELOW for v in surged) / len(surged) > 0.8
    assert cyber(21, surge=False).events_at(start + timedelta(minutes=150), 9000) == [
        e for e in events if "surge" not in e.value["event_id"]]


def test_a_thirty_minute_demo_across_an_hour_boundary_raises_the_negative_share_alert() -> None:
    sim = cyber(0)
    start = datetime(2026, 11, 2, 2, 35, tzinfo=UTC)  # 09:35 local; the hour ends at 10:00
    events = run(sim, start, 30, step_s=10)
    assert sim.surge is not None
    proc = Processor([cyber_domain(load_reference())], timedelta(seconds=120))
    fired: list[dict[str, Any]] = []
    for offset, event in enumerate(events):
        proc.handle(event.topic, event.value, (event.topic, 0), offset)
        fired.extend(a for a in proc.tick().alerts if a["rule"] == "cyber.negative_share")
    assert [(a["entity"], a["status"], a["starts_at"]) for a in fired] == [
        (sim.surge.topic, "firing", datetime(2026, 11, 2, 3, 0, tzinfo=UTC))]
    assert fired[0]["value"] >= 0.5


def test_the_demo_sees_a_critical_fire_and_a_critical_security_event_fire_and_resolve() -> None:
    """The scripted episodes: a critical fire 4–8 minutes and ransomware 8–12 minutes after the
    first call; each critical-incident rule fires then, and resolves an hour later."""
    start = datetime(2026, 11, 2, 2, 35, tzinfo=UTC)
    sec, cyb = SecuritySimulator(AREAS, seed=5, incident_rate_per_hour=0), cyber(5)
    events = sorted(run(sec, start, 80, step_s=10) + run(cyb, start, 80, step_s=10),
                    key=lambda e: e.occurred_at)
    assert sec.episode is not None and cyb.episode is not None
    fire, ransom = sec.episode.value, cyb.episode.value
    assert (fire["incident_type"], fire["severity"]) == ("fire", "critical")
    assert timedelta(minutes=4) <= fire["occurred_at"] - start <= timedelta(minutes=8)
    assert (ransom["severity"], ransom["event_type"]) == ("critical", "malware")
    assert timedelta(minutes=8) <= ransom["occurred_at"] - start <= timedelta(minutes=12)
    assert [e.value for e in events if e.value["event_id"] == fire["event_id"]] == [fire]
    # the same seed and anchor give the same episode; episode=False none
    again = SecuritySimulator(AREAS, seed=5, incident_rate_per_hour=0)
    run(again, start, 10, step_s=10)
    assert again.episode == sec.episode
    off = SecuritySimulator(AREAS, seed=5, incident_rate_per_hour=0, episode=False)
    assert run(off, start, 80) == []
    from ioc.streams.security import security_domain

    ref = load_reference()
    proc = Processor([security_domain(ref), cyber_domain(ref)], timedelta(seconds=120))
    seen = []
    for offset, event in enumerate(events):
        alerts = proc.handle(event.topic, event.value, (event.topic, 0), offset).alerts
        seen += [(a["rule"], a["status"], a["updated_at"]) for a in alerts + proc.tick().alerts
                 if a["severity"] == "critical"]
    assert seen == [
        ("security.critical_incident", "firing", fire["occurred_at"]),
        ("cyber.critical_security_event", "firing", ransom["occurred_at"]),
        ("security.critical_incident", "resolved", fire["occurred_at"] + timedelta(hours=1)),
        ("cyber.critical_security_event", "resolved",
         ransom["occurred_at"] + timedelta(hours=1))]


# --- semantic checks -----------------------------------------------------------------------


def problems(which: str, /, **changes: Any) -> list[str]:
    base: dict[str, dict[str, Any]] = {
        SECURITY_INCIDENT_TOPIC: {"event_id": "x", "occurred_at": T0, "source": "CA",
                                  "area_code": "502", "casualties": 0, "lat": 15.5,
                                  "lon": 108.5},
        MENTION_TOPIC: {"event_id": "x", "occurred_at": T0, "source": "S", "area_code": "",
                        "topic": "y_te", "sentiment_score": -1.0, "reach": 0, "url": ""},
        SECURITY_EVENT_TOPIC: {"event_id": "x", "occurred_at": T0, "source": "SOC",
                               "area_code": "", "system": "cong-dvc", "src_ip": "2001:db8::1"},
    }
    record = {**base[which], **changes}
    return [p for check in CHECKS[which] for p in check(record)]


def test_checks_accept_edge_values() -> None:
    assert problems(SECURITY_INCIDENT_TOPIC) == []
    assert problems(MENTION_TOPIC, sentiment_score=1) == []
    assert problems(SECURITY_EVENT_TOPIC, src_ip="") == []


@pytest.mark.parametrize(("topic", "changes", "field"), [
    (MENTION_TOPIC, {"sentiment_score": 1.01}, "sentiment_score"),
    (MENTION_TOPIC, {"sentiment_score": float("nan")}, "sentiment_score"),
    (MENTION_TOPIC, {"reach": -1}, "reach"),
    (MENTION_TOPIC, {"topic": " "}, "topic"),
    (MENTION_TOPIC, {"url": "ftp://x"}, "url"),
    (MENTION_TOPIC, {"event_id": ""}, "event_id"),
    (SECURITY_INCIDENT_TOPIC, {"casualties": -2}, "casualties"),
    (SECURITY_INCIDENT_TOPIC, {"area_code": ""}, "area_code"),
    (SECURITY_INCIDENT_TOPIC, {"lat": 95.0}, "lat"),
    (SECURITY_INCIDENT_TOPIC, {"occurred_at": datetime(2026, 1, 1)}, "occurred_at"),  # noqa: DTZ001
    (SECURITY_EVENT_TOPIC, {"system": ""}, "system"),
    (SECURITY_EVENT_TOPIC, {"src_ip": "10.0.0.300"}, "src_ip"),
    (SECURITY_EVENT_TOPIC, {"source": ""}, "source"),
])
def test_checks_name_the_bad_field(topic: str, changes: dict[str, Any], field: str) -> None:
    found = problems(topic, **changes)
    assert len(found) == 1 and found[0].startswith(f"{field}:"), found
