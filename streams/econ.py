"""Socio-economic indicators (``econ``): year-to-date progress against annual targets.

Input: ``ioc.econ.indicator_report.v1`` — one figure of one indicator for one period (a month
``YYYY-MM``, a quarter ``YYYY-Qn`` or a year ``YYYY``, local calendar) and one area (empty:
province-wide), as the responsible agency reports it. Reference data (see
:mod:`ioc.infra.reference_econ`): the indicator catalogue (unit, how the year to date is formed,
reporting frequency, whether monthly reports are required and whether "behind plan" applies),
annual targets per indicator, area and year, and past actual figures for year-on-year growth.

**Which figure counts.** Per (indicator, area, period) the report with the highest ``revision``
wins, then the latest ``occurred_at`` (then the larger ``event_id``, so ties are
deterministic); a re-sent event changes nothing. Reports are ignored (stored raw, but no KPI or
alert) when the indicator is not in the catalogue, the period form does not fit its frequency
(monthly indicators take ``YYYY-MM``; quarterly ones ``YYYY-Qn`` or the full-year ``YYYY``;
annual ones ``YYYY``), or the unit differs from the catalogue's — a figure in another unit
would corrupt the sums. Each is logged once per indicator. The province row (area "") is an
independent report of the province's figure, never the sum of the districts.

KPIs — rule-computed running state (``kpi_record``), window ``ytd``: ``window_start`` = 1 January
00:00 Asia/Ho_Chi_Minh of the year, ``window_end`` = the end of the latest period reported (the
1st of the following month, local midnight), so there is one row per (KPI, area, indicator,
year) and each new report replaces it. ``area_code`` = the report's area, ``entity`` = the
indicator code, ``sample_count`` = the number of periods in the year to date; ``is_final``
once the year is closed (see below). Records are published on the next timer tick after a change,
never more than once per tick per key; ``computed_at`` is the processor's timer clock (event
time carried forward, never going back), so the newest state of a key always wins.

- ``econ.ytd_value`` — the year to date by the indicator's aggregation: ``sum`` of the monthly
  figures (revenue, disbursement, exports, arrivals, new enterprises), ``average`` of them (CPI:
  "bình quân … tháng"), or the ``latest`` period's figure (a reported rate: GRDP growth; an
  annual figure counts as later than the fourth quarter's).
- ``econ.progress`` = ``econ.ytd_value`` / annual target of (indicator, area, year); only where
  a target exists. For a ceiling such as CPI (``direction = lower``) it reads "share of the
  ceiling used".
- ``econ.elapsed_share`` = months of the year covered by the reports / 12 = the month number of
  the latest month reported / 12 (reports through August: 8/12) — the pro-rata plan that
  progress is compared with. ``sum`` indicators with a target only.
- ``econ.yoy_growth`` = year to date / the same months of the previous year − 1, ``sum``
  indicators only (for rates and averages the reported figure already is a year-on-year
  comparison). "The same months" are the months that have a report this year; each month of the
  previous year takes the report in force for it, or else the figure of ``econ_actuals.csv``;
  if any of those months has neither (or their total is not positive), no value is emitted.
  The value published when the year closes is final (the previous year's reports are let go
  a day later).

Alerts (Vietnamese summaries naming the indicator, the place, the values and the threshold):

- ``econ.behind_plan`` (warning; labels indicator, area, year) — for indicators with
  ``behind_plan = 1`` and a target: evaluated on every report that changes the year to date;
  fires when ``progress < 0.8 × elapsed share`` (``value`` = progress, ``threshold`` =
  0.8 × elapsed share; ``starts_at`` = the report's ``occurred_at``). While it stays behind, each
  later report updates the same episode. It resolves at the first report (a later month or a
  correction with a higher revision) that brings progress back to ≥ 0.8 × elapsed share
  (``ends_at`` = that report's ``occurred_at``), or when the year closes. Reports submitted
  after their year closed update the KPIs but raise no alert.
- ``econ.report_missing`` (warning; labels indicator, area, month) — every (indicator, area)
  with ``monthly_required = 1`` and a target for the year must report every month M of that
  year. Deadline: 5 days after the end of M, i.e. 00:00 local on the 6th of M+1 (reports
  through the 5th are on time). Checked by the timer (``on_timer``), not by an incoming event:
  once the timer clock passes the deadline with no report for that month, it fires
  (``starts_at`` = ``updated_at`` = the deadline, so a restart reproduces the same record). It
  resolves when the report arrives (``ends_at`` = the report's ``occurred_at``, or the deadline
  if that is earlier), or when the year's state is released. To alert on the current reporting
  round rather than on history, a deadline is checked only within :data:`MISSING_LOOKBACK`
  (40 days) after it, and only until the year closes. The rule checks an indicator only once
  it has seen a report of that indicator on a partition this worker owns (so that with several
  workers only the owner checks it, and a deployment that never sends an indicator gets no
  alerts for it), and only on a timer tick with no report handled since the previous tick (so
  that after a restart the replay of the held reports completes before deadlines are judged).

**Time line of a plan year Y.** Reports of Y are held (``Holds``, key
``indicator|area|year``, which follows the topic's partition key ``indicator_code``) from their
arrival. Y *closes* on 1 February Y+1 00:00 local (a month after December's deadline, for
corrections): behind-plan episodes of Y resolve, KPIs of Y are re-published with
``is_final = 1``, no new alert concerns Y. Y's reports stay held for Y+1's year-on-year growth
and are *released* a day after Y+1 closes (2 February Y+2, once Y+1's final year-on-year growth
is published): their state is dropped, later reports for Y are ignored, and Y+1's growth is no
longer re-published. A report is therefore held at most about 25 months (a January report sent
in January), and the topic's retention is :data:`RETENTION` (800 days) so that a restarted
worker replays every held report and rebuilds the year to date exactly.

**Restart.** The replay of the held reports rebuilds the same behind-plan episodes (their
times are report times); ``restore`` reads the latest alert records, resumes firing
missing-report episodes, and keeps records the alert log already holds (same or older
``updated_at`` for that alert) from being published again during the replay. Changing targets
in the reference files takes effect at the next report of a series.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.infra.reference import Area, ReferenceData
from ioc.infra.reference_econ import EconReference, Indicator, load_econ
from ioc.schemas.checks_econ import Period, parse_period
from ioc.streams.domain import BaseRule, Domain, Record
from ioc.streams.rules import alert_record, kpi_record
from ioc.streams.windows import LOCAL_TZ

log = logging.getLogger(__name__)

REPORT_TOPIC = "ioc.econ.indicator_report.v1"

YTD_WINDOW = "ytd"
YTD_VALUE_KPI = "econ.ytd_value"
PROGRESS_KPI = "econ.progress"
ELAPSED_SHARE_KPI = "econ.elapsed_share"
YOY_GROWTH_KPI = "econ.yoy_growth"

BEHIND_PLAN_RULE = "econ.behind_plan"
REPORT_MISSING_RULE = "econ.report_missing"

BEHIND_FACTOR = 0.8
"""Behind plan when progress < this × elapsed share of the year."""
GRACE_DAYS = 5
"""A month's report is due by the end of the 5th day after the month ends."""
MISSING_LOOKBACK = timedelta(days=40)
"""A missing report is raised only this long after its deadline (the current round)."""
RETENTION = timedelta(days=800)
"""Kafka retention of the report topic: longer than the longest hold (≈ 25 months)."""

