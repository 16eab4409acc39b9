"""Replay guards: a restart that replays from an event a rule holds does not publish windows that
closed before the restart from the partial replay (see ``ioc.streams.engine``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.streams.domain import BaseRule, Domain, Record
from ioc.streams.engine import KpiEngine, KpiFamily, Outcome, ReplayGuard, Window
from ioc.streams.processor import Processor
from ioc.streams.security import Count
from ioc.streams.windows import WINDOWS

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TOPIC = "ioc.test.ticket.v1"
TP = (TOPIC, 0)
OPENED = KpiFamily("test.opened.1h", TOPIC, WINDOWS["1h"],
                   lambda ev: ("A", "") if ev["status"] == "open" else None,
                   lambda a, e: Count("test.opened"))


class OpenTickets(BaseRule):
    """Holds an open ticket's events until it closes; remembers the closed windows it saw."""

    name = "test.open_tickets"
    topics = (TOPIC,)

    def __init__(self) -> None:
        self.open: set[str] = set()
        self.windows_seen: list[tuple[datetime, bool]] = []

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        if event["status"] == "open":
            self.open.add(event["ticket_id"])
            self.holds.hold(event["ticket_id"])
        else:
            self.open.discard(event["ticket_id"])
            self.holds.release(event["ticket_id"])
        return []

    def on_window_closed(self, win: Window) -> list[Record]:
        self.windows_seen.append((win.start, win.quiet))
        return []


def ev(i: int, ticket: str, status: str, minutes: float) -> dict[str, Any]:
    return {"event_id": f"e{i}", "ticket_id": ticket, "status": status,
            "occurred_at": T0 + timedelta(minutes=minutes), "area_code": "A", "source": "t"}


# Offsets 0..: five tickets open and close within 08:00–09:00, ticket "x" opens at 08:30 (offset
# 4) and stays open, so the rule holds offset 4 for good; then traffic in the 09:00 hour.
EVENTS = [ev(0, "a", "open", 1), ev(1, "b", "open", 5), ev(2, "a", "closed", 10),
          ev(3, "c", "open", 20), ev(4, "x", "open", 30), ev(5, "b", "closed", 40),
          ev(6, "d", "open", 50), ev(7, "c", "closed", 55), ev(8, "d", "closed", 58),
          ev(9, "e", "open", 65), ev(10, "e", "closed", 70), ev(11, "f", "open", 75),
          ev(12, "f", "closed", 80)]


def run(proc: Processor, start: int, stop: int) -> list[dict[str, Any]]:
    """Feed offsets [start, stop) and tick after each; the KPI records published."""
    kpis: list[dict[str, Any]] = []
    for offset in range(start, stop):
        kpis.extend(proc.handle(TOPIC, EVENTS[offset], TP, offset).kpis)
        kpis.extend(proc.tick().kpis)
    kpis.extend(proc.flush())
    return kpis


def finals(kpis: list[dict[str, Any]]) -> dict[datetime, float]:
    return {k["window_start"]: k["value"] for k in kpis if k["is_final"]}


def make() -> tuple[Processor, OpenTickets]:
    rule = OpenTickets()
    clock = [T0]
    proc = Processor([Domain("test", (TOPIC,), (OPENED,), (rule,))],
                     allowed_lateness=timedelta(minutes=2), clock=lambda: clock[0])
    return proc, rule


def test_restart_from_a_rule_hold_does_not_republish_closed_windows() -> None:
    first, _ = make()
    before = run(first, 0, 13)  # 09:20 passed 09:02: the 08:00 window closed with 5 opened
    assert finals(before) == {T0: 5.0}
    guard = first.engine.checkpoint()[TP]
    assert guard == ReplayGuard(engine_from=9, closed_wm=T0 + timedelta(minutes=80))
    # The worker committed offset 4 (the rule holds ticket x's open event): a restart replays
    # offsets 4.. — only 2 of the 5 openings of the 08:00 window.
    unguarded, _ = make()
    assert finals(run(unguarded, 4, 13)) == {T0: 2.0}  # what the guard prevents
    guarded, rule = make()
    guarded.engine.guards[TP] = guard
    steps = [guarded.handle(TOPIC, EVENTS[o], TP, o) for o in range(4, 9)]
    assert {s.outcome for s in steps} == {Outcome.REPLAYED}
    after = run(guarded, 9, 13)
    assert finals(after) == {}  # nothing republished; the 09:00 window is still open
    assert [k["value"] for k in after if k["window_start"] == T0 + timedelta(hours=1)] == [2.0]
    assert guarded.rules[0].open == {"x"} and rule.open == {"x"}  # rule state rebuilt
    # The 09:00 window closes with the complete count, exactly as without the restart.
    late = ev(13, "g", "open", 125)
    EVENTS.append(late)
    try:
        assert finals(run(guarded, 13, 14))[T0 + timedelta(hours=1)] == 2.0
    finally:
        EVENTS.remove(late)


