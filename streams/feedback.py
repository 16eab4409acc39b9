"""Citizen feedback and field reports (``feedback``): report lifecycles, KPIs and alerts.

Input: ``ioc.feedback.report.v1``, one event per lifecycle step of a report (submitted →
assigned → in_progress → resolved / rejected; a later non-closing step reopens a report),
partitioned by ``area_code`` (``report_id`` when empty) so a report's steps stay in order and an
area's windows sit on one partition. A report's state is the fold of
its steps in event-time order: status = the latest step's; agency and due time = the latest
non-empty ones (an empty agency or a null due time on a later step means unchanged); rating =
the latest given. ``submitted_at`` is the time of its ``submitted`` step (else its first step).
No personal data is read or written here: the reporter is at most a pseudonym, which no KPI or
alert uses.

KPIs
----
- ``feedback.new_reports`` (1h and 1d windows, engine; per area, entity = category): number of
  ``submitted`` steps. Daily windows are cut at Asia/Ho_Chi_Minh midnight.
- ``feedback.backlog`` (window ``1m``; area_code "", entity = agency): reports open at the end
  of the minute (``window_end``), by the agency they are assigned to at that moment; reports
  not yet assigned count under entity :data:`UNASSIGNED` (``chua_phan_cong``). One row per
  minute of the feedback clock for every agency of ``feedback_agencies.csv``, every agency seen
  and ``chua_phan_cong`` (zeros included). When the clock jumps several minutes at once
  (catching up after downtime, a backfill), only the newest minute gets a row.
- ``feedback.on_time_rate`` (window ``30d``; area_code "", entity = agency): of the reports
  *resolved* (not rejected) in the 30 days ``[window_start, window_end)``, the share resolved by
  their due time (``resolved_at <= due_at``; a report resolved without a due time is on time).
  ``sample_count`` = resolved reports.
- ``feedback.resolution_hours`` (same window and key): mean hours from ``submitted_at`` to
  resolution of those reports; ``sample_count`` = resolved reports.
- ``feedback.satisfaction`` (same window and key): mean rating (1–5) of those reports that were
  rated; ``sample_count`` = ratings (no row while an agency has no rating).

  The 30-day windows are rolling: ``window_end`` is the end of the current local day (the
  feedback clock's), ``window_start = window_end − 30 days``; the value is re-emitted (replacing
  the earlier one) whenever it changes during the day and once more, final, when the day ends.
  A resolution is attributed to the agency the report was assigned to (last known).

Alerts
------
- ``feedback.overdue`` — a report that is not resolved or rejected at its due time is overdue
  from that time → **warning**; from 3 days after the due time → **critical** (same alert, same
  episode, severity raised). It resolves when the report is resolved or rejected, or when a new
  due time in the future is set. One alert per report: labels ``{report_id}``, ``entity`` =
  the report id (so the wall's overdue table can name the report; the agency is in the summary),
  ``area_code`` = the report's area. ``starts_at`` = the due time (or the reopening, if later),
  ``updated_at`` = the time of the change (due time, due time + 3 days, resolution), ``value`` =
  days past due at that time, ``threshold`` 0 (warning) or 3 (critical). Timer-driven: nothing
  has to arrive for a report to become overdue. Every transition is placed at its exact event
  time, however the clock advances, so a replay yields the same records; a report that was
  resolved late in the past shows as a fired-and-resolved episode.
- ``feedback.surge`` — evaluated at every whole minute ``m`` of the feedback clock (UTC,
  :00 seconds), per area and category: ``n`` = reports submitted in the hour ``(m − 60 min, m]``;
  ``mean`` = reports submitted in the 168 hours before that hour, ``(m − 7 d − 1 h, m − 1 h]``,
  divided by 168 (the current hour is **not** part of the mean, so a surge cannot raise its own
  baseline). ``n ≥ 5`` and ``n > 3 × mean`` → **warning** (labels ``{area_code, category}``,
  entity = category, ``value`` = n, ``threshold`` = max(5, 3 × mean)); while firing, a higher
  ``n`` updates it; it resolves at the first minute where the condition fails (so about an hour
  after the surge's reports stop coming). Counts only change at minutes where a submission enters
  or leaves one of the two spans, so only those minutes are computed; the result is the same as
  computing every minute. A fresh deployment has less than 7 days of baseline (a lower mean), so
  in its first week the rule is effectively ``n ≥ 5``.

The feedback clock
------------------
Rules run on the processor's timer (``on_timer(now)``) but judge time on their own clock: the
processor's timer clock, held back to the watermark of any partition of the report topic that
is still delivering events (its watermark advanced within the last two ticks), and never going
back. So while a partition is being read (catching up after downtime, a backfill arriving next
to live traffic), a report is not judged at a time its own later steps have not yet reached — it
would otherwise look overdue until its resolution is read. Once every partition is quiet, the
clock is the timer clock (event time carried forward at wall-clock speed). A step that arrives
after the clock has passed its time is applied at the next tick; an overdue alert it ends is
resolved with ``ends_at`` = the step's time.

State and replay
----------------
The rule holds every event of a report under the key ``report_id`` until the report is closed
(resolved or rejected) **and** closed before the start of the current local day minus 30 days —
outside both the current and yesterday's 30-day window. The surge baseline (7 days + 1 hour of
submissions) is covered by the same holds. After a restart the worker replays the held events
and rebuilds the state; alert records already in the alert log (``restore``) are not emitted
again. The report topic keeps 60 days (``Domain.retention``): a report open longer than that is
a problem — its first steps leave Kafka, and a restart rebuilds it from its later steps only
(it may then count as unassigned or lose its due time). Rule KPIs are emitted only for times
within one day of the processor's timer clock: older values cannot be recomputed exactly after
a restart (released reports are not replayed), so they are left as first written.

Scaling out: the per-area KPI windows and the surge rule read one partition per area (the
partition key is the area), so they stay exact with several workers. The per-agency 30-day
rates and the backlog gather reports of many areas, i.e. of several partitions: exact with one
worker; with several, each would count only its own partitions' reports (a repartition by
agency is not built).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ioc.infra.reference import Area, ReferenceData
from ioc.infra.reference_feedback import (
    FeedbackAgency,
    FeedbackCategory,
    load_agencies,
    load_categories,
)
from ioc.streams.domain import BaseRule, Domain, Record
from ioc.streams.engine import TP, KpiFamily
from ioc.streams.rules import alert_record, kpi_record
from ioc.streams.security import Count
from ioc.streams.windows import LOCAL_TZ, WINDOWS

REPORT_TOPIC = "ioc.feedback.report.v1"

NEW_REPORTS_KPI = "feedback.new_reports"
BACKLOG_KPI = "feedback.backlog"
ON_TIME_KPI = "feedback.on_time_rate"
RESOLUTION_KPI = "feedback.resolution_hours"
SATISFACTION_KPI = "feedback.satisfaction"
OVERDUE_RULE = "feedback.overdue"
SURGE_RULE = "feedback.surge"

UNASSIGNED = "chua_phan_cong"
"""Backlog entity of reports not yet assigned to an agency ("chưa phân công")."""

TERMINAL = frozenset({"resolved", "rejected"})
ROLLING = timedelta(days=30)
RETENTION = timedelta(days=60)
CRITICAL_AFTER = timedelta(days=3)
EMIT_HORIZON = timedelta(days=1)
"""Rule KPIs are only emitted for times within this span before the processor's timer."""
IDLE_TICKS = 2

