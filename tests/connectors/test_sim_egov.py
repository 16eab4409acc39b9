"""The e-government simulator: valid, deterministic, realistic, and the demo's two episodes
(run through the real processor: the on-time alert fires and resolves in the backfill, the
portal-down alert within the first simulated minutes)."""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

import pytest

from ioc.connectors.sim_egov import (
    BACKFILL_DAYS,
    DOSSIER_TOPIC,
    PORTAL_CHECK_TOPIC,
    EgovSimulator,
    add_working_days,
    online_trend,
)
from ioc.connectors.simulator import LOCAL_TZ, SimEvent
from ioc.infra.reference import load_reference
from ioc.infra.reference_egov import load_agencies, load_procedures, load_systems
from ioc.schemas.serde import Serde
from ioc.schemas.validation import semantic_errors
from ioc.streams.egov import egov_domain
from ioc.streams.processor import Processor

ANCHOR = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # Tuesday 09:00 in Quảng Nam
STEP = 10.0


def sim(seed: int = 0, **kw: Any) -> EgovSimulator:
    return EgovSimulator(load_agencies(), load_systems(), load_procedures(), seed, **kw)


def run(s: EgovSimulator, minutes: float = 15) -> list[SimEvent]:
    out: list[SimEvent] = []
    for k in range(int(minutes * 60 / STEP) + 1):
        out.extend(s.events_at(ANCHOR + timedelta(seconds=k * STEP), STEP))
    return out


@cache
def demo(seed: int) -> tuple[SimEvent, ...]:
    return tuple(run(sim(seed)))


