"""E-government (``egov``): public-service dossiers at the one-stop shops and portal health.

**Dossier lifecycle** (topic ``ioc.egov.dossier.v1``, partition key ``dossier_id``). The
statuses follow the one-stop mechanism (cơ chế một cửa, Decree 61/2018/NĐ-CP as amended by
107/2021/NĐ-CP): ``received`` (tiếp nhận) → ``processing`` (passed to the specialist unit) →
``resolved`` (result issued) or ``rejected`` (refused in writing with reasons); on the way the
dossier may be sent back for completion, ``supplement_requested`` (the clock stops: the
applicant, not the agency, holds it) then ``supplement_returned`` (``due_at`` is set anew), and
the applicant may ``withdrawn`` it. A dossier is *decided* when resolved or rejected (a written
refusal is a handled dossier in the national service index), *closed* when decided or
withdrawn, *open* otherwise. Every event carries the dossier's facts (agency, channel,
``received_at``, current ``due_at``, ``resolved_at`` for decisions, fee and online payment),
so the state of a dossier is its latest event (by ``occurred_at``).

KPIs on engine windows (1d, cut at Asia/Ho_Chi_Minh midnight, on ``occurred_at``; key
area_code = where the dossier was filed, entity = agency code):

- ``egov.dossiers_received`` — ``received`` events; ``egov.dossiers_received_online`` — of
  those, channel ``online``.
- ``egov.dossiers_resolved`` — decisions (``resolved`` and ``rejected`` events);
  ``egov.dossiers_resolved_on_time`` — of those, ``resolved_at <= due_at``.

KPIs computed by :class:`DossierRule` from its 30-day state (window ``30d``: window_end = the
end of a local day D, window_start = window_end − 30 days; area_code = the agency's area from
``egov_agencies.csv``, entity = agency):

- ``egov.on_time_rate`` — dossiers decided in the window (by ``resolved_at``) with
  ``resolved_at <= due_at`` / dossiers decided in the window; sample_count = decided.
- ``egov.online_rate`` — dossiers received in the window (by ``received_at``, withdrawn ones
  included) that were filed ``online`` / dossiers received; sample_count = received.
- ``egov.online_payment_rate`` — of the dossiers decided in the window whose procedure charges
  a fee (``fee_required``), the share with ``paid_online`` (by then the fee is settled);
  sample_count = those dossiers.

  Each is emitted with ``is_final`` = true once per local day when that day *closes* for the
  rule: every partition of the dossier topic assigned to the worker has a watermark past the
  day's end plus :data:`LATENESS`, or has been read to its end (no unread messages at the last
  tick, as the worker tells through :class:`~ioc.streams.domain.Progress`) and is empty or more
  than :data:`QUIET` behind the timer clock; a partition still being read (a replay, a backfill
  behind a busy worker, one whose first fetch has not come yet) always holds the day back,
  however far other topics have moved the timer clock. Not before :data:`SETTLE` (5 s of
  wall-clock time) after the worker's first dossier event either. Without partition progress
  (tests driving the processor event by event) the partitions seen stand for the assigned ones
  and a partition more than :data:`QUIET` behind the timer clock is quiet. Between closes
  the current day's value is published provisionally (``is_final`` = false) whenever it
  changes, at most once per tick. A 30-day value is only published once the rule has seen its
  whole window (see *State and exactness*): a fresh deployment gets its first ``30d`` values
  30 days after its first dossier event.

- ``egov.open_dossiers`` and ``egov.overdue_open`` (gauges, window ``1m`` = the minute of the
  timer clock; area_code = agency area, entity = agency): open dossiers, and those of them past
  ``due_at`` and not waiting for the applicant (``supplement_requested``). Emitted per agency
  when either count changes.

KPIs of portal checks (topic ``ioc.egov.portal_check.v1``, key ``system_id``; 1h windows,
area_code = the check's ``area_code``, entity = ``system_id``):

- ``egov.uptime`` — checks with ``up`` / checks; sample_count = checks.
- ``egov.response_ms`` — mean ``response_ms`` of the up checks that report one; sample_count =
  those checks (not emitted for an hour without any).

Alerts:

- ``egov.portal_down`` (:class:`PortalDownRule`, critical, labels: system_id) — fires at the
  3rd consecutive check with ``up`` = false of a system (``starts_at`` = the first failed check,
  ``updated_at`` = the 3rd), resolves at the first later check with ``up`` = true
  (``ends_at`` = that check). Checks of a system are one sequence in event time whatever the
  probe location; a check not newer than the last one seen is ignored (re-sent or out of
  order). The failed checks of the current run are held (key ``system_id``), so a restart
  replays them and keeps the count.
- ``egov.on_time_rate_low`` (:class:`DossierRule`, warning, labels: agency) — evaluated when a
  day closes: the agency's 30-day on-time rate < :data:`ON_TIME_THRESHOLD` (0.95) with at least
  :data:`MIN_DECIDED` (20) decided dossiers in the window fires (``starts_at`` = the end of that
  day); later days still below update the episode when the rate changes; the first day with
  the rate ≥ 0.95 resolves it (``ends_at`` = the end of that day). Twenty decisions is the
  smallest sample where a single late dossier cannot by itself push a rate below 95 %; days
  without any decided dossier in the window change nothing.

Summaries are Vietnamese and name the agency and its area (or the system) with the value and
the threshold.

**State and exactness.** The rule holds every event of a dossier under the key ``dossier_id``
(one agency, so one partition) while the dossier is open, and after it closed until its last
event is :data:`RELEASE_MARGIN` (10 days) older than the 30-day window of the next day to close;
then it releases them, forgets the dossier and, for :data:`RELEASED_MEMORY`, ignores re-sent
events of it. After a crash the worker replays from the oldest held event of each partition and
the rule rebuilds the same state. A replay may start earlier than the state needs (an old open
dossier), so a day's 30-day values are published only when the rule knows it has the whole
window: from the latest *first* event time among the partitions it saw before its first
evaluation (producers send a partition's events in event-time order; the margin makes every
active partition replay from before the window). The same guard keeps partial windows of a fresh
deployment out of the KPI table. Limits: a partition with no dossier activity for longer than
the window plus the margin is not replayed and cannot be checked; gauge values of past minutes
may be re-published from the replayed state. The alert state is restored from the alert log:
days up to an agency's latest alert record are not evaluated again. The dossier topic keeps
:data:`DOSSIER_RETENTION` (180 days) so open dossiers survive restarts; a dossier open longer
than that drops out of the open counts after a restart. """

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.infra.reference import Area, ReferenceData
from ioc.infra.reference_egov import Agency, PortalSystem, load_agencies, load_systems
from ioc.streams.domain import BaseRule, Domain, Record
from ioc.streams.engine import TP, KpiFamily
from ioc.streams.rules import alert_record, kpi_record
from ioc.streams.windows import LOCAL_TZ, WINDOWS

