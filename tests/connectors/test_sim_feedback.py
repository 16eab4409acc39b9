"""The feedback simulator: valid, deterministic, realistic, no personal data, and the demo's
episodes (backfill with overdue reports, the flooding surge) as the rules see them."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.connectors.privacy import LONG_DIGITS, MASK, PHONE_PATTERN
from ioc.connectors.sim_feedback import REPORT_TOPIC, SURGE_MINUTES, FeedbackSimulator
from ioc.connectors.simulator import LOCAL_TZ, SimEvent
from ioc.infra.reference import load_reference
from ioc.infra.reference_feedback import load_agencies, load_categories
from ioc.schemas.serde import Serde
from ioc.streams.feedback import OVERDUE_RULE, SURGE_RULE, feedback_domain
from ioc.streams.processor import Processor

REF = load_reference()
CATEGORIES = load_categories()
AGENCIES = load_agencies()
KEY = b"sim-test-key-0123456789"
ANCHOR = datetime(2026, 10, 20, 2, 0, tzinfo=UTC)  # 09:00 in Quảng Nam, a Tuesday
STEP = timedelta(seconds=10)
M = timedelta(minutes=1)


def sim(seed: int = 3, key: bytes = KEY, **kw: Any) -> FeedbackSimulator:
    return FeedbackSimulator(REF.areas, CATEGORIES, AGENCIES, seed, pseudonym_key=key, **kw)


def run(s: FeedbackSimulator, start: datetime, minutes: float,
        step: timedelta = STEP) -> list[SimEvent]:
    out: list[SimEvent] = []
    for k in range(1, int(minutes * 60 / step.total_seconds()) + 1):
        out.extend(s.events_at(start + k * step, step.total_seconds()))
    return out


@pytest.fixture(scope="module")
def events() -> list[SimEvent]:
    return run(sim(), ANCHOR, 120)


def test_every_event_is_valid_and_in_schema_order(events: list[SimEvent]) -> None:
    serde = Serde()
    fields = serde.catalogue.get(REPORT_TOPIC).field_names
    for ev in events:
        assert ev.topic == REPORT_TOPIC and ev.key == ev.value["report_id"]
        assert list(ev.value) == fields
        assert serde.decode(REPORT_TOPIC, serde.encode(REPORT_TOPIC, ev.value)) == ev.value


def test_no_personal_data_leaves_the_simulator(events: list[SimEvent]) -> None:
    pseudonyms = Counter(e.value["reporter_pseudonym"] for e in events
                         if e.value["status"] == "submitted")
    for ev in events:
        v = ev.value
        assert "reporter_name" not in v and "reporter_phone" not in v
        for text in (v["description"], v["address"]):
            assert not PHONE_PATTERN.search(text) and not LONG_DIGITS.search(text), text
        p = v["reporter_pseudonym"]
        assert p == "" or (len(p) == 16 and int(p, 16) >= 0)
    assert sum(MASK in e.value["description"] for e in events) > 0  # quoted numbers masked
    assert pseudonyms[""] > 0  # anonymous and field-officer reports
    assert max(n for p, n in pseudonyms.items() if p) > 1  # repeat reporters
    field = [e for e in events if e.value["channel"] == "field_officer"]
    assert field and all(e.value["reporter_pseudonym"] == "" for e in field)


def test_pseudonyms_depend_on_the_key_and_nothing_else() -> None:
    a = sim().events_at(ANCHOR + STEP, 10)
    b = sim(key=b"another-key-0123456789").events_at(ANCHOR + STEP, 10)
    assert [e.value["event_id"] for e in a] == [e.value["event_id"] for e in b]
    pa = {e.value["reporter_pseudonym"] for e in a} - {""}
    pb = {e.value["reporter_pseudonym"] for e in b} - {""}
    assert pa and pb and not pa & pb


def test_deterministic_and_independent_of_the_step(events: list[SimEvent]) -> None:
    again = run(sim(), ANCHOR, 120)
    assert [e.value for e in again] == [e.value for e in events]
    coarse = run(sim(), ANCHOR, 120, step=timedelta(minutes=1))
    # the first call anchors the world at the start of its interval: same anchor here
    first_fine = sim().events_at(ANCHOR + STEP, 10)
    first_coarse = sim().events_at(ANCHOR + M, 60)
    assert first_fine[0].value == first_coarse[0].value
    assert len({e.value["event_id"] for e in coarse}) == len(coarse)


def test_intervals_hold_only_their_events_in_time_order() -> None:
    s = sim()
    backfill = s.events_at(ANCHOR + STEP, 10)
    assert s.anchor == ANCHOR and s.world_start == ANCHOR - timedelta(days=8)
    assert all(s.world_start <= e.occurred_at <= ANCHOR + STEP for e in backfill)
    assert 1000 < len(backfill) < 5000  # "a few thousand events at most"
    times = [e.occurred_at for e in backfill]
    assert times == sorted(times)
    nxt = s.events_at(ANCHOR + 2 * STEP, 10)
    assert all(ANCHOR + STEP < e.occurred_at <= ANCHOR + 2 * STEP for e in nxt)


def test_lifecycles_are_realistic(events: list[SimEvent]) -> None:
    steps: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        steps.setdefault(e.value["report_id"], []).append(e.value)
    on_time = late = 0
    for rid, evs in steps.items():
        statuses = [v["status"] for v in evs]
        if statuses[0] != "submitted":
            continue  # a report whose submission fell before this sample
        times = [v["occurred_at"] for v in evs]
        assert times == sorted(times), rid
        assigned = [v for v in evs if v["status"] == "assigned"]
        if assigned:
            a = assigned[0]
            assert a["occurred_at"] - times[0] < timedelta(hours=20), rid
            due_days = CATEGORIES[a["category"]].due_days
            assert a["assigned_agency"] == CATEGORIES[a["category"]].agency
            if not rid.endswith(("Q0", "Q1", "Q2", "Q3")):
                assert a["due_at"] - a["occurred_at"] == timedelta(days=due_days)
        resolved = [v for v in evs if v["status"] == "resolved"]
        if resolved and assigned:
            on_time += resolved[0]["occurred_at"] <= assigned[0]["due_at"]
            late += resolved[0]["occurred_at"] > assigned[0]["due_at"]
            assert resolved[0]["rating"] in (None, 1, 2, 3, 4, 5)
    assert on_time > 5 * late > 0  # resolved mostly on time


def test_daytime_rhythm_and_rainy_season_categories() -> None:
    def submissions(anchor: datetime) -> list[dict[str, Any]]:
        return [e.value for e in sim(seed=5, episodes=False).events_at(anchor, 10)
                if e.value["status"] == "submitted"]

    october = submissions(datetime(2026, 10, 20, 2, 0, tzinfo=UTC))
    may = submissions(datetime(2026, 5, 20, 2, 0, tzinfo=UTC))
    hours = Counter(v["occurred_at"].astimezone(LOCAL_TZ).hour for v in october + may)
    assert sum(hours[h] for h in range(8, 12)) > 5 * sum(hours[h] for h in range(0, 4))

    def share(vs: list[dict[str, Any]], cat: str) -> float:
        return sum(v["category"] == cat for v in vs) / len(vs)

    assert share(october, "flooding") > 2 * share(may, "flooding")
    assert share(may, "water_supply") > share(october, "water_supply")


def test_the_rules_see_the_demo_episodes() -> None:
    """Backfill and 75 live minutes through the processor: the overdue alerts are firing at
    the start (one critical), one resolves at +10 min, one fires at +20 min; the flooding
    surge fires at +9 min and resolves at +69 min."""
    s = sim(seed=3)
    wall = [ANCHOR]
    proc = Processor([feedback_domain(REF)], timedelta(minutes=2), lambda: wall[0])
    alerts: list[dict[str, Any]] = []
    offset = 0
    for k in range(1, 6 * 75 + 1):
        now = ANCHOR + k * STEP
        wall[0] = now
        for ev in s.events_at(now, 10):
            alerts.extend(proc.handle(REPORT_TOPIC, ev.value, (REPORT_TOPIC, 0), offset).alerts)
            offset += 1
        alerts.extend(proc.tick().alerts)
    q0, q1, q2, q3 = s.scripted

    def of(rid: str) -> list[tuple[str, str, float]]:
        return [(a["status"], a["severity"], (a["updated_at"] - ANCHOR) / M) for a in alerts
                if a["rule"] == OVERDUE_RULE and a["entity"] == rid]

    assert of(q0)[-1][:2] == ("firing", "critical") and of(q0)[-1][2] < 0
    assert of(q1) == [("firing", "warning", of(q1)[0][2])] and of(q1)[0][2] < 0
    assert [x[:2] for x in of(q2)] == [("firing", "warning"), ("resolved", "warning")]
    assert of(q2)[-1][2] == 10.0
    assert of(q3) == [("firing", "warning", 20.0)]
    surge = [(a["status"], (a["updated_at"] - ANCHOR) / M, a["area_code"]) for a in alerts
             if a["rule"] == SURGE_RULE]
    assert surge[0] == ("firing", 9.0, s.surge_area)
    assert surge[-1] == ("resolved", 69.0, s.surge_area)
    assert len(SURGE_MINUTES) == 9
    # history: some reports were resolved late, each a fired-and-resolved episode
    history = [a for a in alerts if a["rule"] == OVERDUE_RULE and a["status"] == "resolved"
               and a["ends_at"] < ANCHOR]
    assert history


def test_ioc_simulate_gives_it_the_deployment_key(tmp_path: Any) -> None:
    from ioc.connectors.privacy import pseudonym_key
    from ioc.connectors.simulate import INTERVAL_SIMULATORS, _interval_simulators
    from ioc.infra.settings import Settings

    settings = Settings(data_dir=tmp_path)
    (built,) = _interval_simulators(settings, {"feedback"}, 3)
    assert isinstance(built, FeedbackSimulator)
    assert built.key == pseudonym_key(settings)
    # built by the registry alone (Kafka-free loaders): a stand-in key from the seed
    plain = INTERVAL_SIMULATORS["feedback"](REF, 3)
    assert isinstance(plain, FeedbackSimulator) and plain.key != built.key
    assert plain.key == INTERVAL_SIMULATORS["feedback"](REF, 3).key  # deterministic
    plain.events_at(ANCHOR, 10)
    with pytest.raises(RuntimeError):
        plain.configure(settings)
