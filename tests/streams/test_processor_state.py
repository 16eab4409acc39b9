"""The processor's support for stateful rules: holds, the timer clock, KPI records from rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.streams.domain import BaseRule, Domain, Record
from ioc.streams.processor import Processor
from ioc.streams.rules import kpi_record

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TOPIC = "ioc.test.ticket.v1"


class OpenTickets(BaseRule):
    """Holds each ticket's events until it closes; a gauge of open tickets on every timer."""

    name = "test.open_tickets"
    topics = (TOPIC,)

    def __init__(self) -> None:
        self.open: dict[str, datetime] = {}
        self.timers: list[datetime] = []

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        tid = event["ticket_id"]
        if event["status"] == "open":
            self.open[tid] = event["occurred_at"]
            self.holds.hold(tid)
        else:
            self.open.pop(tid, None)
            self.holds.release(tid)
        return []

    def on_timer(self, now: datetime) -> list[Record]:
        self.timers.append(now)
        return [kpi_record(kpi="test.open", window="1m", start=now, end=now, area_code="",
                           entity="", value=len(self.open), sample_count=len(self.open),
                           computed_at=now, final=False)]

    def forget(self, keys: set[str]) -> None:
        for k in keys:
            self.open.pop(k, None)


def ev(i: int, ticket: str, status: str, minutes: float) -> dict[str, Any]:
    return {"event_id": f"e{i}", "ticket_id": ticket, "status": status,
            "occurred_at": T0 + timedelta(minutes=minutes), "area_code": "", "source": "t"}


def make(clock: list[datetime]) -> tuple[Processor, OpenTickets]:
    rule = OpenTickets()
    proc = Processor([Domain("test", (TOPIC,), (), (rule,))], clock=lambda: clock[0])
    return proc, rule


def test_held_event_is_released_only_when_the_rule_lets_go() -> None:
    clock = [T0]
    proc, _ = make(clock)
    tp = (TOPIC, 0)
    assert proc.handle(TOPIC, ev(1, "a", "open", 0), tp, 10).released == []
    assert proc.handle(TOPIC, ev(2, "b", "open", 1), tp, 11).released == []
    assert proc.held_by_rules == 2
    # Closing "a" releases the open event of "a" and the closing event itself.
    assert sorted(proc.handle(TOPIC, ev(3, "a", "closed", 2), tp, 12).released) == [
        (tp, 10), (tp, 12)]
    assert proc.held_by_rules == 1


def test_rule_kpis_are_routed_as_kpis_and_timer_runs_on_event_time() -> None:
    clock = [T0 - timedelta(days=30)]  # wall clock far behind the data: event time leads
    proc, rule = make(clock)
    proc.handle(TOPIC, ev(1, "a", "open", 5), (TOPIC, 0), 1)
    step = proc.tick()
    assert step.alerts == []
    assert [(k["kpi"], k["value"]) for k in step.kpis] == [("test.open", 1.0)]
    assert rule.timers == [T0 + timedelta(minutes=5)]


def test_timer_clock_carries_on_at_wall_speed_when_idle_and_never_goes_back() -> None:
    clock = [T0]
    proc, rule = make(clock)
    proc.handle(TOPIC, ev(1, "a", "open", 0), (TOPIC, 0), 1)
    proc.tick()
    clock[0] += timedelta(minutes=10)  # ten quiet minutes
    proc.tick()
    assert rule.timers[-1] == T0 + timedelta(minutes=10)
    # An event stamped earlier than the carried-forward clock does not move it back.
    proc.handle(TOPIC, ev(2, "b", "open", 3), (TOPIC, 1), 1)
    proc.tick()
    assert rule.timers[-1] == T0 + timedelta(minutes=10)


def test_rebalance_forgets_state_of_lost_partitions_and_keeps_the_rest() -> None:
    clock = [T0]
    proc, rule = make(clock)
    proc.handle(TOPIC, ev(1, "a", "open", 0), (TOPIC, 0), 1)
    proc.handle(TOPIC, ev(2, "b", "open", 0), (TOPIC, 1), 1)
    proc.drop_partitions({(TOPIC, 0)})
    assert set(rule.open) == {"b"}
    assert proc.held_by_rules == 1
    assert proc.handle(TOPIC, ev(3, "b", "closed", 1), (TOPIC, 1), 2).released == [
        ((TOPIC, 1), 1), ((TOPIC, 1), 2)]


def test_resent_open_event_is_held_once() -> None:
    clock = [T0]
    proc, _ = make(clock)
    tp = (TOPIC, 0)
    proc.handle(TOPIC, ev(1, "a", "open", 0), tp, 1)
    # Same position seen again (replay after restart): no second hold.
    proc.handle(TOPIC, ev(1, "a", "open", 0), tp, 1)
    assert proc.held_by_rules == 1
    assert sorted(proc.handle(TOPIC, ev(2, "a", "closed", 1), tp, 2).released) == [
        (tp, 1), (tp, 2)]
