"""Simulated hospital status, notifiable disease cases and school attendance: pure, deterministic.

Like :mod:`ioc.connectors.simulator`, no Kafka and no sleeping: ``events_at(now, interval_s)``
returns the events whose event time falls in ``(now − interval_s, now]``, sorted by time, as
:class:`~ioc.connectors.simulator.SimEvent` values with the Avro schema's field names. The
**first call anchors** the simulation at ``t0 = now − interval_s``: it also returns a small
history (events before ``t0``), because the outbreak and attendance rules judge whole days and
weeks, which a demo of half an hour of simulated time cannot live through. Approximate figures
chosen for the demo, not statistics.

**HealthSimulator** (topics ``ioc.health.facility_status.v1``, ``ioc.health.disease_case.v1``):

* Facility status every 15 minutes per reference facility (a fixed offset of up to two minutes
  per facility). Bed occupancy around a level set by the kind of facility (general hospitals
  0.80–0.86, specialty 0.75–0.84, district health centres 0.55–0.78), higher in the evening
  and at night (admissions), lower around midday (discharges), lower on Sundays, with small
  noise, and never above 0.88 outside the episode. Emergency queue: Poisson, busiest in the
  evening, sized by the kind of facility. ICU occupancy 0.60–0.85 where the facility has ICU
  beds. History: the :attr:`status_backfill` (6 h) before ``t0``, so the wall has a curve.
* **Occupancy episode**: a seed-chosen general hospital (the largest ones first) reports every
  5 minutes from ``t0``: 92 % at ``t0`` + 1 min (warning), 96 % at + 6 min (critical), 93 % at
  + 11 min (back to warning, same alert), 87 % at + 16 min (resolved); its regular reports of
  those 20 minutes are replaced.
* Disease cases: each area × disease has an expected number per day = a rate per 100,000 ×
  the area's population × a season (dengue peaks in October and is low in spring; hand, foot
  and mouth disease in April and October; influenza in January) × fewer notifications at
  weekends. The count of a day is ``floor(expected + u)`` with ``u`` a low-discrepancy
  sequence per area and disease: the right mean with little noise, so ordinary weeks never
  look like outbreaks. Diagnosis times mostly in office hours; age band, hospitalisation,
  classification and diagnosing facility (mostly the area's health centre) by disease; onset
  1–4 days before diagnosis (unknown for a fifth). History: :attr:`case_backfill_days` (56)
  days before ``t0`` — the outbreak rule needs 35 days of baseline before it judges a day.
* **Outbreak episodes** (both need ≥ 100,000 / 50,000 people in the area; the largest areas
  are used when none is that big): *current* — dengue in a seed-chosen populous area ramps up
  over the 6 days before yesterday and jumps yesterday, computed from the baseline so that
  yesterday is the first day whose 7-day count is > 2 × the mean of the 4 weeks before (by a
  margin of 3 cases); it stays as high today (the first case of today at 00:10 local, so the
  day close comes early) and the next two days. The ``health.outbreak`` alert therefore fires
  when yesterday closes, in the worker's first seconds. *Past* — hand, foot and mouth disease
  in another area, extra cases on days −19…−13 (0 = today): it fires around day −18 and
  resolves before day −7, inside the history.

**EduSimulator** (topic ``ioc.edu.attendance.v1``): one report per reference school and school
day from the morning roll call between 07:15 and 08:55 local — preschool and primary schools
Monday to Friday, secondary schools Monday to Saturday, none on Sundays (holidays are not
modelled, so the demo works in any season). Attendance around 0.91 (preschool) to 0.975
(primary), a little lower on Mondays and Saturdays, per-area and per-school noise; enrolled from
the reference list. History: the school days of the :attr:`backfill_days` (10) days before
``t0``. **Episode**: in a seed-chosen area, attendance is about 0.76 on the third school day
before today (heavy rain) and normal the next day, so ``edu.attendance_low`` fires when that
day closes and resolves when the next one closes, both inside the history.

Determinism: every draw is seeded from ``(seed, what, where, when)`` (the episodes also from
the anchoring ``t0``); re-running with the same seed and times yields the same events and ids
(``sim-{seed}-fs-{facility}-{epoch_ms}``, ``sim-{seed}-case-{area}-{disease}-{yyyymmdd}-{n}``,
``sim-{seed}-att-{school}-{yyyymmdd}``), so a replay is deduplicated downstream.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ioc.connectors.simulator import LOCAL_TZ, SimEvent, _poisson, from_epoch_ms, to_epoch_ms
from ioc.infra.reference import Area
from ioc.infra.reference_health_edu import HealthFacility, School

FACILITY_STATUS_TOPIC = "ioc.health.facility_status.v1"
DISEASE_CASE_TOPIC = "ioc.health.disease_case.v1"
ATTENDANCE_TOPIC = "ioc.edu.attendance.v1"

_MINUTE_MS = 60_000
_SLOT_MS = 15 * _MINUTE_MS
_DAY = timedelta(days=1)
_GOLDEN = 0.6180339887498949

# disease: (cases per 100,000 people per day at the season's peak, season)
_DISEASES: dict[str, tuple[float, str]] = {
    "dengue": (0.9, "dengue"),
    "hand_foot_mouth": (0.3, "hfmd"),
    "influenza": (0.15, "flu"),
    "covid19": (0.03, "flat"),
    "measles": (0.01, "flat"),
    "other": (0.02, "flat"),
    "rubella": (0.003, "flat"),
    "pertussis": (0.003, "flat"),
    "malaria": (0.002, "flat"),
    "diphtheria": (0.0008, "flat"),
    "rabies": (0.0008, "flat"),
}
_WEEKDAY = (1.08, 1.08, 1.08, 1.08, 1.08, 0.8, 0.6)  # Monday … Sunday; mean 1.0
_AGES = ("age_0_4", "age_5_14", "age_15_24", "age_25_49", "age_50_64", "age_65_plus")
_AGE_MIX: dict[str, tuple[float, ...]] = {
    "dengue": (0.05, 0.20, 0.25, 0.35, 0.10, 0.05),
    "hand_foot_mouth": (0.85, 0.15, 0, 0, 0, 0),
    "measles": (0.50, 0.30, 0.20, 0, 0, 0),
    "rubella": (0.20, 0.40, 0.40, 0, 0, 0),
    "pertussis": (0.90, 0.10, 0, 0, 0, 0),
    "diphtheria": (0.20, 0.60, 0.20, 0, 0, 0),
}
_DEFAULT_AGES = (0.10, 0.15, 0.15, 0.30, 0.15, 0.15)
_HOSPITALISED = {"dengue": 0.45, "hand_foot_mouth": 0.25, "measles": 0.35, "influenza": 0.10,
                 "covid19": 0.10, "diphtheria": 0.90, "pertussis": 0.60, "rabies": 1.0,
                 "malaria": 0.50, "rubella": 0.05, "other": 0.20}
# Diagnosis (notification) time by local hour: office hours, some emergency cases at night.
_CASE_HOURS = (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.5, 2.0, 2.0, 1.8, 1.2,
               0.6, 1.0, 1.6, 1.6, 1.4, 0.8, 0.5, 0.5, 0.4, 0.4, 0.3, 0.2)
# Emergency queue by local hour (share of the evening peak).
_ER_HOURS = (0.4, 0.3, 0.3, 0.3, 0.3, 0.4, 0.6, 0.8, 0.9, 0.9, 0.8, 0.7,
             0.6, 0.6, 0.7, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 0.9, 0.7, 0.5)
_KIND = {  # kind: (occupancy low, high, emergency queue at the evening peak)
    "general_hospital": (0.80, 0.86, 9.0),
    "specialty_hospital": (0.75, 0.84, 4.0),
    "health_centre": (0.55, 0.78, 2.0),
    "private_hospital": (0.55, 0.75, 1.5),
    "other": (0.50, 0.70, 1.0),
}
_EPISODE_OCCUPANCY = ((1, 0.92), (6, 0.96), (11, 0.93), (16, 0.87))  # (minute after t0, share)
_PAST_OUTBREAK = (2, 3, 4, 5, 4, 3, 2)  # extra cases on days −19 … −13


def _local_date(ms: int) -> date:
    return from_epoch_ms(ms).astimezone(LOCAL_TZ).date()


def _midnight_ms(day: date) -> int:
    return to_epoch_ms(datetime(day.year, day.month, day.day, tzinfo=LOCAL_TZ))


def _stable(*parts: object) -> float:
    """A fixed number in [0, 1) for ``parts`` (independent of the seed and of Python's hash)."""
    return random.Random("|".join(map(str, parts))).random()


def season(kind: str, day: date) -> float:
    doy = day.timetuple().tm_yday
    if kind == "dengue":
        return 0.2 + 0.8 * (0.5 + 0.5 * math.cos(2 * math.pi * (doy - 288) / 365))
    if kind == "hfmd":
        return 0.3 + 0.7 * (0.5 + 0.5 * math.cos(4 * math.pi * (doy - 110) / 365))
    if kind == "flu":
        return 0.4 + 0.6 * (0.5 + 0.5 * math.cos(2 * math.pi * (doy - 20) / 365))
    return 1.0


@dataclass(frozen=True)
class OutbreakPlan:
    """Scripted extra cases of one area and disease: local day → extra cases."""

    area_code: str
    disease: str
    extra: dict[date, int]


class _Anchored:
    """Shared ``events_at``: history on the first call, then events by interval."""

    def __init__(self) -> None:
        self.t0: datetime | None = None

    def _anchor(self, t0_ms: int) -> list[SimEvent]:
        raise NotImplementedError

    def _between(self, start_ms: int, end_ms: int) -> list[SimEvent]:
        raise NotImplementedError

    def events_at(self, now: datetime, interval_s: float = 60.0) -> list[SimEvent]:
        """Events with ``now − interval_s < occurred_at <= now`` (plus, on the first call, the
        history before that)."""
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        end = to_epoch_ms(now)
        start = end - round(interval_s * 1000)
        out: list[SimEvent] = []
        if self.t0 is None:
            self.t0 = from_epoch_ms(start)
            out = self._anchor(start)
        out += self._between(start, end)
        return sorted(out, key=lambda e: (e.value["occurred_at"], e.value["event_id"]))


class HealthSimulator(_Anchored):
    def __init__(self, facilities: Mapping[str, HealthFacility], areas: Mapping[str, Area],
                 seed: int = 0, *, source: str = "SYT-QNA", case_source: str = "CDC-QNA",
                 episodes: bool = True, case_backfill_days: int = 56,
                 status_backfill: timedelta = timedelta(hours=6)) -> None:
        super().__init__()
        self.facilities = dict(sorted(facilities.items()))
        self.areas = {c: a for c, a in sorted(areas.items()) if a.level != "province"}
        if not self.areas:
            raise ValueError("the health simulator needs at least one sub-provincial area")
        self.seed = seed
        self.source = source
        self.case_source = case_source
        self.episodes = episodes
        self.case_backfill_days = case_backfill_days
        self.status_backfill = status_backfill
        self.plans: list[OutbreakPlan] = []
        self.episode_facility: str | None = None
        self._cases: dict[date, list[SimEvent]] = {}
        self._centre: dict[str, str] = {}
        for fid, fac in self.facilities.items():
            if fac.kind == "health_centre":
                self._centre.setdefault(fac.area_code, fid)
        self._hospitals = [f for f, fac in self.facilities.items()
                           if fac.kind == "general_hospital"]

    # -- anchoring: history and episodes ---------------------------------------------------------
    def _anchor(self, t0_ms: int) -> list[SimEvent]:
        rng = random.Random(f"{self.seed}|health-episodes|{t0_ms}")
        today = _local_date(t0_ms)
        if self.episodes:
            big = sorted(self.facilities.values(), key=lambda f: (-f.beds, f.facility_id))
            hospitals = [f.facility_id for f in big if f.kind == "general_hospital"][:3]
            candidates = hospitals or [f.facility_id for f in big][:1]
            self.episode_facility = rng.choice(candidates) if candidates else None
            self.plans = self._plan_outbreaks(rng, today)
        self._cases.clear()
        first = _midnight_ms(today - self.case_backfill_days * _DAY)
        history = [e for day in self._days(first, t0_ms) for e in self._day_cases(day)
                   if first <= to_epoch_ms(e.occurred_at) <= t0_ms]
        history += self._statuses(t0_ms - int(self.status_backfill.total_seconds() * 1000),
                                  t0_ms, inclusive_start=True)
        return history

    def _areas_by_size(self, min_population: int) -> list[str]:
        big = [c for c, a in self.areas.items() if a.population >= min_population]
        if big:
            return big
        return sorted(self.areas, key=lambda c: -self.areas[c].population)[:3]

    def _plan_outbreaks(self, rng: random.Random, today: date) -> list[OutbreakPlan]:
        current_area = rng.choice(self._areas_by_size(100_000))
        past_candidates = [c for c in self._areas_by_size(50_000) if c != current_area]
        plans = []
        if past_candidates:
            past_area = rng.choice(past_candidates)
            plans.append(OutbreakPlan(past_area, "hand_foot_mouth", {
                today + (k - 19) * _DAY: n for k, n in enumerate(_PAST_OUTBREAK)}))
        plans.append(self._current_outbreak(current_area, today))
        return plans

    def _current_outbreak(self, area: str, today: date) -> OutbreakPlan:
        """Dengue extras: a ramp over days −7…−2 that keeps every 7-day count ≤ 2 × its 4-week
        mean, then enough on day −1 to be 3 cases above it; as many each day after."""
        def base(day: date) -> int:
            return self._count(area, "dengue", day)

        extra = {today - k * _DAY: n for k, n in zip(range(7, 1, -1), (0, 1, 1, 1, 2, 2),
                                                        strict=True)}

        def total(day: date) -> int:
            return base(day) + extra.get(day, 0)

        def week(day: date) -> int:
            return sum(total(day - k * _DAY) for k in range(7))

        def mean(day: date) -> float:
            return sum(total(day - k * _DAY) for k in range(7, 35)) / 4

        def high(day: date) -> bool:
            return week(day) >= 5 and week(day) > 2 * mean(day)

        ramp = sorted(extra)
        while True:  # keep the ramp below the rule: take cases off until no ramp day is high
            early = next((d for d in ramp if high(d)), None)
            fixable = [d for d in ramp if early is not None and d <= early and extra[d]]
            if not fixable:
                break
            extra[fixable[-1]] -= 1
        yesterday = today - _DAY
        need = max(5, math.floor(2 * mean(yesterday)) + 1) + 3
        extra[yesterday] = max(0, need - week(yesterday))
        for k in range(3):
            extra[today + k * _DAY] = max(extra[yesterday], 3)
        return OutbreakPlan(area, "dengue", extra)

    # -- disease cases -----------------------------------------------------------------------
    def _expected(self, area: str, disease: str, day: date) -> float:
        rate, kind = _DISEASES[disease]
        a = self.areas[area]
        factor = 1.0
        if disease == "dengue":
            factor = 1.3 if a.level in ("city", "town") else (0.6 if a.population < 50_000
                                                              else 1.0)
        elif disease == "malaria":
            factor = 3.0 if a.population < 50_000 else 0.0
        return (rate * a.population / 100_000 * season(kind, day) * factor
                * _WEEKDAY[day.weekday()])

    def _count(self, area: str, disease: str, day: date) -> int:
        phase = _stable(self.seed, "phase", area, disease)
        u = (phase + day.toordinal() * _GOLDEN) % 1.0
        return math.floor(self._expected(area, disease, day) + u)

    def _days(self, start_ms: int, end_ms: int) -> list[date]:
        first, last = _local_date(start_ms), _local_date(end_ms)
        return [first + k * _DAY for k in range((last - first).days + 1)]

    def _day_cases(self, day: date) -> list[SimEvent]:
        cached = self._cases.get(day)
        if cached is None:
            if len(self._cases) > 128:
                self._cases.clear()
            cached = self._cases[day] = self._generate_cases(day)
        return cached

    def _generate_cases(self, day: date) -> list[SimEvent]:
        out = []
        extras = {(p.area_code, p.disease): p.extra.get(day, 0) for p in self.plans}
        for area in self.areas:
            for disease in _DISEASES:
                n_base = self._count(area, disease, day)
                n_extra = extras.get((area, disease), 0)
                for n in range(n_base + n_extra):
                    out.append(self._case(area, disease, day, n, early=n == n_base))
        return out

    def _case(self, area: str, disease: str, day: date, n: int, early: bool) -> SimEvent:
        rng = random.Random(f"{self.seed}|case|{area}|{disease}|{day.isoformat()}|{n}")
        if early:  # the first scripted case of a day: just after midnight, closes the last day
            ms = _midnight_ms(day) + 10 * _MINUTE_MS
        else:
            hour = rng.choices(range(24), weights=_CASE_HOURS)[0]
            ms = _midnight_ms(day) + hour * 3_600_000 + rng.randrange(3_600_000)
        ages = _AGE_MIX.get(disease, _DEFAULT_AGES)
        facility = self._centre.get(area, "")
        if (rng.random() < 0.3 or not facility) and self._hospitals:
            facility = rng.choice(self._hospitals)
        confirmed = 0.3 if disease == "dengue" else 0.6 if disease == "measles" else 0.5
        roll = rng.random()
        classification = ("confirmed" if roll < confirmed
                          else "probable" if roll < confirmed + 0.15 else "suspected")
        onset = day - rng.randint(1, 4) * _DAY if rng.random() < 0.8 else None
        stamp = day.strftime("%Y%m%d")
        return SimEvent(DISEASE_CASE_TOPIC, area, {
            "event_id": f"sim-{self.seed}-case-{area}-{disease}-{stamp}-{n}",
            "occurred_at": from_epoch_ms(ms),
            "source": self.case_source,
            "area_code": area,
            "case_id": f"{area}-{stamp}-{disease}-{n}",
            "disease": disease,
            "classification": classification,
            "onset_date": onset,
            "age_group": rng.choices(_AGES, weights=ages)[0],
            "hospitalized": rng.random() < _HOSPITALISED.get(disease, 0.2),
            "facility_id": facility,
        })

    # -- facility status ---------------------------------------------------------------------
    def _offset_ms(self, fid: str) -> int:
        return int(_stable("status-offset", fid) * 120_000)

    def _in_episode(self, fid: str, ms: int) -> bool:
        if fid != self.episode_facility or self.t0 is None:
            return False
        t0 = to_epoch_ms(self.t0)
        return t0 <= ms < t0 + 20 * _MINUTE_MS

    def _statuses(self, start_ms: int, end_ms: int, inclusive_start: bool = False
                  ) -> list[SimEvent]:
        out = []
        for fid, fac in self.facilities.items():
            off = self._offset_ms(fid)
            k = (start_ms - off) // _SLOT_MS
            while True:
                ms = k * _SLOT_MS + off
                k += 1
                if ms > end_ms:
                    break
                if ms < start_ms or (ms == start_ms and not inclusive_start):
                    continue
                if not self._in_episode(fid, ms):
                    out.append(self._status(fac, ms, self._occupancy(fac, ms)))
        if self.episode_facility is not None and self.t0 is not None:
            fac = self.facilities[self.episode_facility]
            t0 = to_epoch_ms(self.t0)
            for minute, share in _EPISODE_OCCUPANCY:
                ms = t0 + minute * _MINUTE_MS
                if start_ms < ms <= end_ms:
                    out.append(self._status(fac, ms, share))
        return out

    def _occupancy(self, fac: HealthFacility, ms: int) -> float:
        low, high, _ = _KIND.get(fac.kind, _KIND["other"])
        level = low + (high - low) * _stable(self.seed, "level", fac.facility_id)
        local = from_epoch_ms(ms).astimezone(LOCAL_TZ)
        hour = local.hour + local.minute / 60
        rhythm = 0.03 * math.cos(2 * math.pi * (hour - 22) / 24)  # night high, midday low
        week = -0.03 if local.weekday() == 6 else 0.02 if local.weekday() == 0 else 0.0
        phase = _stable(self.seed, "phase", fac.facility_id) * 2 * math.pi
        noise = 0.01 * math.sin(ms / 3_600_000 * 0.7 + phase)
        noise += random.Random(f"{self.seed}|occ|{fac.facility_id}|{ms}").uniform(-0.005,
                                                                                   0.005)
        return min(0.88, max(0.2, level + rhythm + week + noise))

    def _status(self, fac: HealthFacility, ms: int, share: float) -> SimEvent:
        rng = random.Random(f"{self.seed}|status|{fac.facility_id}|{ms}")
        local_hour = from_epoch_ms(ms).astimezone(LOCAL_TZ).hour
        _, _, er_peak = _KIND.get(fac.kind, _KIND["other"])
        icu_total = fac.icu_beds or None
        icu_share = 0.6 + 0.25 * _stable(self.seed, "icu", fac.facility_id, ms // 3_600_000)
        icu_occupied = round(fac.icu_beds * icu_share) if icu_total else None
        return SimEvent(FACILITY_STATUS_TOPIC, fac.facility_id, {
            "event_id": f"sim-{self.seed}-fs-{fac.facility_id}-{ms}",
            "occurred_at": from_epoch_ms(ms),
            "source": self.source,
            "area_code": fac.area_code,
            "facility_id": fac.facility_id,
            "beds_total": fac.beds,
            "beds_occupied": round(share * fac.beds),
            "emergency_waiting": _poisson(rng, er_peak * _ER_HOURS[local_hour]),
            "icu_total": icu_total,
            "icu_occupied": icu_occupied,
        })

    def _between(self, start_ms: int, end_ms: int) -> list[SimEvent]:
        cases = [e for day in self._days(start_ms, end_ms) for e in self._day_cases(day)
                 if start_ms < to_epoch_ms(e.occurred_at) <= end_ms]
        return cases + self._statuses(start_ms, end_ms)


# -- education ----------------------------------------------------------------------------------

_LEVEL_RATE = {"preschool": 0.91, "primary": 0.975, "lower_secondary": 0.965,
               "upper_secondary": 0.955, "other": 0.94}
_SATURDAY_LEVELS = ("lower_secondary", "upper_secondary", "other")


def is_school_day(level: str, day: date) -> bool:
    wd = day.weekday()
    return wd < 5 or (wd == 5 and level in _SATURDAY_LEVELS)


class EduSimulator(_Anchored):
    def __init__(self, schools: Mapping[str, School], seed: int = 0, *,
                 source: str = "SGDDT-QNA", episode: bool = True,
                 backfill_days: int = 10) -> None:
        super().__init__()
        if not schools:
            raise ValueError("the education simulator needs at least one school")
        self.schools = dict(sorted(schools.items()))
        self.seed = seed
        self.source = source
        self.episode_enabled = episode
        self.backfill_days = backfill_days
        self.low_area: str | None = None
        self.low_day: date | None = None
        self._cache: dict[date, list[SimEvent]] = {}

    def _anchor(self, t0_ms: int) -> list[SimEvent]:
        today = _local_date(t0_ms)
        if self.episode_enabled:
            rng = random.Random(f"{self.seed}|edu-episode|{t0_ms}")
            self.low_area = rng.choice(sorted({s.area_code for s in self.schools.values()}))
            days = [today - k * _DAY for k in range(1, 10)
                    if (today - k * _DAY).weekday() < 6]
            self.low_day = days[2]
            self._cache.clear()
        first = _midnight_ms(today - self.backfill_days * _DAY)
        return [e for day in self._days(first, t0_ms) for e in self._day(day)
                if first <= to_epoch_ms(e.occurred_at) <= t0_ms]

    @staticmethod
    def _days(start_ms: int, end_ms: int) -> list[date]:
        first, last = _local_date(start_ms), _local_date(end_ms)
        return [first + k * _DAY for k in range((last - first).days + 1)]

    def _day(self, day: date) -> list[SimEvent]:
        cached = self._cache.get(day)
        if cached is None:
            if len(self._cache) > 64:
                self._cache.clear()
            cached = self._cache[day] = self._reports(day)
        return cached

    def _reports(self, day: date) -> list[SimEvent]:
        out = []
        stamp = day.strftime("%Y%m%d")
        for sid, school in self.schools.items():
            if not is_school_day(school.level, day) or school.enrolled <= 0:
                continue
            rng = random.Random(f"{self.seed}|att|{sid}|{stamp}")
            minute = 7 * 60 + 15 + int(_stable("roll-call", sid) * 80) + rng.randrange(20)
            rate = _LEVEL_RATE.get(school.level, 0.94)
            rate -= 0.01 if day.weekday() == 0 else 0.015 if day.weekday() == 5 else 0.0
            rate += random.Random(f"{self.seed}|att-area|{school.area_code}|{stamp}").gauss(
                0, 0.01)
            rate += rng.gauss(0, 0.012)
            if school.area_code == self.low_area and day == self.low_day:
                rate = rng.uniform(0.72, 0.80)
            present = round(school.enrolled * min(1.0, max(0.5, rate)))
            out.append(SimEvent(ATTENDANCE_TOPIC, school.area_code, {
                "event_id": f"sim-{self.seed}-att-{sid}-{stamp}",
                "occurred_at": from_epoch_ms(_midnight_ms(day) + minute * _MINUTE_MS),
                "source": self.source,
                "area_code": school.area_code,
                "school_id": sid,
                "level": school.level,
                "school_day": day,
                "enrolled": school.enrolled,
                "present": present,
            }))
        return out

    def _between(self, start_ms: int, end_ms: int) -> list[SimEvent]:
        return [e for day in self._days(start_ms, end_ms) for e in self._day(day)
                if start_ms < to_epoch_ms(e.occurred_at) <= end_ms]



__all__ = ["EduSimulator", "HealthSimulator", "OutbreakPlan", "SimEvent"]