@cache
def processed(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """KPIs and alerts of the demo's first 15 simulated minutes, partitions as Kafka's
    default partitioner spreads the keys over three."""
    proc = Processor([egov_domain(load_reference(), settle=timedelta(0))],
                     timedelta(minutes=2), lambda: datetime(2020, 1, 1, tzinfo=UTC))
    offsets: Counter[tuple[str, int]] = Counter()
    kpis: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for i, ev in enumerate(demo(seed)):
        tp = (ev.topic, zlib.crc32(ev.key.encode()) % 3)
        step = proc.handle(ev.topic, ev.value, tp, offsets[tp])
        offsets[tp] += 1
        steps = [step, proc.tick()] if i % 25 == 0 else [step]
        for s in steps:
            kpis += s.kpis
            alerts += s.alerts
    last = proc.tick()
    return kpis + last.kpis, alerts + last.alerts


def dossiers(events: Any) -> list[dict[str, Any]]:
    return [e.value for e in events if e.topic == DOSSIER_TOPIC]


def test_every_event_is_valid_passes_the_checks_and_round_trips() -> None:
    serde = Serde()
    events = demo(0)
    assert {e.topic for e in events} == {DOSSIER_TOPIC, PORTAL_CHECK_TOPIC}
    for e in events:
        assert semantic_errors(e.topic, e.value) == [], e.value
        assert serde.decode(e.topic, serde.encode(e.topic, e.value)) == e.value
        assert e.key == (e.value["dossier_id"] if e.topic == DOSSIER_TOPIC
                         else e.value["system_id"])
    assert len({e.value["event_id"] for e in events}) == len(events)


def test_first_call_returns_a_small_backfill_then_only_the_interval() -> None:
    s = sim()
    first = s.events_at(ANCHOR, STEP)
    first_day = ANCHOR.astimezone(LOCAL_TZ).date() - timedelta(days=BACKFILL_DAYS)
    assert 2500 < len(first) < 5000
    assert min(e.occurred_at for e in first).astimezone(LOCAL_TZ).date() == first_day
    assert [e.occurred_at for e in first] == sorted(e.occurred_at for e in first)
    checks = [e for e in first if e.topic == PORTAL_CHECK_TOPIC]
    assert len(checks) == 2 * 60 * len(load_systems())
    later = s.events_at(ANCHOR + timedelta(minutes=30), 600)
    assert later and all(ANCHOR + timedelta(minutes=20) < e.occurred_at
                         <= ANCHOR + timedelta(minutes=30) for e in later)
    assert sim(backfill=False).events_at(ANCHOR, STEP) == [
        e for e in first if e.occurred_at > ANCHOR - timedelta(seconds=STEP)]


def test_deterministic_in_the_seed_and_the_anchor() -> None:
    a, b = run(sim(3, backfill=False), 2), run(sim(3, backfill=False), 2)
    assert [e.value for e in a] == [e.value for e in b]
    assert [e.value for e in run(sim(4, backfill=False), 2)] != [e.value for e in a]
    first = demo(0)
    assert [e.value for e in sim(0).events_at(ANCHOR, STEP)] == [
        e.value for e in first if e.occurred_at <= ANCHOR]


def test_office_hours_weekdays_and_a_saturday_morning() -> None:
    received = [v["received_at"].astimezone(LOCAL_TZ) for v in dossiers(demo(0))
                if v["status"] == "received"]
    by_weekday = Counter(r.weekday() for r in received)
    assert by_weekday[6] == 0 and 0 < by_weekday[5] < by_weekday[1] / 2
    for r in received:
        t = r.time()
        assert time(7, 30) <= t < time(11, 30) or (r.weekday() < 5
                                                   and time(13, 30) <= t < time(17, 0))
    decided = [v["resolved_at"].astimezone(LOCAL_TZ) for v in dossiers(demo(0))
               if v["status"] in ("resolved", "rejected")]
    assert all(d.weekday() < 5 or d.time() < time(11, 30) for d in decided)


def test_channels_fees_and_processing_times_are_plausible() -> None:
    values = dossiers(demo(0))
    received = [v for v in values if v["status"] == "received"]
    channels = Counter(v["channel"] for v in received)
    online_share = channels["online"] / len(received)
    assert 0.2 < online_share < 0.6 and 0 < channels["post"] < channels["in_person"]
    full = [v for v in received if v["online_level"] == "full"]
    assert sum(v["channel"] == "online" for v in full) / len(full) > online_share
    paid = [v for v in received if v["fee_required"]]
    assert 0.2 < sum(v["paid_online"] for v in paid) / len(paid) < 0.7
    decided = [v for v in values if v["status"] in ("resolved", "rejected")]
    on_time = sum(v["resolved_at"] <= v["due_at"] for v in decided) / len(decided)
    assert 0.97 < on_time < 1.0
    statuses = Counter(v["status"] for v in values)
    assert statuses["supplement_requested"] > statuses["rejected"] > statuses["withdrawn"] > 0
    assert online_trend(date(2027, 1, 1)) > online_trend(date(2026, 1, 1))


def test_working_days_skip_weekends() -> None:
    friday = date(2026, 11, 13)
    assert add_working_days(friday, 1) == date(2026, 11, 16)
    assert add_working_days(friday, 5) == date(2026, 11, 20)
    assert add_working_days(date(2026, 11, 14), 1) == date(2026, 11, 16)  # from a Saturday


def test_portal_checks_every_minute_and_one_outage_early_in_the_run() -> None:
    s = sim()
    events = [e.value for e in demo(0) if e.topic == PORTAL_CHECK_TOPIC
              and e.occurred_at > ANCHOR]
    per_system = Counter(v["system_id"] for v in events)
    assert set(per_system.values()) == {15}
    run(s, 0)
    assert s.outage is not None
    down = [v for v in events if not v["up"]]
    assert {v["system_id"] for v in down} == {s.outage.system_id}
    assert 5 <= len(down) <= 8
    assert all(v["response_ms"] is None or v["http_status"] == 503 for v in down)
    assert min(v["occurred_at"] for v in down) < ANCHOR + timedelta(minutes=5)
    ups = [v["response_ms"] for v in events if v["up"]]
    assert all(50 < ms < 5000 for ms in ups)


@pytest.mark.parametrize("seed", [0, 1])
def test_demo_episodes_fire_and_resolve_through_the_processor(seed: int) -> None:
    s = sim(seed)
    s.events_at(ANCHOR, STEP)
    assert s.backlog is not None and s.outage is not None
    _, alerts = processed(seed)
    latest = {(a["rule"], a["entity"], a["starts_at"]): a for a in alerts}
    assert {k[:2] for k in latest} == {("egov.on_time_rate_low", s.backlog.agency),
                                       ("egov.portal_down", s.outage.system_id)}
    on_time = next(a for k, a in latest.items() if k[0] == "egov.on_time_rate_low")
    today = ANCHOR.astimezone(LOCAL_TZ).date()

    def end_of(days_before: int) -> datetime:
        d = today - timedelta(days=days_before - 1)
        return datetime.combine(d, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)

    assert on_time["status"] == "resolved"
    assert end_of(10) <= on_time["starts_at"] <= end_of(8)  # the first published window
    assert on_time["ends_at"] == end_of(4)  # the backlog left the window
    assert on_time["value"] >= 0.95
    fired = [a for a in alerts if a["rule"] == "egov.on_time_rate_low"]
    assert fired[0]["status"] == "firing" and fired[0]["value"] < 0.95
    down = next(a for k, a in latest.items() if k[0] == "egov.portal_down")
    assert down["status"] == "resolved"
    assert s.outage.start <= down["starts_at"] < s.outage.start + timedelta(minutes=1)
    assert down["ends_at"] <= ANCHOR + timedelta(minutes=13)


def test_the_demo_publishes_30_day_rates_for_every_agency_with_dossiers() -> None:
    kpis, _ = processed(0)
    finals = {(r["kpi"], r["entity"]) for r in kpis if r["window"] == "30d" and r["is_final"]}
    agencies = {v["agency"] for v in dossiers(demo(0))}
    for kpi in ("egov.on_time_rate", "egov.online_rate", "egov.online_payment_rate"):
        assert {a for k, a in finals if k == kpi} == agencies
    gauges = {r["entity"] for r in kpis if r["kpi"] == "egov.overdue_open"}
    assert gauges == agencies
    s = sim(0)
    s.events_at(ANCHOR, STEP)
    assert s.backlog is not None
    overdue = [r for r in kpis if r["kpi"] == "egov.overdue_open"
               and r["entity"] == s.backlog.agency]
    assert overdue and overdue[-1]["value"] >= 3  # the backlog not cleared yet
    # the two backfilled hours of checks give closed uptime hours for every system
    assert {r["entity"] for r in kpis if r["kpi"] == "egov.uptime" and r["is_final"]} == set(
        load_systems())


def test_partitions_read_one_after_another_behind_live_data_publish_the_same_days() -> None:
    """The demo's condition through real Kafka: other topics' live data has moved the timer
    clock to now while the dossier backfill is still being read, one partition at a time (the
    others not even fetched yet after the settle time). Days close only when every assigned
    dossier partition is read past them, so the 30-day values and the backlog episode are those
    of the in-time-order run."""
    proc = Processor([egov_domain(load_reference(), settle=timedelta(0))],
                     timedelta(minutes=2), lambda: datetime(2020, 1, 1, tzinfo=UTC))
    parts: dict[tuple[str, int], list[SimEvent]] = {}
    for ev in demo(0):
        parts.setdefault((ev.topic, zlib.crc32(ev.key.encode()) % 3), []).append(ev)
    order = sorted(parts, key=lambda tp: (tp[0] == DOSSIER_TOPIC, tp[1]))  # checks first
    read = Counter[tuple[str, int]]()
    kpis: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []

    def tick() -> None:
        # A partition not fetched yet has an unknown end; the others what is left.
        proc.set_unread({tp: len(evs) - read[tp] if read[tp] else None
                         for tp, evs in parts.items()})
        step = proc.tick()
        kpis.extend(step.kpis)
        alerts.extend(step.alerts)

    for tp in order:
        for i, ev in enumerate(parts[tp]):
            step = proc.handle(ev.topic, ev.value, tp, read[tp])
            read[tp] += 1
            kpis.extend(step.kpis)
            alerts.extend(step.alerts)
            if i % 25 == 0:
                tick()
    tick()

    def finals(records: list[dict[str, Any]]) -> dict[tuple[Any, ...], tuple[float, int]]:
        return {(r["kpi"], r["entity"], r["window_end"]): (r["value"], r["sample_count"])
                for r in records if r["window"] == "30d" and r["is_final"]}

    in_order_kpis, in_order_alerts = processed(0)
    assert len(finals(in_order_kpis)) > 100
    assert finals(kpis) == finals(in_order_kpis)

    def episodes(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(a["entity"], a["status"], a["starts_at"], a["ends_at"], a["value"])
                for a in records if a["rule"] == "egov.on_time_rate_low"]

    assert episodes(alerts) == episodes(in_order_alerts)
    statuses = [e[1] for e in episodes(alerts)]
    assert statuses[0] == "firing" and statuses[-1] == "resolved"
