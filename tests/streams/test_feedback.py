"""Citizen feedback on the pure processor: exact KPIs, the overdue and surge alerts (fire,
escalate, resolve), the feedback clock, holds and restart."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.infra.reference import load_reference
from ioc.streams.domain import Domain
from ioc.streams.feedback import (
    BACKLOG_KPI,
    IDLE_TICKS,
    NEW_REPORTS_KPI,
    ON_TIME_KPI,
    OVERDUE_RULE,
    REPORT_TOPIC,
    RESOLUTION_KPI,
    SATISFACTION_KPI,
    SURGE_RULE,
    UNASSIGNED,
    FeedbackRules,
    Report,
    feedback_domain,
)
from ioc.streams.processor import Processor, Step
from ioc.streams.rules import alert_fingerprint

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Quảng Nam, Monday 2 Nov
DAY_END = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)  # local midnight ending 2 Nov
REF = load_reference()
H = timedelta(hours=1)
D = timedelta(days=1)
M = timedelta(minutes=1)


def step(eid: str, rid: str, status: str, at: datetime, *, area: str = "503",
         category: str = "waste", agency: str = "", due: datetime | None = None,
         rating: int | None = None, description: str = "") -> dict[str, Any]:
    return {"event_id": eid, "occurred_at": at, "source": "TTGSDH-QNA", "area_code": area,
            "report_id": rid, "status": status, "channel": "app", "category": category,
            "description": description, "address": "", "lat": None, "lon": None,
            "assigned_agency": agency, "due_at": due, "rating": rating,
            "reporter_pseudonym": ""}


def lifecycle(rid: str, submitted: datetime, *, agency: str = "URENCO-QNA",
              due_days: float = 5, resolved: datetime | None = None,
              rejected: datetime | None = None, rating: int | None = None,
              area: str = "503", category: str = "waste") -> list[dict[str, Any]]:
    """submitted, assigned an hour later (due ``due_days`` after assignment), then resolved
    or rejected if given."""
    assigned = submitted + H
    out = [step(f"{rid}-s", rid, "submitted", submitted, area=area, category=category),
           step(f"{rid}-a", rid, "assigned", assigned, area=area, category=category,
                agency=agency, due=assigned + due_days * D)]
    if resolved is not None:
        out.append(step(f"{rid}-r", rid, "resolved", resolved, area=area, category=category,
                        agency=agency, rating=rating))
    if rejected is not None:
        out.append(step(f"{rid}-x", rid, "rejected", rejected, area=area, category=category,
                        agency=agency))
    return out


class Harness:
    """The processor with the feedback domain, a controlled wall clock and every output."""

    def __init__(self, proc: Processor | None = None) -> None:
        self.wall = [T0]
        self.proc = proc or Processor([feedback_domain(REF)], timedelta(minutes=2),
                                      lambda: self.wall[0])
        self.offsets: dict[int, int] = {}
        self.kpis: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.released: list[Any] = []

    def collect(self, step: Step) -> None:
        self.kpis.extend(step.kpis)
        self.alerts.extend(step.alerts)
        self.released.extend(step.released)

    def send(self, events: Iterable[dict[str, Any]], partition: int = 0,
             tick: bool = True) -> None:
        for ev in sorted(events, key=lambda e: e["occurred_at"]):
            offset = self.offsets.get(partition, 0)
            self.offsets[partition] = offset + 1
            self.collect(self.proc.handle(REPORT_TOPIC, ev, (REPORT_TOPIC, partition), offset))
            if tick:
                self.collect(self.proc.tick())

    def run_to(self, t: datetime) -> None:
        """Let the timer clock reach ``t`` with no new event (partitions go idle)."""
        now = self.proc.timer_now()
        assert now is not None
        if now < t:
            self.wall[0] += t - now
        for _ in range(IDLE_TICKS + 1):
            self.collect(self.proc.tick())

    def latest_kpi(self, kpi: str, entity: str, window: str | None = None
                   ) -> dict[str, Any]:
        rows = [k for k in self.kpis if k["kpi"] == kpi and k["entity"] == entity
                and (window is None or k["window"] == window)]
        assert rows, (kpi, entity)
        return max(rows, key=lambda k: (k["window_end"], k["computed_at"]))

    def rule_alerts(self, rule: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["rule"] == rule]


# --- feedback.new_reports ------------------------------------------------------------------


def test_new_reports_counts_submissions_per_area_and_category_hourly_and_daily() -> None:
    h = Harness()
    events = (lifecycle("A", T0 + 5 * M) + lifecycle("B", T0 + 20 * M)
              + lifecycle("C", T0 + 30 * M, category="flooding")
              + lifecycle("D", T0 + 70 * M, area="502"))
    h.send(events)
    h.send([dict(events[0], occurred_at=T0 + 5 * M)])  # the same submission again
    # windows close on the partition's watermark: a later step (not a submission) moves it
    h.send([step("A-p", "A", "in_progress", DAY_END + 5 * M, agency="URENCO-QNA")])
    final = {(k["window"], k["window_start"], k["area_code"], k["entity"]):
             (k["value"], k["sample_count"]) for k in h.kpis
             if k["kpi"] == NEW_REPORTS_KPI and k["is_final"]}
    day_start = DAY_END - D
    assert final == {
        ("1h", T0, "503", "waste"): (2.0, 2),
        ("1h", T0, "503", "flooding"): (1.0, 1),
        ("1h", T0 + H, "502", "waste"): (1.0, 1),
        ("1d", day_start, "503", "waste"): (2.0, 2),
        ("1d", day_start, "503", "flooding"): (1.0, 1),
        ("1d", day_start, "502", "waste"): (1.0, 1),
    }


# --- feedback.backlog ----------------------------------------------------------------------


def test_backlog_gauge_counts_open_reports_per_agency_each_minute() -> None:
    h = Harness()
    h.send(lifecycle("A", T0) + lifecycle("B", T0 + M, agency="SXD-QNA")
           + lifecycle("C", T0 + 2 * M, agency="SXD-QNA")
           + [step("D-s", "D", "submitted", T0 + 3 * M)])
    at = T0 + 2 * H + 30 * M
    h.run_to(at)
    rows = {k["entity"]: k for k in h.kpis if k["kpi"] == BACKLOG_KPI
            and k["window_end"] == at}
    assert {e: r["value"] for e, r in rows.items() if r["value"]} == {
        "URENCO-QNA": 1.0, "SXD-QNA": 2.0, UNASSIGNED: 1.0}
    # every reference agency has a row, zeros included; the window is the minute before
    assert rows["CA-QNA"]["value"] == 0.0
    assert set(rows) >= {"BCH-PCTT-QNA", "STNMT-QNA", "VP-UBND-QNA", UNASSIGNED}
    r = rows["SXD-QNA"]
    assert (r["window"], r["window_start"], r["area_code"], r["sample_count"]) == (
        "1m", at - M, "", 2)
    # C resolved at 11:00 → one fewer for SXD; D assigned later moves it off "unassigned"
    h.send([step("C-r", "C", "resolved", T0 + 3 * H, agency="SXD-QNA"),
            step("D-a", "D", "assigned", T0 + 3 * H + 30 * M, agency="CA-QNA",
                 due=T0 + 5 * D)])
    h.run_to(T0 + 4 * H)
    assert h.latest_kpi(BACKLOG_KPI, "SXD-QNA")["value"] == 1.0
    assert h.latest_kpi(BACKLOG_KPI, UNASSIGNED)["value"] == 0.0
    assert h.latest_kpi(BACKLOG_KPI, "CA-QNA")["value"] == 1.0
    assert h.latest_kpi(BACKLOG_KPI, "CA-QNA")["window_end"] == T0 + 4 * H


def test_backlog_minute_reflects_state_at_that_minute_not_later_steps() -> None:
    report = Report("A")
    for ev in lifecycle("A", T0, resolved=T0 + 2 * H):
        report.add(ev)
    assert report.view(T0 + 30 * M).open and report.view(T0 + 30 * M).agency == ""
    assert report.view(T0 + H).agency == "URENCO-QNA"
    assert not report.view(T0 + 2 * H).open


# --- the 30-day KPIs -----------------------------------------------------------------------


def test_on_time_rate_resolution_hours_and_satisfaction_over_30_days() -> None:
    h = Harness()
    # Four URENCO reports in October/November: two on time (ratings 5, 3), one late (rating 1),
    # one rejected (excluded); one resolved 40 days ago (outside the window).
    h.send(lifecycle("old", T0 - 45 * D, resolved=T0 - 40 * D, rating=1)
           + lifecycle("A", T0 - 10 * D, resolved=T0 - 10 * D + 25 * H, rating=5)
           + lifecycle("B", T0 - 8 * D, resolved=T0 - 8 * D + 49 * H, rating=3)
           + lifecycle("C", T0 - 9 * D, resolved=T0 - 9 * D + 7 * D, rating=1)
           + lifecycle("X", T0 - 5 * D, rejected=T0 - 4 * D)
           + lifecycle("S", T0 - 6 * D, agency="SXD-QNA", resolved=T0 - 6 * D + 10 * H))
    h.run_to(T0 + 2 * H)
    on_time = h.latest_kpi(ON_TIME_KPI, "URENCO-QNA")
    assert (on_time["window"], on_time["window_end"], on_time["window_start"]) == (
        "30d", DAY_END, DAY_END - 30 * D)
    assert (on_time["value"], on_time["sample_count"]) == (2 / 3, 3)
    assert on_time["is_final"] is False and on_time["area_code"] == ""
    hours = h.latest_kpi(RESOLUTION_KPI, "URENCO-QNA")
    assert (hours["value"], hours["sample_count"]) == ((25 + 49 + 7 * 24) / 3, 3)
    sat = h.latest_kpi(SATISFACTION_KPI, "URENCO-QNA")
    assert (sat["value"], sat["sample_count"]) == (3.0, 3)
    assert h.latest_kpi(ON_TIME_KPI, "SXD-QNA")["value"] == 1.0
    assert not [k for k in h.kpis if k["kpi"] == SATISFACTION_KPI and k["entity"] == "SXD-QNA"]
    # At midnight the day's value becomes final and the next day's window starts.
    h.run_to(DAY_END + 5 * M)
    final = [k for k in h.kpis if k["kpi"] == ON_TIME_KPI and k["entity"] == "URENCO-QNA"
             and k["window_end"] == DAY_END and k["is_final"]]
    assert [(k["value"], k["sample_count"]) for k in final] == [(2 / 3, 3)]
    assert h.latest_kpi(ON_TIME_KPI, "URENCO-QNA")["window_end"] == DAY_END + D


def test_unchanged_rolling_values_are_not_emitted_again() -> None:
    h = Harness()
    h.send(lifecycle("A", T0 - 2 * D, resolved=T0 - D, rating=4))
    h.run_to(T0 + H)
    n = len([k for k in h.kpis if k["kpi"] == ON_TIME_KPI])
    h.run_to(T0 + 3 * H)
    assert len([k for k in h.kpis if k["kpi"] == ON_TIME_KPI]) == n


# --- feedback.overdue ----------------------------------------------------------------------


def test_overdue_fires_at_due_escalates_after_three_days_and_resolves_on_resolution() -> None:
    h = Harness()
    h.send(lifecycle("A", T0, due_days=2, area="503", category="waste"))
    due = T0 + H + 2 * D
    h.run_to(due - M)
    assert h.rule_alerts(OVERDUE_RULE) == []
    h.run_to(due + 5 * M)  # timer-driven: no event needed
    (warning,) = h.rule_alerts(OVERDUE_RULE)
    assert (warning["severity"], warning["status"], warning["starts_at"],
            warning["updated_at"], warning["entity"], warning["area_code"]) == (
        "warning", "firing", due, due, "A", "503")
    assert warning["alert_id"] == alert_fingerprint(OVERDUE_RULE, {"report_id": "A"})
    assert "Phản ánh A" in warning["summary"] and "Thành phố Hội An" in warning["summary"]
    assert "Công ty Môi trường đô thị Quảng Nam" in warning["summary"]
    h.run_to(due + 3 * D + H)
    critical = h.rule_alerts(OVERDUE_RULE)[-1]
    assert (critical["severity"], critical["status"], critical["starts_at"],
            critical["updated_at"], critical["value"], critical["threshold"]) == (
        "critical", "firing", due, due + 3 * D, 3.0, 3.0)
    assert critical["alert_id"] == warning["alert_id"]
    resolved_at = due + 4 * D
    h.send([step("A-r", "A", "resolved", resolved_at, agency="URENCO-QNA", rating=2)])
    h.run_to(resolved_at + 5 * M)
    done = h.rule_alerts(OVERDUE_RULE)[-1]
    assert (done["status"], done["severity"], done["starts_at"], done["ends_at"],
            done["updated_at"]) == ("resolved", "critical", due, resolved_at, resolved_at)
    assert "đã được giải quyết" in done["summary"] and "4 ngày" in done["summary"]
    assert len(h.rule_alerts(OVERDUE_RULE)) == 3


def test_report_resolved_by_its_due_time_or_rejected_never_alerts() -> None:
    h = Harness()
    h.send(lifecycle("A", T0, due_days=1, resolved=T0 + H + D)  # exactly at the due time
           + lifecycle("B", T0, due_days=1, rejected=T0 + 5 * H))
    h.run_to(T0 + 6 * D)
    assert h.rule_alerts(OVERDUE_RULE) == []


def test_extending_the_due_time_resolves_and_a_later_overdue_is_a_new_episode() -> None:
    h = Harness()
    h.send(lifecycle("A", T0, due_days=1))
    due = T0 + H + D
    h.run_to(due + H)
    extended_at, new_due = due + 2 * H, due + 2 * D
    h.send([step("A-e", "A", "assigned", extended_at, agency="URENCO-QNA", due=new_due)])
    h.run_to(new_due + H)
    fired, resolved, again = h.rule_alerts(OVERDUE_RULE)
    assert (resolved["status"], resolved["ends_at"]) == ("resolved", extended_at)
    assert "gia hạn" in resolved["summary"]
    assert (again["status"], again["starts_at"]) == ("firing", new_due)
    assert fired["alert_id"] == again["alert_id"] and fired["starts_at"] == due


def test_a_resolution_reported_late_closes_the_episode_at_its_own_time() -> None:
    h = Harness()
    h.send(lifecycle("A", T0, due_days=1))
    due = T0 + H + D
    h.run_to(due + 4 * D)  # critical by now
    assert h.rule_alerts(OVERDUE_RULE)[-1]["severity"] == "critical"
    resolved_at = due + 2 * D  # happened before the escalation, sent only now
    h.send([step("A-r", "A", "resolved", resolved_at, agency="URENCO-QNA")])
    h.run_to(due + 4 * D + 10 * M)
    last = h.rule_alerts(OVERDUE_RULE)[-1]
    assert (last["status"], last["severity"], last["ends_at"]) == (
        "resolved", "warning", resolved_at)
    # still the newest record of the episode, so the alerts table ends resolved
    assert last["updated_at"] > due + 3 * D


def test_history_replayed_at_once_yields_the_same_episode_as_live() -> None:
    """A report resolved late, read only after the clock passed it all: the episode is still
    placed at its event times."""
    h = Harness()
    h.send(lifecycle("A", T0, due_days=1, resolved=T0 + H + 2 * D), tick=False)
    h.send(lifecycle("B", T0 + 10 * D), tick=False)
    h.run_to(T0 + 10 * D + H)
    fired, resolved = h.rule_alerts(OVERDUE_RULE)
    due = T0 + H + D
    assert (fired["status"], fired["starts_at"], fired["updated_at"]) == ("firing", due, due)
    assert (resolved["status"], resolved["ends_at"]) == ("resolved", T0 + H + 2 * D)


# --- the feedback clock --------------------------------------------------------------------


def test_a_partition_still_being_read_holds_the_clock_back() -> None:
    """Report A's resolution (before its due time) sits further down partition 1 while
    partition 0 has already reached ten days later: A must not look overdue meanwhile."""
    h = Harness()
    a = lifecycle("A", T0, due_days=1, resolved=T0 + 10 * H)
    h.send(a[:2], partition=1)
    h.send([step("X1-s", "X1", "submitted", T0 + 5 * D)], partition=0)  # timer: 5 days on
    h.send([step("Q-s", "Q", "submitted", T0 + 2 * H)], partition=1)
    h.send([step("X2-s", "X2", "submitted", T0 + 10 * D)], partition=0)
    h.send(a[2:], partition=1)
    h.run_to(T0 + 11 * D)
    assert h.rule_alerts(OVERDUE_RULE) == []


def test_clock_is_held_at_the_slowest_busy_partition() -> None:
    rules = FeedbackRules(REF.areas, {}, {})
    clock = rules.clock
    clock.saw((REPORT_TOPIC, 0), T0 + 10 * D)
    clock.saw((REPORT_TOPIC, 1), T0)
    assert clock.advance(T0 + 10 * D) == T0  # both busy: the slower one rules
    clock.saw((REPORT_TOPIC, 1), T0 + H)
    assert clock.advance(T0 + 10 * D) == T0 + H
    for _ in range(IDLE_TICKS):  # nothing new for IDLE_TICKS ticks: both idle
        last = clock.advance(T0 + 10 * D)
    assert last == T0 + 10 * D
    clock.saw((REPORT_TOPIC, 1), T0 + 2 * H)  # an old event later never moves it back
    assert clock.advance(T0 + 10 * D) == T0 + 10 * D


# --- feedback.surge ------------------------------------------------------------------------


def submissions(prefix: str, times: Iterable[datetime], area: str = "503",
                category: str = "flooding") -> list[dict[str, Any]]:
    return [step(f"{prefix}{i}-s", f"{prefix}{i}", "submitted", t, area=area, category=category)
            for i, t in enumerate(times)]


def test_surge_fires_at_the_fifth_report_in_an_hour_and_resolves_when_they_age_out() -> None:
    h = Harness()
    times = [T0 + m * M + 30 * timedelta(seconds=1) for m in (2, 3, 5, 6, 8, 10, 12)]
    h.send(submissions("F", times))
    h.run_to(T0 + 30 * M)
    fired = h.rule_alerts(SURGE_RULE)
    assert [(a["status"], a["value"], a["updated_at"]) for a in fired] == [
        ("firing", 5.0, T0 + 9 * M), ("firing", 6.0, T0 + 11 * M),
        ("firing", 7.0, T0 + 13 * M)]
    first = fired[0]
    assert (first["starts_at"], first["entity"], first["area_code"], first["threshold"]) == (
        T0 + 9 * M, "flooding", "503", 5.0)
    assert first["alert_id"] == alert_fingerprint(SURGE_RULE, {"area_code": "503",
                                                               "category": "flooding"})
    assert "ngập úng tại Thành phố Hội An" in first["summary"]
    # The count falls to 4 when the report of 08:05:30 leaves the hour: at 09:06.
    h.run_to(T0 + 2 * H)
    resolved = h.rule_alerts(SURGE_RULE)[-1]
    assert (resolved["status"], resolved["starts_at"], resolved["ends_at"], resolved["value"]
            ) == ("resolved", T0 + 9 * M, T0 + H + 6 * M, 4.0)
    assert len(h.rule_alerts(SURGE_RULE)) == 4


def test_four_reports_or_other_areas_and_categories_do_not_surge() -> None:
    h = Harness()
    h.send(submissions("F", [T0 + k * M for k in range(1, 5)])
           + submissions("G", [T0 + k * M for k in range(1, 4)], area="502")
           + submissions("W", [T0 + k * M for k in range(1, 4)], category="waste"))
    h.run_to(T0 + 3 * H)
    assert h.rule_alerts(SURGE_RULE) == []


def test_surge_needs_more_than_three_times_the_seven_day_hourly_mean() -> None:
    h = Harness()
    # 336 reports in the 7 days before 08:00 (every 30 minutes up to 07:00): 2 per hour, so
    # 3 × mean = 6 while the first of them is still in the baseline (until 08:30).
    base = [T0 - 7 * D - 30 * M + k * 30 * M for k in range(336)]
    h.send(submissions("B", base), tick=False)
    h.run_to(T0)
    h.send(submissions("F", [T0 + k * M for k in range(1, 7)]))  # 6 in the hour: not > 6
    h.run_to(T0 + 7 * M)
    assert h.rule_alerts(SURGE_RULE) == []
    h.send(submissions("G", [T0 + 8 * M]))  # the 7th
    h.run_to(T0 + 20 * M)
    (fired,) = h.rule_alerts(SURGE_RULE)
    assert (fired["value"], fired["threshold"], fired["starts_at"]) == (7.0, 6.0, T0 + 8 * M)


# --- holds, restart, stale re-sends --------------------------------------------------------


def test_events_are_held_until_closed_and_outside_the_30_day_horizon() -> None:
    h = Harness()
    h.send(lifecycle("A", T0, resolved=T0 + 2 * D))
    h.send(lifecycle("B", T0 + H))  # stays open
    assert h.proc.held_by_rules == 5
    h.run_to(T0 + 32 * D)  # 4 Dec: A (closed 4 Nov, 09:00) is in yesterday's 30-day window
    assert h.proc.held_by_rules == 5
    h.run_to(T0 + 33 * D + 17 * H)  # 6 Dec, 01:00 local: the horizon starts 6 Nov
    assert h.proc.held_by_rules == 2  # A let go; B still open
    assert {pos[1] for pos in h.released} >= {0, 1, 2}
    # A re-sent step of A (closed, released) is ignored; B's events are still held
    h.send([lifecycle("A", T0)[1]])
    assert h.proc.held_by_rules == 2


def test_restart_replays_held_events_without_repeating_alert_records() -> None:
    h = Harness()
    events = lifecycle("A", T0, due_days=1) + submissions("F", [T0 + k * M for k in range(5)])
    h.send(events)
    h.run_to(T0 + H + D + 10 * M)
    before = list(h.alerts)
    assert {a["rule"] for a in before} == {OVERDUE_RULE, SURGE_RULE}
    # A new worker: restore the latest alert records, replay the same events.
    latest: dict[tuple[str, datetime], dict[str, Any]] = {}
    for a in before:
        latest[(a["alert_id"], a["starts_at"])] = a
    h2 = Harness()
    h2.wall[0] = h.wall[0]
    h2.proc.restore_alerts(list(latest.values()))
    h2.send(events, tick=False)
    h2.run_to(T0 + H + D + 10 * M)
    assert h2.alerts == []
    # and the episode goes on from where it was: critical three days later
    h2.run_to(T0 + H + 4 * D + M)
    assert [(a["rule"], a["severity"]) for a in h2.alerts] == [(OVERDUE_RULE, "critical")]


def test_report_topic_keeps_60_days_in_kafka() -> None:
    from ioc.infra.runtime import topic_configs
    from ioc.infra.settings import Settings
    from ioc.schemas.catalogue import Catalogue

    assert feedback_domain(REF).retention == {REPORT_TOPIC: timedelta(days=60)}
    configs = topic_configs(Settings(topic_prefix="x."), Catalogue())
    assert configs["x." + REPORT_TOPIC]["retention.ms"] == str(60 * 24 * 3600 * 1000)


def test_no_output_before_any_report_is_seen() -> None:
    rule = FeedbackRules(REF.areas, {}, {})
    proc = Processor([Domain("feedback", (REPORT_TOPIC,), (), (rule,))],
                     clock=lambda: T0)
    proc.handle("ioc.other.v1", {"event_id": "x", "occurred_at": T0}, ("ioc.other.v1", 0), 0)
    assert proc.tick().kpis == []


@pytest.mark.parametrize("status", ["assigned", "in_progress"])
def test_steps_that_hand_work_to_an_agency_must_name_it(status: str) -> None:
    from ioc.schemas.validation import semantic_errors

    ev = step("e", "A", status, T0, due=T0 + D)
    assert any("assigned_agency" in p for p in semantic_errors(REPORT_TOPIC, ev))
    assert semantic_errors(REPORT_TOPIC, dict(ev, assigned_agency="CA-QNA")) == []
    bad = dict(ev, assigned_agency="CA-QNA", rating=4, reporter_pseudonym="0905123456")
    found = semantic_errors(REPORT_TOPIC, bad)
    assert any(p.startswith("rating") for p in found)
    assert any(p.startswith("reporter_pseudonym") for p in found)