DOSSIER_TOPIC = "ioc.egov.dossier.v1"
PORTAL_CHECK_TOPIC = "ioc.egov.portal_check.v1"

RECEIVED_KPI = "egov.dossiers_received"
RECEIVED_ONLINE_KPI = "egov.dossiers_received_online"
RESOLVED_KPI = "egov.dossiers_resolved"
RESOLVED_ON_TIME_KPI = "egov.dossiers_resolved_on_time"
ON_TIME_RATE_KPI = "egov.on_time_rate"
ONLINE_RATE_KPI = "egov.online_rate"
ONLINE_PAYMENT_RATE_KPI = "egov.online_payment_rate"
OPEN_KPI = "egov.open_dossiers"
OVERDUE_OPEN_KPI = "egov.overdue_open"
UPTIME_KPI = "egov.uptime"
RESPONSE_MS_KPI = "egov.response_ms"

PORTAL_DOWN_RULE = "egov.portal_down"
ON_TIME_RULE = "egov.on_time_rate_low"

DECIDED = ("resolved", "rejected")
CLOSED = (*DECIDED, "withdrawn")
WAITING = "supplement_requested"

HORIZON = timedelta(days=30)
ON_TIME_THRESHOLD = 0.95
MIN_DECIDED = 20
CONSECUTIVE_DOWN = 3
LATENESS = timedelta(minutes=2)
"""How long after a day's end the rule waits for late events (the platform's default)."""
QUIET = timedelta(days=7)
RELEASE_MARGIN = timedelta(days=10)
"""Closed dossiers are kept this much longer than the oldest window still to publish needs, so
that after a restart every partition replays from before that window (weekends and the Tết
holiday included) and the rule knows its state is complete (see the module docstring)."""
DOSSIER_RETENTION = timedelta(days=180)
SETTLE = timedelta(seconds=5)
"""Wall-clock time the rule waits after its first dossier event before it closes any day, so
that every partition assigned to the worker has delivered its first records: Faust hands
partitions over as their first fetches complete, not all at once, and a partition seen late
would otherwise miss from the days closed before it. A batch run (``ioc run
--exit-when-idle S``) closes days only if it lasts that long: S ≥ 5 s."""
RELEASED_MEMORY = timedelta(days=60)
"""How long the ids of released dossiers are remembered, so a re-sent old event of one does
not bring it back as an open dossier."""

