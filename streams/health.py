"""Health (``health``): hospital load and notifiable infectious diseases.

Topics: ``ioc.health.facility_status.v1`` (a facility's beds and emergency queue, every 15
minutes; Kafka key ``facility_id``) and ``ioc.health.disease_case.v1`` (one event per notified
case, no personal data; key ``area_code``, the area where the patient lives).

KPIs from facility status (computed by :class:`FacilityLoadRule` from the latest status of
each facility; area_code = the facility's area from reference data, entity = ``facility_id``):

- ``health.bed_occupancy`` (1h): ``beds_occupied / beds_total`` of the latest status received
  in that hour (event time) — it may exceed 1 when patients share beds. ``sample_count`` is
  ``beds_total``, so occupancy of several facilities combines exactly as
  Σ value·sample_count / Σ sample_count (= Σ occupied / Σ beds). Not emitted when
  ``beds_total`` is 0.
- ``health.emergency_waiting`` (1h): ``emergency_waiting`` of the latest status in that hour
  (``sample_count`` 1).
- ``health.icu_occupancy`` (1h): ``icu_occupied / icu_total`` of the latest status in that hour
  when it reports an ICU (``sample_count`` = ``icu_total``).

  These are gauges, emitted when a status changes the hour's value (at most once per tick);
  ``is_final`` becomes true when the facility's first status of a later hour arrives. The
  dashboard's "now" is the newest hour of each facility.

KPIs from disease cases (a case counts once per ``case_id`` and local day, however often it is
re-sent or corrected; corrections keep the diagnosis time ``occurred_at``):

- ``health.cases`` (1d, an engine window cut at local midnight; per area, entity = disease).
- ``health.cases_7d`` (7d; per area, entity = disease): cases diagnosed in the 7 local days
  ending with day *D*; ``window_end`` = the end of *D* (local midnight), ``window_start`` = 7
  days earlier. Computed by :class:`OutbreakRule`: provisional while *D* is open (at most once
  per tick when a case arrives), final when *D* closes; a key whose count drops to 0 gets one
  final 0 so its latest value reads right.
- ``health.incidence_7d_per_100k`` (same key): ``cases_7d / population × 100000``, the
  population of the area from ``areas.csv`` (approximate figures by default); not emitted
  for an area without a population.

Alerts:

- ``health.bed_occupancy`` (labels: facility_id) — evaluated on every status: occupancy
  ≥ 0.90 → warning, ≥ 0.95 → critical; one episode per crossing, whose severity escalates and
  de-escalates in place (same ``alert_id`` and ``starts_at``, a new record only when the
  severity changes); resolved by the first status below 0.90. All timestamps are the status
  times. A status older than the facility's latest is ignored.
- ``health.outbreak`` (labels: area_code, disease) — evaluated when a local day *D* closes:
  cases in the 7 days ending with *D* > 2 × the mean weekly cases of the 4 weeks before (days
  *D*−34 … *D*−7) **and** ≥ 5 → warning, ``starts_at`` = the end of *D* (local midnight);
  ``value`` = the 7-day cases, ``threshold`` = 2 × the 4-week mean. While it holds, each day's
  close with a different count updates the episode; the first close where it no longer holds
  resolves it (``ends_at`` = the end of that day).

When a day closes: the partition of the topic that carries the area (the key is
``area_code``) has seen a case stamped later than the next local midnight plus the allowed
lateness (:data:`LATENESS`, the default ``IOC_ALLOWED_LATENESS_S``), the same rule as the
engine's daily windows — so the evaluation is exact and identical on a replay. A case of an
already closed day is late and not counted (it is still stored raw). Quiet partitions close
their days with their next case; with a province's daily case flow that is the next morning.

Baseline: a day is evaluated only when the rule has seen its partition since before the 35
days the evaluation needs (the first day a worker sees is taken as partial), and a 7-day value
only when its 7 days were all seen: a new deployment starts alerting once it has 35 days of
cases (agencies can send history first), and a restarted worker neither re-judges days it had
judged nor judges days on partial history. (After a restart the first replayed case sets that
start; if the oldest held day of a partition had no case at all, judging resumes that many days
later — a partition of a province's case flow is rarely silent for a whole day.)

State, exact on replay: every counted case is held (``Holds``) under ``area|disease|day``
until that day leaves the 35-day span (the held span is the 35 closed days *D*−34 … *D* and
the open days), so a restarted worker replays exactly the cases it needs; the latest event of
each partition is held too (key ``partition|topic|n``) so a rebalance always tells the rule
which partitions it lost. The topic keeps its events :data:`CASE_RETENTION` (``ioc setup``
sets it). The latest status of each facility is held under its ``facility_id`` (the previous
one is released), until it is :data:`STALE_AFTER` older than its partition's newest status, so
a facility that stopped reporting does not hold the partition's offsets back for ever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ioc.infra.reference import Area, ReferenceData
from ioc.infra.reference_health_edu import HealthFacility, load_facilities
from ioc.streams.domain import BaseRule, Domain, Record
from ioc.streams.engine import TP, KpiFamily
from ioc.streams.rules import alert_record, kpi_record
from ioc.streams.vi import date_vi, number_vi, percent_vi
from ioc.streams.windows import LOCAL_TZ, WINDOWS

FACILITY_STATUS_TOPIC = "ioc.health.facility_status.v1"
DISEASE_CASE_TOPIC = "ioc.health.disease_case.v1"

BED_OCCUPANCY_KPI = "health.bed_occupancy"
EMERGENCY_WAITING_KPI = "health.emergency_waiting"
ICU_OCCUPANCY_KPI = "health.icu_occupancy"
CASES_KPI = "health.cases"
CASES_7D_KPI = "health.cases_7d"
INCIDENCE_7D_KPI = "health.incidence_7d_per_100k"

CASES_FAMILY = "health.cases.1d"

LATENESS = timedelta(seconds=120)
"""How long after local midnight a partition's watermark must be before the day closes; the
default allowed lateness of the engine (``IOC_ALLOWED_LATENESS_S``)."""

BASELINE_DAYS = 35
"""Days one outbreak evaluation reads: the 7-day week and the 4 weeks before it."""

CASE_RETENTION = timedelta(days=60)
"""Kafka retention of the case topic: the 36 held days plus a margin for a stopped worker."""

STALE_AFTER = timedelta(hours=24)

DISEASE_VI = {
    "dengue": "sốt xuất huyết",
    "hand_foot_mouth": "tay chân miệng",
    "measles": "sởi",
    "rubella": "rubella",
    "covid19": "COVID-19",
    "influenza": "cúm",
    "diphtheria": "bạch hầu",
    "pertussis": "ho gà",
    "rabies": "dại",
    "malaria": "sốt rét",
    "other": "bệnh truyền nhiễm khác",
}

DAY = timedelta(days=1)
HOUR = WINDOWS["1h"]


def local_day(ts: datetime) -> date:
    return ts.astimezone(LOCAL_TZ).date()


def day_end(day: date) -> datetime:
    """The local midnight that ends ``day``, in UTC."""
    nxt = day + DAY
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=LOCAL_TZ).astimezone(UTC)


def _place(area_code: str, areas: Mapping[str, Area]) -> str:
    area = areas.get(area_code)
    return area.name_vi if area else area_code


# -- facility load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Status:
    occurred_at: datetime
    area_code: str
    beds_total: int
    beds_occupied: int
    emergency_waiting: int
    icu_total: int | None
    icu_occupied: int | None
    tp: TP | None

    @property
    def occupancy(self) -> float | None:
        return self.beds_occupied / self.beds_total if self.beds_total > 0 else None


class FacilityLoadRule(BaseRule):
    """The facility gauges and the ``health.bed_occupancy`` alert; see the module docstring."""

    rule = name = "health.bed_occupancy"
    topics = (FACILITY_STATUS_TOPIC,)

    def __init__(self, facilities: Mapping[str, HealthFacility], areas: Mapping[str, Area],
                 warning: float = 0.90, critical: float = 0.95,
                 stale_after: timedelta = STALE_AFTER,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.facilities = facilities
        self.areas = areas
        self.warning = warning
        self.critical = critical
        self.stale_after = stale_after
        self.clock = clock
        self.latest: dict[str, _Status] = {}
        self.held: set[str] = set()
        self.firing: dict[str, dict[str, Any]] = {}
        self.emitted: dict[tuple[str, str], Record] = {}
        self.pending: dict[tuple[str, str, datetime], Record] = {}

    # -- wording -----------------------------------------------------------------------------
    def _label(self, facility_id: str, area_code: str) -> str:
        fac = self.facilities.get(facility_id)
        name = fac.name_vi if fac else facility_id
        return f"{name} ({_place(area_code, self.areas)})"

    @staticmethod
    def _beds(st: _Status) -> str:
        return (f"công suất sử dụng giường bệnh {percent_vi(st.occupancy or 0.0)} "
                f"({number_vi(st.beds_occupied)}/{number_vi(st.beds_total)} giường)")

    # -- state -------------------------------------------------------------------------------
    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        for a in alerts:
            if a["rule"] == self.rule and a["status"] == "firing":
                self.firing[a["entity"]] = dict(a)

    def forget(self, keys: set[str]) -> None:
        for fid in keys:
            self.latest.pop(fid, None)
            self.held.discard(fid)
            self.firing.pop(fid, None)
            for kpi in (BED_OCCUPANCY_KPI, EMERGENCY_WAITING_KPI, ICU_OCCUPANCY_KPI):
                self.emitted.pop((kpi, fid), None)

    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        fid = str(event["facility_id"])
        ts: datetime = event["occurred_at"]
        prev = self.latest.get(fid)
        if prev is not None and ts < prev.occurred_at:
            return []  # older than the status we have: stored raw, changes nothing
        fac = self.facilities.get(fid)
        tp = self.holds.current[0] if self.holds.current is not None else None
        st = _Status(ts, fac.area_code if fac else str(event["area_code"]),
                     int(event["beds_total"]), int(event["beds_occupied"]),
                     int(event.get("emergency_waiting") or 0), event.get("icu_total"),
                     event.get("icu_occupied"), tp)
        self.latest[fid] = st
        self.holds.release(fid)
        self.holds.hold(fid)
        self.held.add(fid)
        self._gauges(fid, st)
        self._release_stale(tp, watermark)
        return self._evaluate(fid, st)

    def _release_stale(self, tp: TP | None, watermark: datetime) -> None:
        for fid in [f for f in self.held if self.latest[f].tp == tp
                    and self.latest[f].occurred_at + self.stale_after < watermark]:
            self.holds.release(fid)
            self.held.discard(fid)

    # -- alert -------------------------------------------------------------------------------
    def _evaluate(self, fid: str, st: _Status) -> list[Record]:
        occ = st.occupancy
        if occ is None:
            return []  # no beds in service reported: nothing to judge
        firing = self.firing.get(fid)
        label = self._label(fid, st.area_code)
        if occ < self.warning:
            if firing is None:
                return []
            del self.firing[fid]
            return [dict(firing, status="resolved", ends_at=st.occurred_at,
                         updated_at=st.occurred_at, value=occ,
                         summary=f"{label} đã hết quá tải: {self._beds(st)}, dưới ngưỡng "
                                 f"{percent_vi(self.warning)}.")]
        severity = "critical" if occ >= self.critical else "warning"
        if firing is not None and firing["severity"] == severity:
            return []
        threshold = self.critical if severity == "critical" else self.warning
        if severity == "critical":
            summary = (f"{label} quá tải nghiêm trọng: {self._beds(st)}, vượt ngưỡng "
                       f"{percent_vi(self.critical)}.")
        elif firing is not None:  # down from critical, still high
            summary = (f"{label} giảm tải nhưng vẫn cao: {self._beds(st)}, trên ngưỡng cảnh "
                       f"báo {percent_vi(self.warning)}.")
        else:
            summary = (f"{label} sắp quá tải: {self._beds(st)}, vượt ngưỡng cảnh báo "
                       f"{percent_vi(self.warning)}.")
        rec = alert_record(
            rule=self.rule, labels={"facility_id": fid}, severity=severity, status="firing",
            domain="health", area_code=st.area_code, entity=fid, value=occ,
            threshold=threshold, summary=summary,
            starts_at=firing["starts_at"] if firing is not None else st.occurred_at,
            ends_at=None, updated_at=st.occurred_at)
        self.firing[fid] = rec
        return [rec]

    # -- gauges ------------------------------------------------------------------------------
    def _gauges(self, fid: str, st: _Status) -> None:
        start, end = HOUR.bounds(st.occurred_at)
        values: list[tuple[str, float, int]] = [
            (EMERGENCY_WAITING_KPI, float(st.emergency_waiting), 1)]
        if st.occupancy is not None:
            values.append((BED_OCCUPANCY_KPI, st.occupancy, st.beds_total))
        if st.icu_total and st.icu_occupied is not None:
            values.append((ICU_OCCUPANCY_KPI, st.icu_occupied / st.icu_total, st.icu_total))
        for kpi, value, n in values:
            last = self.emitted.get((kpi, fid))
            if last is not None and last["window_start"] < start and not last["is_final"]:
                # The facility moved on to a new hour: the previous hour's value is final.
                last = dict(last, is_final=True)
                self.pending[(kpi, fid, last["window_start"])] = last
                self.emitted[(kpi, fid)] = last
            if (last is not None and last["window_start"] == start and last["value"] == value
                    and last["area_code"] == st.area_code and last["sample_count"] == n):
                continue
            rec = kpi_record(kpi=kpi, window="1h", start=start, end=end,
                             area_code=st.area_code, entity=fid, value=value, sample_count=n,
                             computed_at=st.occurred_at, final=False)
            self.pending[(kpi, fid, start)] = rec
            self.emitted[(kpi, fid)] = rec

    def on_timer(self, now: datetime) -> list[Record]:
        if not self.pending:
            return []
        computed = self.clock()
        out = [dict(rec, computed_at=computed) for rec in self.pending.values()]
        self.pending.clear()
        return out


# -- disease cases ------------------------------------------------------------------------------


class DistinctCases:
    """Cases in the window, each ``case_id`` once (a correction is not a new case)."""

    def __init__(self) -> None:
        self.case_ids: set[str] = set()

    def add(self, event: Mapping[str, Any]) -> None:
        self.case_ids.add(str(event["case_id"]))

    def results(self) -> list[tuple[str, float, int]]:
        n = len(self.case_ids)
        return [(CASES_KPI, float(n), n)]


def health_families() -> list[KpiFamily]:
    return [KpiFamily(CASES_FAMILY, DISEASE_CASE_TOPIC, WINDOWS["1d"],
                      lambda ev: (str(ev["area_code"]), str(ev["disease"])),
                      lambda a, e: DistinctCases())]


@dataclass
class _Partition:
    first_day: date
    closed_through: date


def _sentinel(tp: TP) -> str:
    return f"partition|{tp[0]}|{tp[1]}"


class OutbreakRule(BaseRule):
    """Rolling 7-day cases and incidence, and the ``health.outbreak`` alert; see the module
    docstring for the semantics, the day close and the held state."""

    rule = name = "health.outbreak"
    topics = (DISEASE_CASE_TOPIC,)

    def __init__(self, areas: Mapping[str, Area], ratio: float = 2.0, min_cases: int = 5,
                 lateness: timedelta = LATENESS,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.areas = areas
        self.ratio = ratio
        self.min_cases = min_cases
        self.lateness = lateness
        self.clock = clock
        self.parts: dict[TP, _Partition] = {}
        self.area_tp: dict[str, TP] = {}
        self.cases: dict[tuple[str, str], dict[date, set[str]]] = {}
        self.firing: dict[tuple[str, str], dict[str, Any]] = {}
        self.judged_until: dict[tuple[str, str], datetime] = {}
        self.dirty: set[tuple[str, str, date]] = set()

    # -- counting ----------------------------------------------------------------------------
    def count(self, key: tuple[str, str], first: date, last: date) -> int:
        days = self.cases.get(key, {})
        return sum(len(ids) for d, ids in days.items() if first <= d <= last)

    def _kpis(self, key: tuple[str, str], day: date, final: bool) -> list[Record]:
        area, disease = key
        n = self.count(key, day - 6 * DAY, day)
        end = day_end(day)
        start = end - 7 * DAY
        now = self.clock()
        out = [kpi_record(kpi=CASES_7D_KPI, window="7d", start=start, end=end, area_code=area,
                          entity=disease, value=n, sample_count=n, computed_at=now,
                          final=final)]
        ref = self.areas.get(area)
        if ref is not None and ref.population > 0:
            out.append(kpi_record(kpi=INCIDENCE_7D_KPI, window="7d", start=start, end=end,
                                  area_code=area, entity=disease,
                                  value=n / ref.population * 100_000, sample_count=n,
                                  computed_at=now, final=final))
        return out

    # -- wording -----------------------------------------------------------------------------
    def _summary(self, key: tuple[str, str], day: date, week: int, mean: float,
                 high: bool) -> str:
        area, disease = key
        name = DISEASE_VI.get(disease, disease)
        place = _place(area, self.areas)
        cases = f"{week} ca trong 7 ngày đến hết {date_vi(day)}"
        base = f"trung bình 4 tuần trước {number_vi(mean, 1)} ca/tuần"
        limits = f"ngưỡng: trên {number_vi(self.ratio)} lần và ít nhất {self.min_cases} ca"
        if not high:
            return f"Dịch {name} tại {place} đã lắng xuống: {cases}, {base} ({limits})."
        times = (f"gấp {number_vi(week / mean, 1)} lần {base}" if mean > 0
                 else "trong khi 4 tuần trước không có ca nào")
        return f"Nguy cơ bùng phát dịch {name} tại {place}: {cases}, {times} ({limits})."

    # -- state -------------------------------------------------------------------------------
    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """Resume from the alert log: an episode still firing goes on, and no day up to an
        alert's latest update is judged again."""
        for a in alerts:
            if a["rule"] != self.rule:
                continue
            key = (a["area_code"], a["entity"])
            if key not in self.judged_until or a["updated_at"] > self.judged_until[key]:
                self.judged_until[key] = a["updated_at"]
                if a["status"] == "firing":
                    self.firing[key] = dict(a)
                else:
                    self.firing.pop(key, None)

    def forget(self, keys: set[str]) -> None:
        areas: set[str] = set()
        for k in keys:
            parts = k.split("|")
            if parts[0] == "partition":
                tp = (parts[1], int(parts[2]))
                self.parts.pop(tp, None)
                areas |= {a for a, t in self.area_tp.items() if t == tp}
            else:
                areas.add(parts[0])
        for area in areas:
            self.area_tp.pop(area, None)
            for state in (self.cases, self.firing, self.judged_until):
                for key in [k for k in state if k[0] == area]:
                    del state[key]
        self.dirty = {d for d in self.dirty if d[0] not in areas}

    # -- events and day closes ---------------------------------------------------------------
    def on_event(self, topic: str, event: Mapping[str, Any], watermark: datetime
                 ) -> list[Record]:
        assert self.holds.current is not None
        tp = self.holds.current[0]
        day = local_day(event["occurred_at"])
        part = self.parts.get(tp)
        if part is None:
            part = self.parts[tp] = _Partition(day, day - DAY)
        self.holds.release(_sentinel(tp))
        self.holds.hold(_sentinel(tp))
        area, disease = str(event["area_code"]), str(event["disease"])
        self.area_tp[area] = tp
        if day > part.closed_through:  # else late: its day was judged already
            ids = self.cases.setdefault((area, disease), {}).setdefault(day, set())
            case_id = str(event["case_id"])
            if case_id not in ids:
                ids.add(case_id)
                self.holds.hold(f"{area}|{disease}|{day.isoformat()}")
                self.dirty.add((area, disease, day))
        out: list[Record] = []
        while day_end(part.closed_through + DAY) + self.lateness <= watermark:
            part.closed_through += DAY
            out.extend(self._close(tp, part, part.closed_through))
        return out

    def _close(self, tp: TP, part: _Partition, day: date) -> list[Record]:
        areas = {a for a, t in self.area_tp.items() if t == tp}
        keys = sorted({k for k in self.cases if k[0] in areas}
                      | {k for k in self.firing if k[0] in areas})
        out: list[Record] = []
        for key in keys:
            if day >= part.first_day + 7 * DAY and self.count(key, day - 7 * DAY, day):
                out.extend(self._kpis(key, day, final=True))
            if day >= part.first_day + BASELINE_DAYS * DAY:
                out.extend(self._judge(key, day))
        horizon = day - BASELINE_DAYS * DAY  # no later evaluation reads this day
        for key in keys:
            days = self.cases.get(key, {})
            for d in [d for d in days if d <= horizon]:
                del days[d]
                self.holds.release(f"{key[0]}|{key[1]}|{d.isoformat()}")
            if not days:
                self.cases.pop(key, None)
        return out

    def _judge(self, key: tuple[str, str], day: date) -> list[Record]:
        end = day_end(day)
        if end <= self.judged_until.get(key, end - DAY):
            return []  # judged before a restart; the alert log has the outcome
        week = self.count(key, day - 6 * DAY, day)
        mean = self.count(key, day - 34 * DAY, day - 7 * DAY) / 4
        high = week >= self.min_cases and week > self.ratio * mean
        firing = self.firing.get(key)
        area, disease = key
        if firing is not None and not high:
            del self.firing[key]
            return [dict(firing, status="resolved", ends_at=end, updated_at=end,
                         value=float(week), threshold=self.ratio * mean,
                         summary=self._summary(key, day, week, mean, high=False))]
        if not high or (firing is not None and firing["value"] == week):
            return []
        rec = alert_record(
            rule=self.rule, labels={"area_code": area, "disease": disease},
            severity="warning", status="firing", domain="health", area_code=area,
            entity=disease, value=week, threshold=self.ratio * mean,
            summary=self._summary(key, day, week, mean, high=True),
            starts_at=firing["starts_at"] if firing is not None else end, ends_at=None,
            updated_at=end)
        self.firing[key] = rec
        return [rec]

    def on_timer(self, now: datetime) -> list[Record]:
        """Provisional 7-day values of the open days that got cases since the last tick."""
        out: list[Record] = []
        for area, disease, day in sorted(self.dirty):
            part = self.parts.get(self.area_tp.get(area, ("", -1)))
            if part is None or day <= part.closed_through:
                continue  # closed meanwhile: its final value went out
            if day >= part.first_day + 7 * DAY:
                out.extend(self._kpis((area, disease), day, final=False))
        self.dirty.clear()
        return out


def health_domain(ref: ReferenceData,
                  clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Domain:
    """Facilities come from ``ref.directory`` (or the shipped list, see
    :mod:`ioc.infra.reference_health_edu`); populations from ``ref.areas``. ``clock`` stamps
    ``computed_at`` of the rules' KPI records (wall clock, like the engine's)."""
    return Domain(
        name="health",
        topics=(FACILITY_STATUS_TOPIC, DISEASE_CASE_TOPIC),
        families=tuple(health_families()),
        rules=(FacilityLoadRule(load_facilities(ref.directory), ref.areas, clock=clock),
               OutbreakRule(ref.areas, clock=clock)),
        retention={DISEASE_CASE_TOPIC: CASE_RETENTION},
    )
