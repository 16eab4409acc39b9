"""The econ simulator: valid and deterministic reports, a small backfill of the plan year derived
from the clock, and the scripted episodes — run through the real econ rule, both alerts fire in
the backfill and resolve live within the demo's first simulated minutes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.connectors.sim_econ import CORRECTION_AFTER, LATE_REPORT_AFTER, EconSimulator
from ioc.connectors.simulate import INTERVAL_SIMULATORS
from ioc.connectors.simulator import SimEvent
from ioc.infra.reference import load_reference
from ioc.infra.reference_econ import load_econ
from ioc.schemas.serde import Serde
from ioc.schemas.validation import semantic_errors
from ioc.streams.econ import (
    BEHIND_PLAN_RULE,
    REPORT_MISSING_RULE,
    REPORT_TOPIC,
    econ_domain,
    report_deadline,
)
from ioc.streams.processor import Processor
from ioc.streams.windows import LOCAL_TZ

REF = load_reference()
ECON = load_econ()
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 10:00 in Quảng Nam
STEP = 10.0


def demo(now: datetime, minutes: int = 30, seed: int = 0
         ) -> tuple[EconSimulator, list[SimEvent], list[SimEvent]]:
    """The simulator stepped as ``ioc simulate`` steps it: backfill, then live events."""
    sim = EconSimulator(ECON, REF.areas, seed)
    start = now - timedelta(minutes=minutes)
    backfill = sim.events_at(start + timedelta(seconds=STEP), STEP)
    live: list[SimEvent] = []
    t = start + timedelta(seconds=STEP)
    while t < now:
        t += timedelta(seconds=STEP)
        live.extend(sim.events_at(t, STEP))
    return sim, backfill, live


def run_rule(events: list[SimEvent], start: datetime, end: datetime
             ) -> list[dict[str, Any]]:
    """Events through the econ domain, ticking every 10 simulated seconds as a worker would."""
    clock = [start]
    proc = Processor([econ_domain(REF)], clock=lambda: clock[0])
    alerts: list[dict[str, Any]] = []
    pending = sorted(events, key=lambda e: e.occurred_at)
    t = start
    offset = 0
    while t <= end:
        while pending and pending[0].occurred_at <= t:
            ev = pending.pop(0)
            offset += 1
            alerts.extend(proc.handle(ev.topic, ev.value, (ev.topic, 0), offset).alerts)
        clock[0] = t
        alerts.extend(proc.tick().alerts)
        t += timedelta(seconds=STEP)
    return alerts


def test_backfill_is_the_plan_year_so_far_and_small() -> None:
    sim, backfill, live = demo(NOW)
    ep = sim.episodes
    assert ep is not None and (ep.year, ep.last_month) == (2026, 10)
    assert 300 < len(backfill) < 1000
    assert all(e.occurred_at <= NOW - timedelta(minutes=30) + timedelta(seconds=STEP)
               for e in backfill)
    periods = Counter(e.value["period"] for e in backfill)
    assert set(periods) == {f"2026-{m:02d}" for m in range(1, 11)} | {
        "2026-Q1", "2026-Q2", "2026-Q3"}
    # every (indicator, area) with a 2026 target reports every month (one withheld)
    monthly = {(i, a) for i, a, y in ECON.targets
               if y == 2026 and ECON.indicators[i].frequency == "monthly"}
    assert periods["2026-09"] == len(monthly)
    assert periods["2026-10"] == len(monthly) - 1
    # submitted on time: in the first five days of the following month, office hours
    for e in backfill:
        if e.value["revision"] == 0 and len(e.value["period"]) == 7:
            local = e.occurred_at.astimezone(LOCAL_TZ)
            assert local.day <= 5 and 8 <= local.hour <= 16 and local.weekday() < 5
    # live: the correction and the late report (October's round is complete by 30 November)
    assert sorted((e.value["revision"], e.value["period"]) for e in live) == [
        (0, "2026-10"), (1, "2026-10")]
    assert [e.occurred_at for e in live] == sorted(e.occurred_at for e in live)


def test_events_are_valid_avro_pass_the_checks_and_fit_the_catalogue() -> None:
    serde = Serde()
    _, backfill, live = demo(NOW)
    for ev in backfill + live:
        assert ev.topic == REPORT_TOPIC and ev.key == ev.value["indicator_code"]
        assert semantic_errors(ev.topic, ev.value) == []
        assert serde.decode(ev.topic, serde.encode(ev.topic, ev.value)) == ev.value
        assert ev.value["unit"] == ECON.indicators[ev.value["indicator_code"]].unit
    ids = [e.value["event_id"] for e in backfill + live]
    assert len(ids) == len(set(ids))


def test_deterministic_in_the_seed_and_the_anchor() -> None:
    a = demo(NOW)
    b = demo(NOW)
    assert a[1] == b[1] and a[2] == b[2]
    other = demo(NOW, seed=5)
    assert [e.value["value"] for e in other[1]] != [e.value["value"] for e in a[1]]


@pytest.mark.parametrize("now", [
    NOW,
    datetime(2026, 12, 3, 3, tzinfo=UTC),   # November's round still open: October is missing
    datetime(2027, 1, 10, 3, tzinfo=UTC),   # the whole of 2026, December missing
    datetime(2026, 3, 2, 3, tzinfo=UTC),    # early in the year
])
def test_both_alerts_fire_in_the_backfill_and_resolve_live(now: datetime) -> None:
    sim, backfill, live = demo(now)
    ep = sim.episodes
    assert ep is not None and ep.behind is not None and ep.missing is not None
    start = now - timedelta(minutes=30)
    assert ep.correction_at == start + CORRECTION_AFTER
    assert ep.late_at == start + LATE_REPORT_AFTER
    assert ep.late_at < start + timedelta(minutes=20)
    alerts = run_rule(backfill + live, start, now)
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        by_rule.setdefault(a["rule"], []).append(a)
    assert set(by_rule) == {BEHIND_PLAN_RULE, REPORT_MISSING_RULE}
    behind = by_rule[BEHIND_PLAN_RULE]
    assert {(a["entity"], a["area_code"]) for a in behind} == {ep.behind}
    assert len({a["starts_at"] for a in behind}) == 1  # one episode
    assert behind[0]["starts_at"] < start and behind[-1]["status"] == "resolved"
    assert behind[-1]["ends_at"] == ep.correction_at
    assert all(a["status"] == "firing" for a in behind[:-1])
    missing = by_rule[REPORT_MISSING_RULE]
    year, month = int(ep.missing[2][:4]), int(ep.missing[2][5:])
    assert [(a["status"], a["entity"], a["area_code"]) for a in missing] == [
        ("firing", ep.missing[0], ep.missing[1]), ("resolved", ep.missing[0], ep.missing[1])]
    assert missing[0]["starts_at"] == report_deadline(year, month)
    assert missing[1]["ends_at"] == ep.late_at
    name = REF.areas[ep.missing[1]].name_vi
    assert name in missing[0]["summary"] and "trễ" in missing[1]["summary"]


def test_in_the_first_days_of_february_the_closed_year_has_no_episodes() -> None:
    sim, backfill, _ = demo(datetime(2027, 2, 3, 3, tzinfo=UTC))
    assert sim.episodes is not None and sim.episodes.year == 2027
    assert sim.episodes.missing is None
    assert {e.value["period"] for e in backfill} <= {"2027-01"}


def test_registered_for_ioc_simulate() -> None:
    sim = INTERVAL_SIMULATORS["econ"](REF, 3)
    assert isinstance(sim, EconSimulator)
    assert sim.events_at(NOW, 10)  # the backfill