RECEIVED_FAMILY = "egov.received.1d"
DECIDED_FAMILY = "egov.decided.1d"
PORTAL_FAMILY = "egov.portal.1h"

STATUS_VI = {
    "received": "đã tiếp nhận", "processing": "đang xử lý",
    "supplement_requested": "chờ bổ sung", "supplement_returned": "đã bổ sung",
    "resolved": "đã giải quyết", "rejected": "từ chối giải quyết", "withdrawn": "rút hồ sơ",
}
CHANNEL_VI = {"online": "trực tuyến", "in_person": "trực tiếp", "post": "bưu chính"}


def pct_vi(x: float) -> str:
    """``0.885`` → ``88,5%``; whole numbers without decimals (``95%``)."""
    text = f"{x * 100:.1f}".replace(".", ",")
    return text.removesuffix(",0") + "%"


def on_time(event: Mapping[str, Any]) -> bool:
    resolved: datetime | None = event.get("resolved_at")
    return resolved is not None and resolved <= event["due_at"]


# -- window KPIs ----------------------------------------------------------------------------


class ReceivedCounts:
    def __init__(self) -> None:
        self.received = 0
        self.online = 0

    def add(self, event: Mapping[str, Any]) -> None:
        self.received += 1
        self.online += event["channel"] == "online"

    def results(self) -> list[tuple[str, float, int]]:
        n = self.received
        return [(RECEIVED_KPI, float(n), n), (RECEIVED_ONLINE_KPI, float(self.online), n)]


class DecidedCounts:
    def __init__(self) -> None:
        self.decided = 0
        self.on_time = 0

    def add(self, event: Mapping[str, Any]) -> None:
        self.decided += 1
        self.on_time += on_time(event)

    def results(self) -> list[tuple[str, float, int]]:
        n = self.decided
        return [(RESOLVED_KPI, float(n), n), (RESOLVED_ON_TIME_KPI, float(self.on_time), n)]


class PortalStats:
    def __init__(self) -> None:
        self.checks = 0
        self.up = 0
        self.response_sum = 0
        self.responses = 0

    def add(self, event: Mapping[str, Any]) -> None:
        self.checks += 1
        if event["up"]:
            self.up += 1
            if event.get("response_ms") is not None:
                self.response_sum += int(event["response_ms"])
                self.responses += 1

    def results(self) -> list[tuple[str, float, int]]:
        out = [(UPTIME_KPI, self.up / self.checks, self.checks)] if self.checks else []
        if self.responses:
            out.append((RESPONSE_MS_KPI, self.response_sum / self.responses, self.responses))
        return out


def _received_key(ev: Mapping[str, Any]) -> tuple[str, str] | None:
    return (ev["area_code"], ev["agency"]) if ev["status"] == "received" else None


def _decided_key(ev: Mapping[str, Any]) -> tuple[str, str] | None:
    return (ev["area_code"], ev["agency"]) if ev["status"] in DECIDED else None