def test_a_window_closed_before_the_checkpoint_is_rebuilt_quietly() -> None:
    """An out-of-order event of a closed window replayed after ``engine_from`` re-creates the
    window: it publishes nothing and rules do not see it again."""
    engine = KpiEngine([OPENED], timedelta(minutes=2), clock=lambda: T0)
    engine.guards[TP] = ReplayGuard(engine_from=0, closed_wm=T0 + timedelta(minutes=70))
    assert engine.add(TOPIC, ev(1, "a", "open", 59), TP, 0) is Outcome.COUNTED
    engine.add(TOPIC, ev(2, "b", "open", 61), TP, 1)
    assert [k["window_start"] for k in engine.flush()] == [T0 + timedelta(hours=1)]
    engine.add(TOPIC, ev(3, "c", "open", 200), TP, 2)
    adv = engine.advance()
    assert [(w.start, w.quiet) for w in adv.closed] == [
        (T0, True), (T0 + timedelta(hours=1), False)]
    assert [(k["window_start"], k["value"]) for k in adv.kpis] == [
        (T0 + timedelta(hours=1), 1.0)]
    assert sorted(adv.released) == [(TP, 0), (TP, 1)]  # quiet windows still release


def test_quiet_windows_are_not_passed_to_rules_unless_retained() -> None:
    proc, rule = make()
    proc.engine.guards[TP] = ReplayGuard(engine_from=0, closed_wm=T0 + timedelta(minutes=70))
    proc.handle(TOPIC, ev(1, "a", "open", 59), TP, 0)
    proc.handle(TOPIC, ev(2, "b", "open", 200), TP, 1)
    proc.tick()
    assert rule.windows_seen == []  # the 08:00 window closed quietly
    proc.handle(TOPIC, ev(3, "c", "open", 400), TP, 2)
    proc.tick()
    assert rule.windows_seen == [(T0 + timedelta(hours=3), False)]


def test_checkpoint_takes_the_first_offset_a_window_holds() -> None:
    engine = KpiEngine([OPENED], timedelta(minutes=2), clock=lambda: T0)
    other = (TOPIC, 1)
    engine.add(TOPIC, ev(1, "a", "open", 5), TP, 7)
    engine.add(TOPIC, ev(2, "a", "closed", 6), TP, 8)  # no window: nothing held
    engine.add(TOPIC, ev(3, "b", "closed", 6), other, 3)
    engine.advance()
    assert engine.checkpoint() == {
        TP: ReplayGuard(7, T0 + timedelta(minutes=6)),
        other: ReplayGuard(4, T0 + timedelta(minutes=6))}
    engine.add(TOPIC, ev(4, "c", "open", 200), TP, 9)
    engine.advance()  # the 08:00 window closed: offset 7 is released
    assert engine.checkpoint()[TP] == ReplayGuard(9, T0 + timedelta(minutes=200))


def test_a_window_of_several_partitions_open_at_the_checkpoint_is_published() -> None:
    """Partition 0 was past the 08:00 window but partition 1 was not: the window was still open
    at the checkpoint (it held its events), so its replay publishes the final value."""
    engine = KpiEngine([OPENED], timedelta(minutes=2), clock=lambda: T0)
    other = (TOPIC, 1)
    engine.guards[TP] = ReplayGuard(engine_from=0, closed_wm=T0 + timedelta(minutes=70))
    engine.guards[other] = ReplayGuard(engine_from=0, closed_wm=T0 + timedelta(minutes=50))
    engine.add(TOPIC, ev(1, "a", "open", 10), TP, 0)
    engine.add(TOPIC, ev(2, "b", "open", 20), other, 0)
    engine.add(TOPIC, ev(3, "c", "open", 200), TP, 1)
    engine.add(TOPIC, ev(4, "d", "open", 200), other, 1)
    adv = engine.advance()
    assert [(k["window_start"], k["value"]) for k in adv.kpis] == [(T0, 2.0)]
    assert not adv.closed[0].quiet