_RANK = {"submitted": 0, "assigned": 1, "in_progress": 2, "resolved": 3, "rejected": 3}
_MINUTE = timedelta(minutes=1)
_MS = timedelta(milliseconds=1)
_DAY = timedelta(days=1)


# -- a report's lifecycle ---------------------------------------------------------------------

@dataclass(frozen=True, order=True)
class Fact:
    """One lifecycle step as the rules keep it (ordered by time, then by lifecycle rank)."""

    at: datetime
    rank: int
    event_id: str
    status: str = field(compare=False)
    agency: str = field(compare=False)
    due_at: datetime | None = field(compare=False)
    rating: int | None = field(compare=False)


@dataclass
class View:
    """A report's state as of a time: the fold of its steps up to then."""

    exists: bool = False
    status: str = ""
    agency: str = ""
    due_at: datetime | None = None
    due_set_at: datetime | None = None
    rating: int | None = None
    submitted_at: datetime | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.exists and self.status not in TERMINAL


class Report:
    def __init__(self, report_id: str) -> None:
        self.report_id = report_id
        self.facts: list[Fact] = []
        self.event_ids: set[str] = set()
        self.area_code = ""
        self.category = "other"
        self.tp: TP | None = None
        self.ever_closed = False
        self._times: list[datetime] | None = None

    def add(self, event: Mapping[str, Any]) -> Fact | None:
        """Add one step; ``None`` if this event id was seen already."""
        event_id = str(event["event_id"])
        if event_id in self.event_ids:
            return None
        status = str(event["status"])
        rating = event.get("rating")
        fact = Fact(event["occurred_at"], _RANK.get(status, 2), event_id, status,
                    str(event.get("assigned_agency") or ""), event.get("due_at"),
                    int(rating) if rating is not None else None)
        if not self.facts or fact >= self.facts[-1]:
            self.area_code = str(event["area_code"])
            self.category = str(event["category"])
        bisect.insort(self.facts, fact)
        self.event_ids.add(event_id)
        self.ever_closed = self.ever_closed or status in TERMINAL
        self._times = None
        return fact

    def view(self, t: datetime | None = None) -> View:
        """The state as of ``t`` (steps with ``at <= t``; all steps when ``t`` is None)."""
        v = View()
        for f in self.facts:
            if t is not None and f.at > t:
                break
            if not v.exists:
                v.exists, v.opened_at = True, f.at
            elif v.status in TERMINAL and f.status not in TERMINAL:
                v.opened_at = f.at  # reopened
            if f.status == "submitted" and v.submitted_at is None:
                v.submitted_at = f.at
            if f.status in TERMINAL:
                if v.status not in TERMINAL:
                    v.closed_at = f.at
            else:
                v.closed_at = None
            v.status = f.status
            if f.agency:
                v.agency = f.agency
            if f.due_at is not None:
                v.due_at, v.due_set_at = f.due_at, f.at
            if f.rating is not None:
                v.rating = f.rating
        if v.exists and v.submitted_at is None:
            v.submitted_at = self.facts[0].at
        return v

    def overdue_times(self) -> list[datetime]:
        """Every time the overdue state can change, sorted: steps, due times, due times +
        3 days."""
        if self._times is None:
            times = {f.at for f in self.facts}
            for f in self.facts:
                if f.due_at is not None:
                    times.update((f.due_at, f.due_at + CRITICAL_AFTER))
            self._times = sorted(times)
        return self._times