def egov_families() -> list[KpiFamily]:
    return [
        KpiFamily(RECEIVED_FAMILY, DOSSIER_TOPIC, WINDOWS["1d"], _received_key,
                  lambda a, e: ReceivedCounts()),
        KpiFamily(DECIDED_FAMILY, DOSSIER_TOPIC, WINDOWS["1d"], _decided_key,
                  lambda a, e: DecidedCounts()),
        KpiFamily(PORTAL_FAMILY, PORTAL_CHECK_TOPIC, WINDOWS["1h"],
                  lambda ev: (ev["area_code"], ev["system_id"]), lambda a, e: PortalStats()),
    ]


# -- dossier state, 30-day rates, gauges and the on-time alert -------------------------------


@dataclass
class _Dossier:
    dossier_id: str
    agency: str
    tp: TP | None
    received_at: datetime
    channel: str
    due_at: datetime
    status: str
    last_at: datetime
    resolved_at: datetime | None = None
    fee_required: bool = False
    paid_online: bool = False

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    @property
    def ends_at(self) -> datetime:
        """The latest time any KPI reads from this dossier."""
        return max(self.last_at, self.resolved_at or self.last_at)


@dataclass(frozen=True)
class RollingStats:
    """One agency's dossiers in a 30-day window."""

    received: int = 0
    online: int = 0
    decided: int = 0
    on_time: int = 0
    fee_decided: int = 0
    paid_online: int = 0

    def kpis(self) -> list[tuple[str, float, int]]:
        out = []
        if self.decided:
            out.append((ON_TIME_RATE_KPI, self.on_time / self.decided, self.decided))
        if self.received:
            out.append((ONLINE_RATE_KPI, self.online / self.received, self.received))
        if self.fee_decided:
            out.append((ONLINE_PAYMENT_RATE_KPI, self.paid_online / self.fee_decided,
                        self.fee_decided))
        return out


def day_end(ts: datetime) -> datetime:
    """The end (next local midnight, UTC) of the Asia/Ho_Chi_Minh day containing ``ts``."""
    return WINDOWS["1d"].bounds(ts)[1]


_STATUS_RANK = {s: i for i, s in enumerate(
    ("received", "processing", "supplement_requested", "supplement_returned", "withdrawn",
     "rejected", "resolved"))}


