"""The econ subsystem on the pure processor: exact year-to-date KPIs, revisions, both alert
rules firing and resolving, the timer-driven missing report under a controlled clock, holds,
restart and rebalance."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.infra.reference import load_areas, load_reference
from ioc.infra.reference_econ import EconReference, Indicator, load_econ
from ioc.infra.runtime import topic_configs
from ioc.infra.settings import Settings
from ioc.schemas.catalogue import Catalogue
from ioc.streams.domain import Domain
from ioc.streams.econ import (
    BEHIND_PLAN_RULE,
    REPORT_MISSING_RULE,
    REPORT_TOPIC,
    RETENTION,
    IndicatorRule,
    econ_domain,
    month_start,
    number_vi,
    report_deadline,
    year_closes,
    year_released,
)
from ioc.streams.processor import Processor
from ioc.streams.registry import build_domains
from ioc.streams.windows import LOCAL_TZ

AREAS = load_areas()
TP = (REPORT_TOPIC, 0)


def _ind(code: str, name: str, unit: str, aggregation: str = "sum",
         frequency: str = "monthly", required: bool = True, behind: bool = False,
         direction: str = "higher") -> Indicator:
    return Indicator(code, name, unit, aggregation, frequency, "Sở Tài chính", required,
                     behind, direction)


REF = EconReference(
    indicators={
        "disb": _ind("disb", "Giải ngân vốn đầu tư công", "tỷ đồng", behind=True),
        "exp": _ind("exp", "Kim ngạch xuất khẩu", "triệu USD"),
        "cpi": _ind("cpi", "Chỉ số giá tiêu dùng", "%", "average", direction="lower"),
        "grdp": _ind("grdp", "Tăng trưởng GRDP", "%", "latest", "quarterly", required=False),
    },
    targets={("disb", "513", 2026): 480.0, ("disb", "513", 2027): 500.0,
             ("exp", "", 2026): 2000.0, ("cpi", "", 2026): 4.0, ("grdp", "", 2026): 8.0},
    actuals={("disb", "513", "2025-01"): 30.0, ("disb", "513", "2025-02"): 20.0,
             ("disb", "513", "2025-03"): 25.0},
)


def local(y: int, mo: int, d: int, h: int = 9) -> datetime:
    return datetime(y, mo, d, h, tzinfo=LOCAL_TZ).astimezone(UTC)


class Harness:
    """A processor with the econ rule, a controlled wall clock and an offset counter."""

    def __init__(self, ref: EconReference = REF, start: datetime | None = None) -> None:
        self.clock = [start or local(2026, 1, 1)]
        self.rule = IndicatorRule(ref, AREAS)
        self.proc = Processor([Domain("econ", (REPORT_TOPIC,), (), (self.rule,))],
                              clock=lambda: self.clock[0])
        self.offset = 0
        self.kpis: dict[tuple[str, str, str, datetime], dict[str, Any]] = {}
        self.alerts: list[dict[str, Any]] = []
        self.released: list[Any] = []

    def send(self, indicator: str, period: str, value: float, at: datetime, area: str = "",
             revision: int = 0, unit: str | None = None, event_id: str | None = None,
             tp: tuple[str, int] = TP) -> list[dict[str, Any]]:
        unit = unit if unit is not None else REF.indicators.get(indicator, _ind(
            indicator, "", "x")).unit
        ev = {"event_id": event_id or f"{indicator}-{area}-{period}-r{revision}",
              "occurred_at": at, "source": "STC-QNA", "area_code": area,
              "indicator_code": indicator, "period": period, "value": value, "unit": unit,
              "reporting_agency": "Sở Tài chính", "revision": revision}
        self.offset += 1
        step = self.proc.handle(REPORT_TOPIC, ev, tp, self.offset)
        self.alerts.extend(step.alerts)
        self.released.extend(step.released)
        return step.alerts

    def tick(self, n: int = 1) -> list[dict[str, Any]]:
        """``n`` timer ticks (a second apart on the wall clock); returns their alerts."""
        out = []
        for _ in range(n):
            self.clock[0] += timedelta(seconds=1)
            step = self.proc.tick()
            for k in step.kpis:
                self.kpis[(k["kpi"], k["area_code"], k["entity"], k["window_start"])] = k
            out.extend(step.alerts)
            self.released.extend(step.released)
        self.alerts.extend(out)
        return out

    def wait(self, delta: timedelta) -> list[dict[str, Any]]:
        """Quiet time: the timer clock moves on at wall speed."""
        self.clock[0] += delta
        return self.tick(2)

    def until(self, when: datetime) -> list[dict[str, Any]]:
        """Quiet until the timer clock reads ``when`` (two ticks, the second at ``when``)."""
        now = self.proc.timer_now()
        assert now is not None
        self.clock[0] += when - now - timedelta(seconds=2)
        return self.tick(2)

    def kpi(self, kpi: str, entity: str, area: str = "", year: int = 2026) -> dict[str, Any]:
        return self.kpis[(kpi, area, entity, month_start(year, 1))]


# -- calendar and formatting -----------------------------------------------------------------


def test_calendar_is_local_and_deadline_is_five_days_after_month_end() -> None:
    assert month_start(2026, 1) == datetime(2025, 12, 31, 17, tzinfo=UTC)
    assert month_start(2026, 13) == month_start(2027, 1)
    # October's report is on time through 5 November (local); missing from 6 November 00:00.
    assert report_deadline(2026, 10) == datetime(2026, 11, 5, 17, tzinfo=UTC)
    assert report_deadline(2026, 12) == datetime(2027, 1, 5, 17, tzinfo=UTC)
    assert year_closes(2026) == datetime(2027, 1, 31, 17, tzinfo=UTC)
    assert year_released(2025) == year_closes(2026) + timedelta(days=1)


def test_vietnamese_number_format() -> None:
    assert number_vi(27000) == "27.000"
    assert number_vi(1234.5) == "1.234,5"
    assert number_vi(7.2) == "7,2"


# -- KPIs --------------------------------------------------------------------------------------


def test_year_to_date_progress_elapsed_share_and_yoy_exact() -> None:
    h = Harness()
    h.send("disb", "2026-01", 40.0, local(2026, 2, 3), area="513")
    h.send("disb", "2026-02", 40.0, local(2026, 3, 4), area="513")
    h.tick()
    ytd = h.kpi("econ.ytd_value", "disb", "513")
    assert (ytd["value"], ytd["sample_count"], ytd["window"]) == (80.0, 2, "ytd")
    assert ytd["window_start"] == month_start(2026, 1)
    assert ytd["window_end"] == month_start(2026, 3)  # end of February, local
    assert ytd["is_final"] is False
    assert h.kpi("econ.progress", "disb", "513")["value"] == 80.0 / 480.0
    assert h.kpi("econ.elapsed_share", "disb", "513")["value"] == 2 / 12
    # same months of 2025 from the actuals file: 30 + 20
    assert h.kpi("econ.yoy_growth", "disb", "513")["value"] == 80.0 / 50.0 - 1


def test_last_year_report_wins_over_actuals_and_a_gap_means_no_yoy() -> None:
    h = Harness()
    h.send("disb", "2025-02", 30.0, local(2025, 3, 2), area="513")  # actuals say 20
    h.send("disb", "2026-01", 40.0, local(2026, 2, 3), area="513")
    h.send("disb", "2026-02", 40.0, local(2026, 3, 4), area="513")
    h.tick()
    assert h.kpi("econ.yoy_growth", "disb", "513")["value"] == 80.0 / 60.0 - 1
    # April 2025 has neither a report nor an actual figure: no YoY once April 2026 is in.
    h.send("disb", "2026-04", 40.0, local(2026, 5, 4), area="513")
    h.kpis.clear()
    h.tick()
    assert ("econ.yoy_growth", "513", "disb", month_start(2026, 1)) not in h.kpis
    assert h.kpi("econ.ytd_value", "disb", "513")["value"] == 120.0
    assert h.kpi("econ.elapsed_share", "disb", "513")["value"] == 4 / 12  # April reported


def test_latest_revision_wins_then_latest_time_and_resent_reports_change_nothing() -> None:
    h = Harness()
    h.send("exp", "2026-01", 150.0, local(2026, 2, 3))
    h.send("exp", "2026-01", 170.0, local(2026, 2, 10), revision=1)
    h.send("exp", "2026-01", 999.0, local(2026, 2, 20), revision=0, event_id="late-r0")
    h.tick()
    assert h.kpi("econ.ytd_value", "exp")["value"] == 170.0
    h.send("exp", "2026-01", 175.0, local(2026, 2, 12), revision=1, event_id="r1-again")
    h.tick()
    assert h.kpi("econ.ytd_value", "exp")["value"] == 175.0  # same revision, later time
    h.kpis.clear()
    h.send("exp", "2026-01", 175.0, local(2026, 2, 12), revision=1, event_id="r1-again")
    h.tick()
    assert h.kpis == {}  # a re-sent report: nothing to publish


def test_average_and_latest_aggregations() -> None:
    h = Harness()
    for month, cpi in ((1, 3.0), (2, 3.5), (3, 4.0)):
        h.send("cpi", f"2026-{month:02d}", cpi, local(2026, month + 1, 2))
    h.send("grdp", "2026-Q1", 7.0, local(2026, 4, 5))
    h.send("grdp", "2026-Q2", 7.5, local(2026, 7, 5))
    h.tick()
    cpi = h.kpi("econ.ytd_value", "cpi")
    assert (cpi["value"], cpi["sample_count"]) == (3.5, 3)
    assert h.kpi("econ.progress", "cpi")["value"] == 3.5 / 4.0
    grdp = h.kpi("econ.ytd_value", "grdp")
    assert (grdp["value"], grdp["window_end"]) == (7.5, month_start(2026, 7))
    assert h.kpi("econ.progress", "grdp")["value"] == 7.5 / 8.0
    assert ("econ.yoy_growth", "", "grdp", month_start(2026, 1)) not in h.kpis
    assert ("econ.elapsed_share", "", "cpi", month_start(2026, 1)) not in h.kpis
    # the full-year figure counts as later than the fourth quarter's
    h.send("grdp", "2026", 7.9, local(2027, 1, 20))
    h.send("grdp", "2026-Q4", 8.1, local(2027, 1, 21))
    h.tick()
    assert h.kpi("econ.ytd_value", "grdp")["value"] == 7.9


@pytest.mark.parametrize(("indicator", "period", "unit"), [
    ("nope", "2026-01", "x"),            # not in the catalogue
    ("exp", "2026-01", "tỷ đồng"),       # wrong unit
    ("exp", "2026-Q1", "triệu USD"),     # a quarter for a monthly indicator
    ("grdp", "2026-03", "%"),            # a month for a quarterly indicator
])
def test_reports_that_do_not_fit_the_catalogue_are_ignored_and_not_held(
        indicator: str, period: str, unit: str) -> None:
    h = Harness()
    h.send(indicator, period, 1.0, local(2026, 4, 2), unit=unit)
    h.tick()
    assert h.kpis == {}
    assert h.released == [(TP, 1)]
    assert h.proc.held_by_rules == 0


# -- behind plan ---------------------------------------------------------------------------


def test_behind_plan_fires_updates_and_resolves_with_a_corrected_report() -> None:
    h = Harness()
    assert h.send("disb", "2026-01", 40.0, local(2026, 2, 3), area="513") == []
    assert h.send("disb", "2026-02", 40.0, local(2026, 3, 3), area="513") == []
    # March: 90/480 = 18.75 % < 0.8 × 3/12 = 20 % → warning
    [fired] = h.send("disb", "2026-03", 10.0, local(2026, 4, 3), area="513")
    assert (fired["rule"], fired["status"], fired["severity"]) == (BEHIND_PLAN_RULE, "firing",
                                                                   "warning")
    assert (fired["value"], fired["threshold"]) == (0.1875, 0.8 * (3 / 12))
    assert fired["starts_at"] == local(2026, 4, 3)
    assert (fired["domain"], fired["area_code"], fired["entity"]) == ("econ", "513", "disb")
    assert fired["summary"] == (
        "Giải ngân vốn đầu tư công tại Huyện Thăng Bình đạt 19% kế hoạch năm 2026 "
        "(90/480 tỷ đồng), chậm so với tiến độ 25% (3/12 tháng; ngưỡng cảnh báo 20%).")
    # April still behind: the same episode is updated
    [update] = h.send("disb", "2026-04", 20.0, local(2026, 5, 4), area="513")
    assert (update["alert_id"], update["starts_at"], update["status"]) == (
        fired["alert_id"], fired["starts_at"], "firing")
    assert update["value"] == 110.0 / 480.0 and update["updated_at"] == local(2026, 5, 4)
    # a corrected March (revision 1): 140/480 = 29.2 % ≥ 0.8 × 4/12 = 26.7 % → resolved
    [resolved] = h.send("disb", "2026-03", 40.0, local(2026, 5, 10), area="513", revision=1)
    assert (resolved["status"], resolved["starts_at"]) == ("resolved", fired["starts_at"])
    assert resolved["ends_at"] == resolved["updated_at"] == local(2026, 5, 10)
    assert resolved["value"] == 140.0 / 480.0
    assert "không còn chậm tiến độ" in resolved["summary"]
    # May back to behind → a new episode with a new start
    [again] = h.send("disb", "2026-05", 0.0, local(2026, 6, 4), area="513")
    assert again["alert_id"] == fired["alert_id"] and again["starts_at"] == local(2026, 6, 4)


def test_an_episode_never_goes_back_in_time_with_out_of_order_reports() -> None:
    h = Harness()
    h.send("disb", "2026-01", 40.0, local(2026, 2, 3), area="513")
    h.send("disb", "2026-02", 40.0, local(2026, 3, 3), area="513")
    [fired] = h.send("disb", "2026-03", 10.0, local(2026, 4, 3), area="513")
    # a correction uploaded late, stamped with its original (earlier) submission time
    [resolved] = h.send("disb", "2026-03", 40.0, local(2026, 4, 2), area="513", revision=1)
    assert resolved["status"] == "resolved"
    assert resolved["ends_at"] == resolved["updated_at"] == fired["starts_at"]


def test_behind_plan_resolves_when_the_year_closes_and_kpis_become_final() -> None:
    h = Harness(start=local(2026, 12, 1))
    h.send("disb", "2026-01", 10.0, local(2026, 12, 1), area="513")  # late but counts
    [fired] = h.alerts
    assert fired["status"] == "firing"
    h.tick()
    assert h.kpi("econ.ytd_value", "disb", "513")["is_final"] is False
    out = h.until(year_closes(2026))
    [closed] = [a for a in out if a["rule"] == BEHIND_PLAN_RULE]
    assert (closed["status"], closed["ends_at"]) == ("resolved", year_closes(2026))
    assert closed["summary"].startswith("Năm kế hoạch 2026 đã khép lại")
    assert h.kpi("econ.ytd_value", "disb", "513")["is_final"] is True
    # a report sent after the close updates the KPIs but raises nothing
    assert h.send("disb", "2026-02", 0.0, local(2027, 2, 3), area="513") == []


def test_indicators_without_behind_plan_or_target_never_alert() -> None:
    h = Harness()
    h.send("exp", "2026-01", 1.0, local(2026, 2, 3))       # far behind, but not applicable
    h.send("disb", "2026-01", 1.0, local(2026, 2, 3), area="502")  # no target for 502
    h.tick()
    assert h.alerts == []
    assert ("econ.progress", "502", "disb", month_start(2026, 1)) not in h.kpis


# -- report missing (timer) ----------------------------------------------------------------


def _on_plan(h: Harness, months: range, area: str = "513") -> None:
    for m in months:
        h.send("disb", f"2026-{m:02d}", 45.0, local(2026, m + 1, 3), area=area)
        h.send("exp", f"2026-{m:02d}", 170.0, local(2026, m + 1, 3))
        h.send("cpi", f"2026-{m:02d}", 3.0, local(2026, m + 1, 3))


def test_missing_report_fires_by_timer_at_the_deadline_and_resolves_when_it_comes() -> None:
    h = Harness(start=local(2026, 10, 1))
    _on_plan(h, range(1, 10))
    h.send("exp", "2026-10", 170.0, local(2026, 11, 2))
    h.send("cpi", "2026-10", 3.0, local(2026, 11, 2))
    h.tick(2)
    # 5 November 23:59 local: still on time
    assert h.until(report_deadline(2026, 10) - timedelta(minutes=1)) == []
    fired = h.until(report_deadline(2026, 10))
    assert [(a["rule"], a["status"], a["area_code"], a["entity"]) for a in fired] == [
        (REPORT_MISSING_RULE, "firing", "513", "disb")]
    [a] = fired
    assert a["starts_at"] == a["updated_at"] == report_deadline(2026, 10)
    assert a["summary"] == (
        "Quá hạn báo cáo tháng 10/2026 «Giải ngân vốn đầu tư công» của Huyện Thăng Bình: "
        "chưa nhận được số liệu (hạn ngày 05/11/2026; đơn vị chủ trì: Sở Tài chính).")
    assert h.wait(timedelta(days=3)) == []  # fires once
    [resolved] = h.send("disb", "2026-10", 45.0, local(2026, 11, 12, 10), area="513")
    assert (resolved["status"], resolved["alert_id"]) == ("resolved", a["alert_id"])
    assert resolved["ends_at"] == local(2026, 11, 12, 10)
    assert resolved["summary"].endswith("ngày 12/11/2026, trễ 7 ngày so với hạn 05/11/2026.")


def test_missing_check_waits_for_a_quiet_tick_and_for_the_indicator_to_be_seen() -> None:
    h = Harness(start=local(2026, 11, 10))
    # Reports arrive after the deadline passed: the tick right after them does not judge.
    h.send("exp", "2026-09", 170.0, local(2026, 11, 10))
    first = h.proc.tick()
    assert first.alerts == []
    second = h.tick()
    # exp and cpi are province-wide required; disb has not been seen at all: not checked.
    assert sorted((a["entity"], a["area_code"]) for a in second) == [("exp", "")]
    assert "tháng 10/2026" in second[0]["summary"]  # September is older than the lookback


def test_no_missing_alert_for_a_report_received_before_the_deadline() -> None:
    h = Harness(start=local(2026, 11, 1))
    _on_plan(h, range(1, 11))
    h.tick()
    assert h.until(local(2026, 11, 15)) == []


# -- holds, restart, rebalance ---------------------------------------------------------------


def test_reports_are_held_until_the_next_year_closes() -> None:
    h = Harness(start=local(2026, 2, 1))
    h.send("disb", "2026-01", 45.0, local(2026, 2, 3), area="513")
    h.send("disb", "2027-01", 45.0, local(2027, 2, 3), area="513")
    h.tick()
    assert h.released == [] and h.proc.held_by_rules == 2
    h.until(year_released(2026) - timedelta(minutes=1))
    assert h.released == []
    h.until(year_released(2026))
    assert h.released == [(TP, 1)]
    # a report for a released year is not held at all
    h.send("disb", "2026-02", 45.0, local(2028, 2, 3), area="513")
    assert h.released[-1] == (TP, 3)


def test_yoy_is_final_at_the_close_and_not_recomputed_once_last_year_is_let_go() -> None:
    h = Harness(start=local(2026, 2, 1))
    h.send("disb", "2025-01", 50.0, local(2025, 2, 3), area="513")  # actuals say 30
    h.send("disb", "2026-01", 40.0, local(2026, 2, 3), area="513")
    h.tick()
    assert h.kpi("econ.yoy_growth", "disb", "513")["value"] == 40 / 50 - 1
    h.until(year_closes(2026))
    final = h.kpi("econ.yoy_growth", "disb", "513")
    assert (final["value"], final["is_final"]) == (40 / 50 - 1, True)
    h.until(year_released(2025))
    assert h.released == [(TP, 1)]  # 2025's report
    # A worker started later replays 2026's report only: no growth against the actuals file.
    later = Harness(start=h.clock[0])
    later.send("disb", "2026-01", 40.0, local(2026, 2, 3), area="513")
    later.until(year_released(2025) + timedelta(days=1))
    assert later.kpi("econ.ytd_value", "disb", "513")["is_final"] is True
    assert ("econ.yoy_growth", "513", "disb", month_start(2026, 1)) not in later.kpis


def _history(h: Harness) -> None:
    h.send("disb", "2026-01", 40.0, local(2026, 2, 3), area="513")
    h.send("disb", "2026-02", 40.0, local(2026, 3, 3), area="513")
    h.send("disb", "2026-03", 10.0, local(2026, 4, 3), area="513")   # behind: fires
    h.send("exp", "2026-01", 170.0, local(2026, 2, 3))
    h.send("cpi", "2026-01", 3.0, local(2026, 2, 3))


def test_restart_replays_held_reports_into_the_same_kpis_without_repeating_alerts() -> None:
    first = Harness(start=local(2026, 4, 1))
    _history(first)
    first.tick()
    first.until(local(2026, 4, 13))  # exp/cpi of February and March are missing
    assert {(a["rule"], a["status"]) for a in first.alerts} == {
        (BEHIND_PLAN_RULE, "firing"), (REPORT_MISSING_RULE, "firing")}
    assert first.released == []
    # a new worker: the alert log is restored, every held report is replayed
    second = Harness(start=first.clock[0])
    second.rule.restore(first.alerts)
    _history(second)
    second.tick()
    second.until(local(2026, 4, 13))
    assert second.alerts == []
    assert {k: v["value"] for k, v in second.kpis.items()} == {
        k: v["value"] for k, v in first.kpis.items()}
    # the resumed episodes go on: a corrected March resolves the behind-plan alert, the
    # missing February reports resolve theirs
    [resolved] = second.send("disb", "2026-03", 40.0, local(2026, 4, 12), area="513",
                             revision=1)
    assert (resolved["status"], resolved["starts_at"]) == ("resolved", local(2026, 4, 3))
    missing = [a for a in first.alerts if a["rule"] == REPORT_MISSING_RULE]
    assert sorted((a["entity"], a["starts_at"]) for a in missing) == [
        ("cpi", report_deadline(2026, 2)), ("cpi", report_deadline(2026, 3)),
        ("exp", report_deadline(2026, 2)), ("exp", report_deadline(2026, 3))]
    for a in missing:
        month = (a["starts_at"] - timedelta(days=6)).astimezone(LOCAL_TZ).month
        [done] = second.send(a["entity"], f"2026-{month:02d}", 1.0, local(2026, 4, 12),
                             area=a["area_code"])
        assert (done["alert_id"], done["status"]) == (a["alert_id"], "resolved")


def test_rebalance_forgets_the_indicators_of_lost_partitions() -> None:
    h = Harness(start=local(2026, 2, 1))
    h.send("disb", "2026-01", 1.0, local(2026, 2, 3), area="513", tp=(REPORT_TOPIC, 0))
    h.send("exp", "2026-01", 1.0, local(2026, 2, 3), tp=(REPORT_TOPIC, 1))
    h.proc.drop_partitions({(REPORT_TOPIC, 0)})
    assert {k[0] for k in h.rule.series} == {"exp"}
    assert h.rule.owned == {"exp"} and h.rule.behind == {}
    h.tick()
    h.until(local(2026, 3, 15))
    assert {a["entity"] for a in h.alerts if a["rule"] == REPORT_MISSING_RULE} == {"exp"}


# -- the domain as shipped ---------------------------------------------------------------------


def test_shipped_domain_is_registered_and_its_topic_kept_long_enough(tmp_path: Any) -> None:
    ref = load_reference()
    names = [d.name for d in build_domains(ref)]
    assert "econ" in names
    domain = econ_domain(ref)
    assert domain.retention == {REPORT_TOPIC: RETENTION}
    # a January report sent in January is needed until 1 February two years later
    assert year_released(2026) - month_start(2026, 1) < RETENTION
    configs = topic_configs(Settings(data_dir=tmp_path, topic_prefix="p."), Catalogue())
    assert configs["p." + REPORT_TOPIC]["retention.ms"] == str(
        int(RETENTION.total_seconds() * 1000))
    econ = load_econ()
    assert {"public_investment_disbursement", "budget_revenue"} <= {
        c for c, i in econ.indicators.items() if i.behind_plan}


def test_summary_uses_the_example_wording() -> None:
    h = Harness(REF, start=local(2026, 9, 1))
    for m in range(1, 9):
        h.send("disb", f"2026-{m:02d}", 24.6, local(2026, m + 1, 3), area="513")
    firing = [a for a in h.alerts if a["status"] == "firing"]
    last: Mapping[str, Any] = firing[-1]
    assert "đạt 41% kế hoạch năm 2026" in last["summary"]
    assert "chậm so với tiến độ 67%" in last["summary"]