# -- the feedback clock -----------------------------------------------------------------------

class FeedbackClock:
    """The rules' clock (see the module docstring): the timer clock, held back to the
    watermark of any report-topic partition that advanced within the last ``IDLE_TICKS``
    ticks; never going back."""

    def __init__(self, idle_ticks: int = IDLE_TICKS) -> None:
        self.idle_ticks = idle_ticks
        self._parts: dict[TP, tuple[datetime, int]] = {}
        self._ticks = 0
        self.value: datetime | None = None

    def saw(self, tp: TP, watermark: datetime) -> None:
        old = self._parts.get(tp)
        if old is None or watermark > old[0]:
            self._parts[tp] = (watermark, self._ticks)

    def advance(self, now: datetime) -> datetime:
        self._ticks += 1
        busy = [wm for wm, tick in self._parts.values() if tick >= self._ticks - self.idle_ticks]
        candidate = min([now, *busy])
        if self.value is None or candidate > self.value:
            self.value = candidate
        return self.value

    @property
    def started(self) -> bool:
        """Whether any report event was seen (the rules stay silent until then)."""
        return bool(self._parts) or self.value is not None

    def drop(self, tps: set[TP]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)


# -- helpers ----------------------------------------------------------------------------------

def floor_minute(t: datetime) -> datetime:
    return t - timedelta(seconds=t.second, microseconds=t.microsecond)


def ceil_minute(t: datetime) -> datetime:
    f = floor_minute(t)
    return f if f == t else f + _MINUTE