class DossierRule(BaseRule):
    """The dossier state of every agency: 30-day rates, open/overdue gauges and the on-time
    alert (see the module docstring)."""

    name = "egov.dossiers"
    rule = ON_TIME_RULE
    topics = (DOSSIER_TOPIC,)

    def __init__(self, agencies: Mapping[str, Agency], areas: Mapping[str, Area], *,
                 threshold: float = ON_TIME_THRESHOLD, min_decided: int = MIN_DECIDED,
                 horizon: timedelta = HORIZON, lateness: timedelta = LATENESS,
                 quiet: timedelta = QUIET, release_margin: timedelta = RELEASE_MARGIN,
                 settle: timedelta = SETTLE,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.agencies = agencies
        self.areas = areas
        self.threshold = threshold
        self.min_decided = min_decided
        self.horizon = horizon
        self.lateness = lateness
        self.quiet = quiet
        self.release_margin = release_margin
        self.settle = settle
        self.clock = clock
        self._started: datetime | None = None  # wall clock at the first dossier event
        self.dossiers: dict[str, _Dossier] = {}
        self.by_agency: dict[str, set[str]] = {}
        self.agency_area: dict[str, str] = {}
        self.released: dict[str, datetime] = {}
        self._closing: list[tuple[datetime, str]] = []  # heap of (ends_at, dossier id)
        self.tp_watermark: dict[TP, datetime] = {}
        self.tp_first: dict[TP, datetime] = {}
        self.complete_from: datetime | None = None
        self.evaluated_through: datetime | None = None
        self.now: datetime | None = None
        self.dirty: set[str] = set()
        self._provisional: dict[tuple[str, str], tuple[datetime, float, int]] = {}
        self._gauges: dict[str, tuple[int, int]] = {}
        self._gauge_minute: datetime | None = None
        self._gauge_dirty: set[str] = set()
        self.open_by_agency: dict[str, set[str]] = {}
        self.firing: dict[str, dict[str, Any]] = {}
        self.alert_seen: dict[str, datetime] = {}

    # -- wording -----------------------------------------------------------------------------
    def _agency_label(self, agency: str) -> str:
        a = self.agencies.get(agency)
        name = a.name_vi if a else agency
        area = self.areas.get(self.area_of(agency))
        return f"{name} ({area.name_vi})" if area else name

    def area_of(self, agency: str) -> str:
        a = self.agencies.get(agency)
        return a.area_code if a else self.agency_area.get(agency, "")

    # -- events ------------------------------------------------------------------------------
    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        ts: datetime = event["occurred_at"]
        if self._started is None:
            self._started = self.clock()
        pos = self.holds.current
        tp = pos[0] if pos is not None else None
        if tp is not None:
            if tp not in self.tp_first:
                self.tp_first[tp] = ts
                # A partition first seen with live data (at the timer clock) is new or was
                # quiet: it brings no history the windows could miss.
                live = self.now is not None and ts >= self.now - self.lateness
                if self.evaluated_through is None and not live:
                    self.complete_from = max(self.complete_from or ts, ts)
            if tp not in self.tp_watermark or ts > self.tp_watermark[tp]:
                self.tp_watermark[tp] = ts
        did = str(event["dossier_id"])
        if did in self.released:
            return []  # a re-sent event of a dossier already out of every window
        d = self.dossiers.get(did)
        if d is None:
            d = _Dossier(did, event["agency"], tp, event["received_at"], event["channel"],
                         event["due_at"], event["status"], ts)
            self.dossiers[did] = d
            self.by_agency.setdefault(d.agency, set()).add(did)
            self._apply(d, event)
        elif (ts, _STATUS_RANK.get(event["status"], 0)) > (
                d.last_at, _STATUS_RANK.get(d.status, 0)):
            if event["agency"] != d.agency:  # transferred to another agency
                self.by_agency.get(d.agency, set()).discard(did)
                self.open_by_agency.get(d.agency, set()).discard(did)
                self.dirty.add(d.agency)
                self._gauge_dirty.add(d.agency)
                self.by_agency.setdefault(event["agency"], set()).add(did)
            self._apply(d, event)  # a later non-closing event reopens a closed dossier
        self.agency_area.setdefault(d.agency, event["area_code"])
        self.holds.hold(did)
        self.dirty.add(d.agency)
        self._track_open(d)
        if d.closed:
            heapq.heappush(self._closing, (d.ends_at, did))
            self._release_expired()
        return []

    def _track_open(self, d: _Dossier) -> None:
        ids = self.open_by_agency.setdefault(d.agency, set())
        if d.closed:
            ids.discard(d.dossier_id)
        else:
            ids.add(d.dossier_id)
        self._gauge_dirty.add(d.agency)

    @staticmethod
    def _apply(d: _Dossier, event: Mapping[str, Any]) -> None:
        d.agency = event["agency"]
        d.received_at = event["received_at"]
        d.channel = event["channel"]
        d.due_at = event["due_at"]
        d.status = event["status"]
        d.last_at = event["occurred_at"]
        d.resolved_at = event.get("resolved_at") if d.status in DECIDED else None
        d.fee_required = bool(event.get("fee_required"))
        d.paid_online = bool(event.get("paid_online"))

    # -- what the state may drop ---------------------------------------------------------------
    def _next_day_end(self) -> datetime | None:
        """End of the next day to close (evaluate), or ``None`` before any data."""
        if self.evaluated_through is not None:
            return day_end(self.evaluated_through)
        if self.complete_from is None:
            return None
        return day_end(self.complete_from + self.horizon - timedelta(milliseconds=1))

    def cutoff(self) -> datetime | None:
        """Dossiers closed before this are released: they are in no window still to be
        published, by :data:`RELEASE_MARGIN`."""
        nxt = self._next_day_end()
        return None if nxt is None else nxt - self.horizon - self.release_margin

    def _release_expired(self) -> None:
        cutoff = self.cutoff()
        if cutoff is None:
            return
        while self._closing and self._closing[0][0] < cutoff:
            ends, did = heapq.heappop(self._closing)
            d = self.dossiers.get(did)
            if d is None or not d.closed or d.ends_at != ends:
                continue  # stale heap entry (the dossier changed or is gone)
            del self.dossiers[did]
            self.by_agency.get(d.agency, set()).discard(did)
            self.holds.release(did)
            self.released[did] = ends

    # -- the rolling windows ---------------------------------------------------------------------
    def stats(self, agency: str, end: datetime) -> RollingStats:
        """The agency's dossiers in the 30-day window ending at ``end``."""
        start = end - self.horizon
        received = online = decided = on_time_n = fee = paid = 0
        for did in self.by_agency.get(agency, ()):
            d = self.dossiers[did]
            if start <= d.received_at < end:
                received += 1
                online += d.channel == "online"
            if d.resolved_at is not None and start <= d.resolved_at < end \
                    and d.status in DECIDED:
                decided += 1
                on_time_n += d.resolved_at <= d.due_at
                if d.fee_required:
                    fee += 1
                    paid += d.paid_online
        return RollingStats(received, online, decided, on_time_n, fee, paid)

    def _day_closed(self, end: datetime, now: datetime) -> bool:
        limit = end + self.lateness
        if now < limit:
            return False
        unread = self.holds.progress.unread
        if unread is None:  # no assignment known (pure tests): the partitions seen
            return all(wm >= limit or wm < now - self.quiet
                       for wm in self.tp_watermark.values())
        mine = {tp: left for tp, left in unread.items() if tp[0] == DOSSIER_TOPIC}
        if not mine:
            return False  # the topic is not assigned (yet): nothing is known complete
        for tp, left in mine.items():
            wm = self.tp_watermark.get(tp)
            if wm is not None and wm >= limit:
                continue
            # Behind the day's end: only a partition read to its end may be quiet (or empty);
            # one still being read (a replay, a busy worker) holds the day back whatever the
            # timer clock says — other topics' live data moves that clock, not this partition.
            if left is None or left > 0 or (wm is not None and wm >= now - self.quiet):
                return False
        return True

    def _kpi(self, kpi: str, agency: str, end: datetime, value: float, n: int,
             now: datetime, final: bool) -> Record:
        return kpi_record(kpi=kpi, window="30d", start=end - self.horizon, end=end,
                          area_code=self.area_of(agency), entity=agency, value=value,
                          sample_count=n, computed_at=now, final=final)

    def _close_day(self, end: datetime, now: datetime) -> list[Record]:
        out: list[Record] = []
        for agency in sorted(self.by_agency):
            st = self.stats(agency, end)
            for kpi, value, n in st.kpis():
                out.append(self._kpi(kpi, agency, end, value, n, now, final=True))
            out.extend(self._evaluate_alert(agency, end, st))
        return out

    def _provisional_values(self, now: datetime) -> list[Record]:
        end = day_end(now)
        if self.complete_from is None or end - self.horizon < self.complete_from:
            return []
        out: list[Record] = []
        for agency in sorted(self.dirty):
            for kpi, value, n in self.stats(agency, end).kpis():
                if self._provisional.get((kpi, agency)) != (end, value, n):
                    self._provisional[(kpi, agency)] = (end, value, n)
                    out.append(self._kpi(kpi, agency, end, value, n, now, final=False))
        self.dirty.clear()
        return out

    def _gauge_values(self, now: datetime) -> list[Record]:
        """Open and overdue counts of the agencies whose open dossiers changed, and of every
        agency when the minute changed (time alone makes dossiers overdue)."""
        minute = now.replace(second=0, microsecond=0)
        if minute != self._gauge_minute:
            self._gauge_minute = minute
            agencies = set(self.open_by_agency) | set(self._gauges)
        else:
            agencies = self._gauge_dirty
        self._gauge_dirty = set()
        out: list[Record] = []
        for agency in sorted(agencies):
            ids = self.open_by_agency.get(agency, set())
            overdue = sum(1 for did in ids if self.dossiers[did].status != WAITING
                          and self.dossiers[did].due_at < now)
            value = (len(ids), overdue)
            if self._gauges.get(agency) == value:
                continue
            self._gauges[agency] = value
            for kpi, v in ((OPEN_KPI, value[0]), (OVERDUE_OPEN_KPI, value[1])):
                out.append(kpi_record(kpi=kpi, window="1m", start=minute,
                                      end=minute + timedelta(minutes=1),
                                      area_code=self.area_of(agency), entity=agency,
                                      value=v, sample_count=value[0], computed_at=now,
                                      final=True))
        return out

    def on_timer(self, now: datetime) -> list[Record]:
        self.now = now
        out: list[Record] = []
        if self._started is None or self.clock() - self._started < self.settle:
            return self._gauge_values(now)
        nxt = self._next_day_end()
        while nxt is not None and self._day_closed(nxt, now):
            out.extend(self._close_day(nxt, now))
            self.evaluated_through = nxt
            self._release_expired()
            nxt = self._next_day_end()
            self.dirty.update(self.by_agency)  # a new day: every agency's window moved
        self._release_expired()
        if self.released:
            forget_before = now - RELEASED_MEMORY
            for did in [k for k, t in self.released.items() if t < forget_before]:
                del self.released[did]
        out.extend(self._provisional_values(now))
        out.extend(self._gauge_values(now))
        return out

    # -- the on-time alert -------------------------------------------------------------------------
    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """Resume from the alert log: days up to the latest record of an agency were
        evaluated; a firing episode continues."""
        for a in alerts:
            if a["rule"] != self.rule:
                continue
            agency = a["entity"]
            seen = self.alert_seen.get(agency)
            if seen is not None and a["updated_at"] < seen:
                continue
            self.alert_seen[agency] = a["updated_at"]
            if a["status"] == "firing":
                self.firing[agency] = dict(a)
            else:
                self.firing.pop(agency, None)

    def _evaluate_alert(self, agency: str, end: datetime, st: RollingStats) -> list[Record]:
        seen = self.alert_seen.get(agency)
        if st.decided == 0 or (seen is not None and end <= seen):
            return []
        rate = st.on_time / st.decided
        firing = self.firing.get(agency)
        label = self._agency_label(agency)
        counts = f"{st.on_time}/{st.decided} hồ sơ đúng hạn"
        if firing is not None and rate >= self.threshold:
            del self.firing[agency]
            return [dict(firing, status="resolved", ends_at=end, updated_at=end, value=rate,
                         summary=f"Tỷ lệ giải quyết hồ sơ đúng hạn 30 ngày của {label} đã "
                                 f"đạt {pct_vi(rate)} ({counts}), không còn dưới ngưỡng "
                                 f"{pct_vi(self.threshold)}.")]
        low = rate < self.threshold
        if low and (firing is not None or st.decided >= self.min_decided):
            if firing is not None and firing["value"] == rate:
                return []
            day = (end - timedelta(milliseconds=1)).astimezone(LOCAL_TZ)
            rec = alert_record(
                rule=self.rule, labels={"agency": agency}, severity="warning",
                status="firing", domain="egov", area_code=self.area_of(agency), entity=agency,
                value=rate, threshold=self.threshold,
                summary=f"Tỷ lệ giải quyết hồ sơ đúng hạn 30 ngày của {label} chỉ đạt "
                        f"{pct_vi(rate)} ({counts}), dưới ngưỡng {pct_vi(self.threshold)} "
                        f"(30 ngày đến hết ngày {day:%d/%m/%Y}).",
                starts_at=firing["starts_at"] if firing is not None else end,
                ends_at=None, updated_at=end)
            self.firing[agency] = rec
            return [rec]
        return []

    # -- rebalance ---------------------------------------------------------------------------------
    def forget(self, keys: set[str]) -> None:
        lost: set[TP] = set()
        for did in keys:
            d = self.dossiers.pop(did, None)
            if d is None:
                continue
            self.by_agency.get(d.agency, set()).discard(did)
            self.open_by_agency.get(d.agency, set()).discard(did)
            self.dirty.add(d.agency)
            self._gauge_dirty.add(d.agency)
            if d.tp is not None:
                lost.add(d.tp)
        still = {d.tp for d in self.dossiers.values()}
        for tp in lost - still:
            self.tp_watermark.pop(tp, None)


# -- portal down -------------------------------------------------------------------------------


@dataclass
class _SystemState:
    last_at: datetime
    streak: int = 0
    first_down: datetime | None = None
    firing: dict[str, Any] | None = None


def _local_hm(ts: datetime) -> str:
    return f"{ts.astimezone(LOCAL_TZ):%H:%M %d/%m/%Y}"


class PortalDownRule(BaseRule):
    """``consecutive`` failed checks in a row → critical; the first good check resolves (see
    the module docstring)."""

    rule = name = PORTAL_DOWN_RULE
    topics = (PORTAL_CHECK_TOPIC,)

    def __init__(self, systems: Mapping[str, PortalSystem], areas: Mapping[str, Area],
                 consecutive: int = CONSECUTIVE_DOWN) -> None:
        self.systems = systems
        self.areas = areas
        self.consecutive = consecutive
        self.state: dict[str, _SystemState] = {}

    def _name(self, system_id: str) -> str:
        s = self.systems.get(system_id)
        return s.name_vi if s else system_id

    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        for a in alerts:
            if a["rule"] != self.rule:
                continue
            st = self.state.get(a["entity"])
            if st is not None and a["updated_at"] < st.last_at:
                continue
            if a["status"] == "firing":
                self.state[a["entity"]] = _SystemState(a["updated_at"], int(a["value"]),
                                                       a["starts_at"], dict(a))
            else:
                self.state[a["entity"]] = _SystemState(a["updated_at"])

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        sid = str(event["system_id"])
        ts: datetime = event["occurred_at"]
        st = self.state.get(sid)
        if st is not None and ts <= st.last_at:
            return []  # re-sent, out of order, or already counted before a restart
        if st is None:
            st = self.state[sid] = _SystemState(ts)
        st.last_at = ts
        if event["up"]:
            out: list[Record] = []
            if st.firing is not None:
                minutes = round((ts - (st.first_down or ts)).total_seconds() / 60)
                out.append(dict(
                    st.firing, status="resolved", ends_at=ts, updated_at=ts,
                    value=float(st.streak),
                    summary=f"{self._name(sid)} đã hoạt động trở lại lúc {_local_hm(ts)} sau "
                            f"{st.streak} lần kiểm tra liên tiếp không đạt (khoảng {minutes} "
                            "phút gián đoạn)."))
            st.streak, st.first_down, st.firing = 0, None, None
            self.holds.release(sid)
            return out
        self.holds.hold(sid)
        st.streak += 1
        if st.first_down is None:
            st.first_down = ts
        if st.streak < self.consecutive or st.firing is not None:
            return []
        status = event.get("http_status")
        answer = f"HTTP {status}" if status is not None else "không phản hồi"
        where = f", điểm đo {event['check_location']}" if event.get("check_location") else ""
        area = self.areas.get(event["area_code"]) if event.get("area_code") else None
        place = f" ({area.name_vi})" if area else ""
        st.firing = alert_record(
            rule=self.rule, labels={"system_id": sid}, severity="critical", status="firing",
            domain="egov", area_code=event["area_code"], entity=sid, value=float(st.streak),
            threshold=float(self.consecutive),
            summary=f"{self._name(sid)}{place} không truy cập được: {st.streak} lần kiểm tra "
                    f"liên tiếp không đạt từ {_local_hm(st.first_down)} ({answer}{where}).",
            starts_at=st.first_down, ends_at=None, updated_at=ts)
        return [st.firing]

    def forget(self, keys: set[str]) -> None:
        for sid in keys:
            self.state.pop(sid, None)


def egov_domain(ref: ReferenceData, *, settle: timedelta = SETTLE) -> Domain:
    """Agencies and systems come from ``ref.directory``, or the shipped defaults when that
    folder has no egov files (see :mod:`ioc.infra.reference_egov`). Tests that drive the
    processor event by event pass ``settle=timedelta(0)``."""
    return Domain(
        name="egov",
        topics=(DOSSIER_TOPIC, PORTAL_CHECK_TOPIC),
        families=tuple(egov_families()),
        rules=(DossierRule(load_agencies(ref.directory), ref.areas, settle=settle),
               PortalDownRule(load_systems(ref.directory), ref.areas)),
        retention={DOSSIER_TOPIC: DOSSIER_RETENTION},
    )