_STATUS_RANK = {"firing": 0, "resolved": 1}


# -- the calendar -----------------------------------------------------------------------------

def month_start(year: int, month: int) -> datetime:
    """00:00 Asia/Ho_Chi_Minh on the 1st of ``month`` (13 = January of the next year), in UTC."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=LOCAL_TZ).astimezone(UTC)


def report_deadline(year: int, month: int) -> datetime:
    """When the report for ``month`` becomes missing: 00:00 local on the 6th of the next
    month (5 days after the month's end), in UTC."""
    year, month = year + month // 12, month % 12 + 1
    return (datetime(year, month, 1, tzinfo=LOCAL_TZ)
            + timedelta(days=GRACE_DAYS)).astimezone(UTC)


def year_closes(year: int) -> datetime:
    """1 February of the next year, local midnight: no new alert concerns ``year``."""
    return month_start(year + 1, 2)


def year_released(year: int) -> datetime:
    """When ``year``'s reports are no longer needed: a day after the next year closed (that
    day lets the next year's final year-on-year growth be published first)."""
    return year_closes(year + 1) + timedelta(days=1)


def number_vi(x: float) -> str:
    """``1234.5`` → ``1.234,5``; whole numbers without decimals (Vietnamese separators)."""
    text = f"{x:,.0f}" if abs(x - round(x)) < 0.05 else f"{x:,.1f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


# -- the state of one series-year ---------------------------------------------------------------

@dataclass(frozen=True)
class Report:
    event_id: str
    occurred_at: datetime
    period: Period
    value: float
    revision: int

    @property
    def rank(self) -> tuple[int, datetime, str]:
        return (self.revision, self.occurred_at, self.event_id)


@dataclass(frozen=True)
class YearToDate:
    value: float
    periods: int
    last_month: int
    months: tuple[int, ...]


def year_to_date(indicator: Indicator, reports: Mapping[str, Report]) -> YearToDate | None:
    """The year to date of one series from the reports in force, by period text."""
    if not reports:
        return None
    if indicator.aggregation == "latest":
        latest = max(reports.values(),
                     key=lambda r: (r.period.last_month, -r.period.first_month))
        return YearToDate(latest.value, len(reports), latest.period.last_month, ())
    months = tuple(sorted(r.period.first_month for r in reports.values()))
    total = sum(r.value for r in reports.values())
    value = total if indicator.aggregation == "sum" else total / len(reports)
    return YearToDate(value, len(reports), months[-1], months)


SeriesKey = tuple[str, str, int]  # (indicator, area, year)
MissingKey = tuple[str, str, str]  # (indicator, area, period text of a month)


def hold_key(key: SeriesKey) -> str:
    return f"{key[0]}|{key[1]}|{key[2]}"


class IndicatorRule(BaseRule):
    """The econ subsystem's state machine: reports in force per series-year, the KPIs above and
    both alert rules (they share that state). See the module docstring for the contract."""

    name = "econ.indicators"
    topics = (REPORT_TOPIC,)

    def __init__(self, ref: EconReference, areas: Mapping[str, Area],
                 lookback: timedelta = MISSING_LOOKBACK) -> None:
        self.ref = ref
        self.areas = areas
        self.lookback = lookback
        self.series: dict[SeriesKey, dict[str, Report]] = {}
        self.dirty: set[SeriesKey] = set()
        self.behind: dict[SeriesKey, dict[str, Any]] = {}
        self.behind_clock: dict[SeriesKey, datetime] = {}
        self.missing: dict[MissingKey, dict[str, Any]] = {}
        self.checked: dict[int, set[MissingKey]] = {}  # deadlines judged, by year
        self.owned: set[str] = set()
        self.closed: set[int] = set()
        self.logged: dict[str, tuple[datetime, int]] = {}
        self._reports_since_tick = False
        self._ignored: set[tuple[str, str]] = set()
        self.required: dict[int, list[tuple[str, str]]] = {}
        for ind, area, year in sorted(ref.targets):
            meta = ref.indicators[ind]
            if meta.monthly_required:
                self.required.setdefault(year, []).append((ind, area))

    # -- wording -------------------------------------------------------------------------------
    def _place(self, area_code: str, preposition: str = "tại") -> str:
        if not area_code:
            return "toàn tỉnh"
        area = self.areas.get(area_code)
        return f"{preposition} {area.name_vi if area else area_code}"

    # -- publishing ------------------------------------------------------------------------------
    def _publish(self, records: Iterable[Record]) -> list[Record]:
        """Alert records the alert log already has (replay after a restart) are dropped."""
        out = []
        for rec in records:
            if "alert_id" in rec:
                mark = (rec["updated_at"], _STATUS_RANK[rec["status"]])
                seen = self.logged.get(rec["alert_id"])
                if seen is not None and mark <= seen:
                    continue
                self.logged[rec["alert_id"]] = mark
            out.append(rec)
        return out

    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """Remember what the alert log holds and resume firing missing-report episodes (see
        the module docstring, "Restart"). Behind-plan state is rebuilt by the replay of the
        held reports, which yields the same episodes."""
        mine = [a for a in alerts if a["rule"] in (BEHIND_PLAN_RULE, REPORT_MISSING_RULE)]
        for a in mine:
            mark = (a["updated_at"], _STATUS_RANK[a["status"]])
            seen = self.logged.get(a["alert_id"])
            if seen is None or mark > seen:
                self.logged[a["alert_id"]] = mark
        for a in mine:
            if a["status"] != "firing" or self.logged[a["alert_id"]] != (a["updated_at"], 0):
                continue  # not the latest state of its alert
            if a["rule"] == REPORT_MISSING_RULE:
                # starts_at is the deadline, 00:00 local on the 6th of the following month.
                last = a["starts_at"].astimezone(LOCAL_TZ) - timedelta(days=GRACE_DAYS + 1)
                if report_deadline(last.year, last.month) == a["starts_at"]:
                    mk = (a["entity"], a["area_code"], f"{last.year}-{last.month:02d}")
                    self.missing[mk] = dict(a)
                    self.checked.setdefault(last.year, set()).add(mk)

    # -- events ----------------------------------------------------------------------------------
    def _ignore(self, ind: str, why: str) -> list[Record]:
        if (ind, why) not in self._ignored:
            self._ignored.add((ind, why))
            log.warning("econ report for indicator %r ignored: %s", ind, why)
        return []

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        ind_code = str(event["indicator_code"]).strip()
        meta = self.ref.indicators.get(ind_code)
        if meta is None:
            return self._ignore(ind_code, "not in the indicator catalogue")
        period = parse_period(str(event["period"]))
        if period is None or not meta.accepts(period):
            return self._ignore(ind_code, f"period {event['period']!r} does not fit its "
                                          f"{meta.frequency} frequency")
        if str(event["unit"]).strip().casefold() != meta.unit.casefold():
            return self._ignore(ind_code, f"unit {event['unit']!r} is not {meta.unit!r}")
        occurred: datetime = event["occurred_at"]
        if occurred >= year_released(period.year):
            return []  # nothing needs that year any more
        area = str(event["area_code"] or "")
        key = (ind_code, area, period.year)
        self.holds.hold(hold_key(key))
        self.owned.add(ind_code)
        self._reports_since_tick = True
        rep = Report(str(event["event_id"]), occurred, period, float(event["value"]),
                     int(event.get("revision") or 0))
        reports = self.series.setdefault(key, {})
        before = reports.get(period.text)
        if before is not None and before.rank >= rep.rank:
            return []  # a re-sent or superseded report
        reports[period.text] = rep
        self.dirty.add(key)
        nxt = (ind_code, area, period.year + 1)
        if nxt in self.series:
            self.dirty.add(nxt)  # its year-on-year growth compares with this year
        out: list[Record] = []
        firing = self.missing.pop((ind_code, area, period.text), None)
        if firing is not None:
            out.append(self._missing_resolved(firing, meta, area, period, occurred))
        if occurred < year_closes(period.year):
            out.extend(self._evaluate_behind(key, meta, occurred))
        return self._publish(out)

    # -- behind plan -----------------------------------------------------------------------------
    def _behind_shell(self, ind: str, area: str, year: int) -> dict[str, Any]:
        return alert_record(
            rule=BEHIND_PLAN_RULE, labels={"indicator": ind, "area_code": area,
                                           "year": str(year)},
            severity="warning", status="firing", domain="econ", area_code=area, entity=ind,
            value=0.0, threshold=0.0, summary="", starts_at=month_start(year, 1),
            ends_at=None, updated_at=month_start(year, 1))

    def _evaluate_behind(self, key: SeriesKey, meta: Indicator, at: datetime
                         ) -> list[Record]:
        ind, area, year = key
        target = self.ref.targets.get(key)
        if not meta.behind_plan or target is None:
            return []
        ytd = year_to_date(meta, self.series[key])
        if ytd is None:
            return []
        progress = ytd.value / target
        elapsed = ytd.last_month / 12
        threshold = BEHIND_FACTOR * elapsed
        firing = self.behind.get(key)
        if progress >= threshold and firing is None:
            return []
        # Reports of one series may carry out-of-order times (a late upload keeps its
        # submission time): an episode's timestamps never go back.
        at = max(at, self.behind_clock.get(key, at))
        self.behind_clock[key] = at
        if progress >= threshold:
            resolved = self.behind.pop(key)
            return [dict(resolved, status="resolved", ends_at=at, updated_at=at, value=progress,
                         threshold=threshold,
                         summary=f"{meta.name_vi} {self._place(area)} đã đạt {progress:.0%} "
                                 f"kế hoạch năm {year} ({ytd.last_month}/12 tháng, tiến độ "
                                 f"{elapsed:.0%}), không còn chậm tiến độ (ngưỡng cảnh báo "
                                 f"{threshold:.0%}).")]
        summary = (f"{meta.name_vi} {self._place(area)} đạt {progress:.0%} kế hoạch năm {year} "
                   f"({number_vi(ytd.value)}/{number_vi(target)} {meta.unit}), chậm so với "
                   f"tiến độ {elapsed:.0%} ({ytd.last_month}/12 tháng; ngưỡng cảnh báo "
                   f"{threshold:.0%}).")
        rec = dict(self._behind_shell(ind, area, year), value=progress, threshold=threshold,
                   summary=summary, starts_at=firing["starts_at"] if firing else at,
                   updated_at=at)
        self.behind[key] = rec
        return [rec]

    # -- report missing ----------------------------------------------------------------------
    def _missing_text(self, meta: Indicator, area: str, year: int, month: int) -> str:
        place = self._place(area, "của") if area else "(toàn tỉnh)"
        return f"tháng {month:02d}/{year} «{meta.name_vi}» {place}"

    def _missing_resolved(self, firing: dict[str, Any], meta: Indicator, area: str,
                          period: Period, received: datetime) -> dict[str, Any]:
        due = report_deadline(period.year, period.first_month)
        last_day = (due - timedelta(days=1)).astimezone(LOCAL_TZ)
        end = max(received, firing["starts_at"])
        late = (received.astimezone(LOCAL_TZ).date() - last_day.date()).days
        when = f"trễ {late} ngày so với hạn {last_day:%d/%m/%Y}" if late > 0 else "đúng hạn"
        return dict(firing, status="resolved", ends_at=end, updated_at=end, value=1.0,
                    summary=f"Đã nhận báo cáo "
                            f"{self._missing_text(meta, area, period.year, period.first_month)}"
                            f" ngày {received.astimezone(LOCAL_TZ):%d/%m/%Y}, {when}.")

    def _check_missing(self, now: datetime) -> list[Record]:
        out: list[Record] = []
        local_year = now.astimezone(LOCAL_TZ).year
        for year in (local_year - 1, local_year):
            if now >= year_closes(year):
                continue
            for month in range(1, 13):
                due = report_deadline(year, month)
                if not due <= now < due + self.lookback:
                    continue
                period = f"{year}-{month:02d}"
                judged = self.checked.setdefault(year, set())
                for ind, area in self.required.get(year, ()):
                    mk = (ind, area, period)
                    if ind not in self.owned or mk in judged:
                        continue
                    judged.add(mk)
                    if period in self.series.get((ind, area, year), {}):
                        continue
                    meta = self.ref.indicators[ind]
                    last_day = (due - timedelta(days=1)).astimezone(LOCAL_TZ)
                    rec = alert_record(
                        rule=REPORT_MISSING_RULE,
                        labels={"indicator": ind, "area_code": area, "period": period},
                        severity="warning", status="firing", domain="econ", area_code=area,
                        entity=ind, value=0.0, threshold=1.0,
                        summary=f"Quá hạn báo cáo {self._missing_text(meta, area, year, month)}"
                                f": chưa nhận được số liệu (hạn ngày {last_day:%d/%m/%Y}; "
                                f"đơn vị chủ trì: {meta.agency}).",
                        starts_at=due, ends_at=None, updated_at=due)
                    self.missing[mk] = rec
                    out.append(rec)
        return out

    # -- time ------------------------------------------------------------------------------------
    def _close_years(self, now: datetime) -> list[Record]:
        out: list[Record] = []
        for key, firing in sorted(self.behind.items()):
            ind, area, year = key
            end = year_closes(year)
            if now < end:
                continue
            del self.behind[key]
            meta = self.ref.indicators[ind]
            out.append(dict(firing, status="resolved", ends_at=end, updated_at=end,
                            summary=f"Năm kế hoạch {year} đã khép lại: {meta.name_vi} "
                                    f"{self._place(area)} đạt {firing['value']:.0%} kế hoạch "
                                    "năm."))
        for year in sorted({k[2] for k in self.series} - self.closed):
            if now >= year_closes(year):
                self.closed.add(year)
                self.dirty.update(k for k in self.series if k[2] == year)  # publish as final
        return out

    def _release_years(self, now: datetime) -> list[Record]:
        out: list[Record] = []
        for key in [k for k in self.series if now >= year_released(k[2])]:
            self.holds.release(hold_key(key))
            del self.series[key]
            self.dirty.discard(key)
            self.behind_clock.pop(key, None)
        for mk, firing in sorted(self.missing.items()):
            ind, area, period = mk
            year, month = int(period[:4]), int(period[5:])
            end = year_released(year)
            if now < end:
                continue
            del self.missing[mk]
            meta = self.ref.indicators[ind]
            out.append(dict(firing, status="resolved", ends_at=end, updated_at=end,
                            summary=f"Ngừng theo dõi báo cáo "
                                    f"{self._missing_text(meta, area, year, month)}: năm {year} "
                                    "đã hết thời gian theo dõi."))
        for year in [y for y in self.checked if now >= year_released(y)]:
            del self.checked[year]
        return out

    def _kpis(self, key: SeriesKey, now: datetime) -> list[Record]:
        ind, area, year = key
        meta = self.ref.indicators[ind]
        ytd = year_to_date(meta, self.series.get(key, {}))
        if ytd is None:
            return []
        common = {"window": YTD_WINDOW, "start": month_start(year, 1),
                  "end": month_start(year, ytd.last_month + 1), "area_code": area,
                  "entity": ind, "sample_count": ytd.periods, "computed_at": now,
                  "final": now >= year_closes(year)}
        out = [kpi_record(kpi=YTD_VALUE_KPI, value=ytd.value, **common)]
        target = self.ref.targets.get(key)
        if target is not None:
            out.append(kpi_record(kpi=PROGRESS_KPI, value=ytd.value / target, **common))
            if meta.aggregation == "sum":
                out.append(kpi_record(kpi=ELAPSED_SHARE_KPI, value=ytd.last_month / 12,
                                      **common))
        if meta.aggregation == "sum" and now < year_released(year - 1):
            # Once the previous year is let go its reports are gone (a restart no longer
            # replays them): the year-on-year growth published until then stays.
            before = self._last_year(ind, area, year - 1, ytd.months)
            if before is not None and before > 0:
                out.append(kpi_record(kpi=YOY_GROWTH_KPI, value=ytd.value / before - 1,
                                      **common))
        return out

    def _last_year(self, ind: str, area: str, year: int, months: Iterable[int]
                   ) -> float | None:
        """Sum of ``year``'s figures for ``months``: reports in force, else the actuals file;
        ``None`` if a month has neither."""
        reports = self.series.get((ind, area, year), {})
        total = 0.0
        for month in months:
            period = f"{year}-{month:02d}"
            if period in reports:
                total += reports[period].value
            elif (ind, area, period) in self.ref.actuals:
                total += self.ref.actuals[(ind, area, period)]
            else:
                return None
        return total

    def on_timer(self, now: datetime) -> list[Record]:
        quiet = not self._reports_since_tick
        self._reports_since_tick = False
        out = self._close_years(now)
        for key in sorted(self.dirty):
            if now < year_released(key[2]):  # not a stray report of a year already let go
                out.extend(self._kpis(key, now))
        self.dirty.clear()
        out.extend(self._release_years(now))
        if quiet and self.owned:
            out.extend(self._check_missing(now))
        return self._publish(out)

    def forget(self, keys: set[str]) -> None:
        """The partitions of these indicators moved to another worker: drop their state."""
        gone = {k.split("|", 1)[0] for k in keys}
        self.owned -= gone
        for key in [k for k in self.series if k[0] in gone]:
            del self.series[key]
            self.dirty.discard(key)
        for key in [k for k in self.behind if k[0] in gone]:
            del self.behind[key]
        for key in [k for k in self.behind_clock if k[0] in gone]:
            del self.behind_clock[key]
        for mk in [k for k in self.missing if k[0] in gone]:
            del self.missing[mk]
        for year, judged in self.checked.items():
            self.checked[year] = {mk for mk in judged if mk[0] not in gone}


def econ_domain(ref: ReferenceData) -> Domain:
    """Indicators, targets and actuals come from ``ref.directory`` or the shipped defaults
    (see :mod:`ioc.infra.reference_econ`)."""
    return Domain(
        name="econ",
        topics=(REPORT_TOPIC,),
        families=(),
        rules=(IndicatorRule(load_econ(ref.directory), ref.areas),),
        retention={REPORT_TOPIC: RETENTION},
    )