def local_day_end(t: datetime) -> datetime:
    """End of the Asia/Ho_Chi_Minh day containing ``t`` (UTC)."""
    return WINDOWS["1d"].bounds(t)[1]


def local_time(t: datetime) -> str:
    return t.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y")


def duration_vi(td: timedelta) -> str:
    """``2 ngày 5 giờ``, ``3 giờ``, ``40 phút``."""
    minutes = max(0, int(td.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} ngày" + (f" {hours} giờ" if hours else "")
    if hours:
        return f"{hours} giờ"
    return f"{mins} phút"


def feedback_families() -> list[KpiFamily]:
    """``feedback.new_reports`` on 1h and 1d windows: submitted steps per area and category."""
    def key(event: Mapping[str, Any]) -> tuple[str, str] | None:
        if event["status"] != "submitted":
            return None
        return (event["area_code"], event["category"])

    return [KpiFamily(f"{NEW_REPORTS_KPI}.{w}", REPORT_TOPIC, WINDOWS[w], key,
                      lambda a, e: Count(NEW_REPORTS_KPI))
            for w in ("1h", "1d")]


# -- the rules --------------------------------------------------------------------------------

@dataclass
class _Surge:
    """Submissions of one area and category, as sorted times."""

    times: list[datetime] = field(default_factory=list)
    firing: dict[str, Any] | None = None


class FeedbackRules(BaseRule):
    """The report book and everything computed from it: the overdue and surge alerts, the
    backlog gauge and the 30-day KPIs (semantics in the module docstring)."""

    name = "feedback.reports"
    topics = (REPORT_TOPIC,)

    def __init__(self, areas: Mapping[str, Area], categories: Mapping[str, FeedbackCategory],
                 agencies: Mapping[str, FeedbackAgency], *, surge_factor: float = 3.0,
                 surge_min: int = 5, surge_window: timedelta = timedelta(hours=1),
                 baseline: timedelta = timedelta(days=7)) -> None:
        self.areas = areas
        self.categories = categories
        self.agencies = agencies
        self.surge_factor = surge_factor
        self.surge_min = surge_min
        self.surge_window = surge_window
        self.baseline = baseline
        self.clock = FeedbackClock()
        self.reports: dict[str, Report] = {}
        self.released: dict[str, datetime] = {}  # report id → closed at (ignore stale re-sends)
        self._dirty: set[str] = set()
        self._next_check: dict[str, datetime] = {}  # report → next time its state may change
        self._checks: list[tuple[datetime, str]] = []  # heap of the same (with stale entries)
        # feedback.overdue: the firing record and the time of the last record, per report
        self.overdue: dict[str, dict[str, Any]] = {}
        self.overdue_done: dict[str, datetime] = {}
        self._episode_due: dict[str, datetime] = {}
        self._evaluated_to: dict[str, datetime] = {}
        # feedback.surge
        self.surge: dict[tuple[str, str], _Surge] = {}
        self._submission: dict[str, tuple[tuple[str, str], datetime]] = {}
        self._points: list[tuple[datetime, tuple[str, str]]] = []
        self._pending: set[tuple[datetime, tuple[str, str]]] = set()
        self._surge_evaluated: dict[tuple[str, str], datetime] = {}  # last minute judged
        # KPIs
        self._gauge_minute: datetime | None = None
        self._gauge_agencies: set[str] = set(agencies) | {UNASSIGNED}
        self._day_end: datetime | None = None
        self._rolling_minute: datetime | None = None
        self._rolling_emitted: dict[tuple[str, str, datetime], tuple[float, int, bool]] = {}
        self._release_day: datetime | None = None

    # -- wording -------------------------------------------------------------------------------
    def _area(self, code: str) -> str:
        area = self.areas.get(code)
        return area.name_vi if area else code

    def _category(self, code: str) -> str:
        cat = self.categories.get(code)
        return cat.name_vi.lower() if cat else code

    def _agency(self, code: str) -> str:
        if not code:
            return "chưa phân công"
        agency = self.agencies.get(code)
        return agency.name_vi if agency else code

    # -- input ---------------------------------------------------------------------------------
    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        tp = self.holds.current[0] if self.holds.current is not None else (topic, 0)
        self.clock.saw(tp, watermark)
        rid = str(event["report_id"])
        closed = self.released.get(rid)
        if closed is not None and event["occurred_at"] <= closed:
            return []  # a re-sent step of a report closed and released long ago
        report = self.reports.get(rid)
        if report is None:
            report = self.reports[rid] = Report(rid)
        fact = report.add(event)
        if fact is None:
            return []  # the same step again
        report.tp = tp
        self.holds.hold(rid)
        self.released.pop(rid, None)
        self._dirty.add(rid)
        if fact.status == "submitted":
            self._add_submission(rid, (str(event["area_code"]), str(event["category"])),
                                 fact.at)
        return []

    def on_timer(self, now: datetime) -> list[Record]:
        if not self.clock.started:
            return []  # no report seen yet: no gauge of zeros for a subsystem not in use
        clock = self.clock.advance(now)
        dirty, self._dirty = self._dirty, set()
        out: list[Record] = []
        out.extend(self._evaluate_overdue(clock, dirty))
        out.extend(self._evaluate_surge(clock))
        out.extend(self._backlog(clock, now))
        out.extend(self._rolling(clock, now, bool(dirty)))
        self._release(clock, dirty)
        return out

    # -- feedback.overdue ----------------------------------------------------------------------
    def _overdue_state(self, report: Report, t: datetime
                       ) -> tuple[str, datetime, View] | None:
        v = report.view(t)
        if not v.open or v.due_at is None or t < v.due_at:
            return None
        assert v.opened_at is not None
        severity = "critical" if t >= v.due_at + CRITICAL_AFTER else "warning"
        return severity, max(v.due_at, v.opened_at), v

    def _evaluate_overdue(self, clock: datetime, dirty: set[str]) -> list[Record]:
        """Walk each report through the times its overdue state may change, up to the clock:
        from its last record (or the start) when it got new steps, else from where the last
        tick left it."""
        todo_ids = {rid for rid in dirty if rid in self.reports}
        while self._checks and self._checks[0][0] <= clock:
            t, rid = heapq.heappop(self._checks)
            if self._next_check.get(rid) == t:
                todo_ids.add(rid)
        out: list[Record] = []
        for rid in sorted(todo_ids):
            report = self.reports[rid]
            since = self.overdue_done.get(rid)
            if rid not in dirty:
                done = self._evaluated_to.get(rid)
                since = done if since is None or (done is not None and done > since) else since
            times = report.overdue_times()
            lo = 0 if since is None else bisect.bisect_right(times, since)
            todo = times[lo:bisect.bisect_right(times, clock)]
            if rid in dirty and (since is None or clock > since):
                todo.append(clock)  # a step that came after the clock passed its time
            for t in todo:
                out.extend(self._overdue_at(report, t))
            self._evaluated_to[rid] = clock
            nxt = bisect.bisect_right(times, clock)
            if nxt < len(times):
                self._next_check[rid] = times[nxt]
                heapq.heappush(self._checks, (times[nxt], rid))
            else:
                self._next_check.pop(rid, None)
        return out

    def _overdue_at(self, report: Report, t: datetime) -> list[Record]:
        rid = report.report_id
        state = self._overdue_state(report, t)
        prev = self.overdue.get(rid)
        if prev is None:
            if state is None:
                return []
            severity, start, v = state
            rec = self._overdue_record(report, v, severity, start, t)
        elif state is None:
            rec = self._overdue_resolved(report, prev, t)
        elif state[0] != prev["severity"]:
            severity, _, v = state
            rec = self._overdue_record(report, v, severity, prev["starts_at"], t)
        else:
            return []
        if rec["status"] == "firing":
            self.overdue[rid] = rec
        else:
            self.overdue.pop(rid, None)
        self.overdue_done[rid] = rec["updated_at"]
        return [rec]

    def _overdue_record(self, report: Report, v: View, severity: str, starts_at: datetime,
                        at: datetime) -> dict[str, Any]:
        assert v.due_at is not None
        due = self._episode_due[report.report_id] = v.due_at
        what = (f"Phản ánh {report.report_id} ({self._category(report.category)}) tại "
                f"{self._area(report.area_code)}")
        level = ("quá hạn xử lý hơn 3 ngày" if severity == "critical"
                 else "đã quá hạn xử lý")
        summary = (f"{what} {level}: hạn {local_time(v.due_at)}, đơn vị xử lý: "
                   f"{self._agency(v.agency)}.")
        return alert_record(
            rule=OVERDUE_RULE, labels={"report_id": report.report_id}, severity=severity,
            status="firing", domain="feedback", area_code=report.area_code,
            entity=report.report_id, value=round((at - due) / _DAY, 3),
            threshold=CRITICAL_AFTER / _DAY if severity == "critical" else 0.0,
            summary=summary, starts_at=starts_at, ends_at=None, updated_at=at)

    def _overdue_resolved(self, report: Report, prev: Mapping[str, Any], t: datetime
                          ) -> dict[str, Any]:
        v = report.view(t)
        if v.exists and not v.open and v.closed_at is not None:
            end = v.closed_at
            how = "đã được giải quyết" if v.status == "resolved" else "đã bị từ chối"
        else:
            end = v.due_set_at or t
            how = (f"được gia hạn đến {local_time(v.due_at)}" if v.due_at is not None
                   else "không còn hạn xử lý")
        end = max(end, prev["starts_at"])
        due = self._episode_due.get(report.report_id, prev["starts_at"])
        severity = "critical" if end >= due + CRITICAL_AFTER else "warning"
        updated = end if end > prev["updated_at"] else prev["updated_at"] + _MS
        what = (f"Phản ánh {report.report_id} ({self._category(report.category)}) tại "
                f"{self._area(report.area_code)}")
        summary = (f"{what} {how} lúc {local_time(end)}, sau {duration_vi(end - due)} quá "
                   f"hạn; đơn vị xử lý: {self._agency(v.agency)}.")
        self._episode_due.pop(report.report_id, None)
        return dict(prev, severity=severity, status="resolved", ends_at=end, updated_at=updated,
                    value=round((end - due) / _DAY, 3),
                    threshold=CRITICAL_AFTER / _DAY if severity == "critical" else 0.0,
                    summary=summary)

    # -- feedback.surge ------------------------------------------------------------------------
    def _push(self, m: datetime, key: tuple[str, str]) -> None:
        if (m, key) not in self._pending:
            self._pending.add((m, key))
            heapq.heappush(self._points, (m, key))

    def _add_submission(self, rid: str, key: tuple[str, str], at: datetime) -> None:
        old = self._submission.get(rid)
        if old is not None:
            if old[1] <= at:
                return  # a report counts once, at its first submission
            self._remove_submission(rid)
        self._submission[rid] = (key, at)
        st = self.surge.setdefault(key, _Surge())
        bisect.insort(st.times, at)
        for m in (at, at + self.surge_window, at + self.surge_window + self.baseline):
            self._push(ceil_minute(m), key)

    def _remove_submission(self, rid: str) -> None:
        old = self._submission.pop(rid, None)
        if old is None:
            return
        key, at = old
        st = self.surge.get(key)
        if st is not None:
            i = bisect.bisect_left(st.times, at)
            if i < len(st.times) and st.times[i] == at:
                del st.times[i]

    def _count(self, times: list[datetime], lo: datetime, hi: datetime) -> int:
        """Submissions in ``(lo, hi]``."""
        return bisect.bisect_right(times, hi) - bisect.bisect_right(times, lo)

    def _evaluate_surge(self, clock: datetime) -> list[Record]:
        out: list[Record] = []
        limit = floor_minute(clock)
        while self._points and self._points[0][0] <= limit:
            m, key = heapq.heappop(self._points)
            self._pending.discard((m, key))
            st = self.surge.get(key)
            if st is None:
                continue
            done = self._surge_evaluated.get(key)
            if done is not None and m <= done:
                m = done + _MINUTE  # a late submission: judged from the next minute
                if m > limit:
                    self._push(m, key)
                    continue
            self._surge_evaluated[key] = m
            out.extend(self._surge_at(key, st, m))
        # Submissions older than the baseline are no longer needed.
        horizon = clock - self.surge_window - self.baseline - _MINUTE
        for key, st in list(self.surge.items()):
            cut = bisect.bisect_right(st.times, horizon)
            if cut:
                del st.times[:cut]
            if not st.times and st.firing is None:
                del self.surge[key]
        return out

    def _surge_at(self, key: tuple[str, str], st: _Surge, m: datetime) -> list[Record]:
        area, category = key
        n = self._count(st.times, m - self.surge_window, m)
        base = self._count(st.times, m - self.surge_window - self.baseline,
                           m - self.surge_window)
        mean = base / (self.baseline / self.surge_window)
        threshold = max(float(self.surge_min), self.surge_factor * mean)
        high = n >= self.surge_min and n > self.surge_factor * mean
        firing = st.firing
        label = f"{self._category(category)} tại {self._area(area)}"
        limits = (f"trung bình 7 ngày {mean:.2f}/giờ; ngưỡng: gấp {self.surge_factor:g} lần "
                  f"trung bình và tối thiểu {self.surge_min}")
        if firing is None and not high:
            return []
        if firing is not None and not high:
            st.firing = None
            return [dict(firing, status="resolved", ends_at=m, updated_at=m, value=float(n),
                         summary=f"Phản ánh về {label} đã trở lại bình thường: {n} phản ánh "
                                 f"trong 1 giờ qua ({limits}).")]
        if firing is not None and n <= firing["value"]:
            return []
        st.firing = alert_record(
            rule=SURGE_RULE, labels={"area_code": area, "category": category},
            severity="warning", status="firing", domain="feedback", area_code=area,
            entity=category, value=float(n), threshold=threshold,
            summary=f"Phản ánh về {label} tăng đột biến: {n} phản ánh trong 1 giờ qua "
                    f"({limits}).",
            starts_at=firing["starts_at"] if firing is not None else m, ends_at=None,
            updated_at=m)
        return [st.firing]

    # -- feedback.backlog ----------------------------------------------------------------------
    def _backlog(self, clock: datetime, now: datetime) -> list[Record]:
        m = floor_minute(clock)
        if self._gauge_minute is not None and m <= self._gauge_minute:
            return []
        self._gauge_minute = m
        if m < now - EMIT_HORIZON:
            return []
        counts: dict[str, int] = {}
        for report in self.reports.values():
            v = report.view(m)
            if v.open:
                agency = v.agency or UNASSIGNED
                counts[agency] = counts.get(agency, 0) + 1
        self._gauge_agencies.update(counts)
        return [kpi_record(kpi=BACKLOG_KPI, window="1m", start=m - _MINUTE, end=m,
                           area_code="", entity=agency, value=counts.get(agency, 0),
                           sample_count=counts.get(agency, 0), computed_at=now, final=True)
                for agency in sorted(self._gauge_agencies)]

    # -- 30-day KPIs ---------------------------------------------------------------------------
    def _rolling(self, clock: datetime, now: datetime, dirty: bool) -> list[Record]:
        out: list[Record] = []
        end = local_day_end(clock)
        if self._day_end is not None and self._day_end < end:
            day_end = max(self._day_end, local_day_end(now - EMIT_HORIZON))
            while day_end < end:
                # The days the clock left: their final values (as of the day's last instant).
                out.extend(self._rolling_values(day_end, day_end - _MS, True, now))
                day_end = local_day_end(day_end)
            self._rolling_emitted = {k: v for k, v in self._rolling_emitted.items()
                                     if k[2] >= end}
            dirty = True
        self._day_end = end
        minute = floor_minute(clock)
        if (dirty or minute != self._rolling_minute) and end > now - EMIT_HORIZON:
            out.extend(self._rolling_values(end, clock, False, now))
        self._rolling_minute = minute
        return out

    def _rolling_values(self, end: datetime, as_of: datetime, final: bool, now: datetime
                        ) -> list[Record]:
        start = end - ROLLING
        # agency → [resolved, on time, hours, ratings sum, ratings]
        acc: dict[str, list[float]] = {}
        for report in self.reports.values():
            if not report.ever_closed:
                continue
            v = report.view(as_of)
            if v.status != "resolved" or v.closed_at is None or not start <= v.closed_at < end:
                continue
            assert v.submitted_at is not None
            a = acc.setdefault(v.agency or UNASSIGNED, [0, 0, 0.0, 0, 0])
            a[0] += 1
            a[1] += v.due_at is None or v.closed_at <= v.due_at
            a[2] += (v.closed_at - v.submitted_at) / timedelta(hours=1)
            if v.rating is not None:
                a[3] += v.rating
                a[4] += 1
        out: list[Record] = []
        for agency in sorted(acc):
            resolved, on_time, hours, rating_sum, ratings = acc[agency]
            values = [(ON_TIME_KPI, on_time / resolved, int(resolved)),
                      (RESOLUTION_KPI, hours / resolved, int(resolved))]
            if ratings:
                values.append((SATISFACTION_KPI, rating_sum / ratings, int(ratings)))
            for kpi, value, n in values:
                key = (kpi, agency, end)
                if self._rolling_emitted.get(key) == (value, n, final):
                    continue
                self._rolling_emitted[key] = (value, n, final)
                out.append(kpi_record(kpi=kpi, window="30d", start=start, end=end,
                                      area_code="", entity=agency, value=value,
                                      sample_count=n, computed_at=now, final=final))
        return out

    # -- holds ---------------------------------------------------------------------------------
    def _release(self, clock: datetime, dirty: set[str]) -> None:
        """Let go of reports closed before the start of the current local day − 30 days."""
        day_start = local_day_end(clock) - _DAY
        cutoff = day_start - ROLLING
        if self._release_day == day_start:
            candidates: Iterable[str] = [r for r in dirty if r in self.reports]
        else:
            self._release_day = day_start
            candidates = list(self.reports)
            forget_before = clock - RETENTION
            self.released = {r: t for r, t in self.released.items() if t >= forget_before}
            self.overdue_done = {r: t for r, t in self.overdue_done.items()
                                 if r in self.reports or r in self.overdue
                                 or t >= forget_before}
        for rid in candidates:
            v = self.reports[rid].view()
            if (v.open or v.closed_at is None or v.closed_at >= cutoff or rid in self.overdue
                    or rid in self._next_check):
                continue
            self.holds.release(rid)
            del self.reports[rid]
            self._evaluated_to.pop(rid, None)
            self._remove_submission(rid)
            self.released[rid] = v.closed_at

    # -- restart and rebalance -----------------------------------------------------------------
    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """Resume from the alert log: the latest record of each report (overdue) and of each
        area and category (surge) says which episode is firing and up to when records were
        written, so a replay does not write them again."""
        latest: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for a in alerts:
            if a["rule"] not in (OVERDUE_RULE, SURGE_RULE):
                continue
            key = (a["rule"], a["area_code"], a["entity"])
            if key not in latest or a["updated_at"] >= latest[key]["updated_at"]:
                latest[key] = a
        for (rule, area, entity), a in latest.items():
            firing = dict(a) if a["status"] == "firing" else None
            if rule == OVERDUE_RULE:
                self.overdue_done[entity] = a["updated_at"]
                if firing is not None:
                    self.overdue[entity] = firing
                    self._episode_due[entity] = a["starts_at"]
            else:
                self.surge.setdefault((area, entity), _Surge()).firing = firing
                self._surge_evaluated[(area, entity)] = floor_minute(a["updated_at"])

    def forget(self, keys: set[str]) -> None:
        tps: set[TP] = set()
        for rid in keys:
            report = self.reports.pop(rid, None)
            if report is not None and report.tp is not None:
                tps.add(report.tp)
            self._remove_submission(rid)
            self._next_check.pop(rid, None)
            self._dirty.discard(rid)
            self._evaluated_to.pop(rid, None)
            self.overdue.pop(rid, None)
            self.overdue_done.pop(rid, None)
            self._episode_due.pop(rid, None)
        self.clock.drop(tps)


def feedback_domain(ref: ReferenceData) -> Domain:
    """Categories and agencies come from ``ref.directory``, or the shipped defaults (see
    :mod:`ioc.infra.reference_feedback`)."""
    return Domain(
        name="feedback",
        topics=(REPORT_TOPIC,),
        families=tuple(feedback_families()),
        rules=(FeedbackRules(ref.areas, load_categories(ref.directory),
                             load_agencies(ref.directory)),),
        retention={REPORT_TOPIC: RETENTION},
    )
