"""Simulated socio-economic indicator reports (``ioc.econ.indicator_report.v1``): pure and
deterministic, like :mod:`ioc.connectors.sim_security_cyber` (no Kafka, no sleeping).

Monthly reports cannot be paced like sensor readings: a demo of half an hour would see none.
So the **first call** of ``events_at(now, interval_s)`` anchors the simulation at
``t0 = now − interval_s`` and also returns a **backfill** — every report of the plan year
submitted up to ``now`` — and later calls return the reports whose submission time falls in
``(now − interval_s, now]`` (live reports of the current reporting round, and the episodes).

The plan year and the reporting round come from ``t0`` (nothing is hard-coded):

* the **missing month** is the latest month whose report deadline (00:00 local on the 6th of
  the next month, see :func:`ioc.streams.econ.report_deadline`) is before ``t0``; the **plan
  year** is its year (on 1–5 February, when that year has just closed, the new year instead,
  without the missing-report episode);
* reports cover January up to the last complete month; each (indicator, area) with a target
  in the reference data reports every month (``YYYY-MM``), GRDP growth each complete quarter
  (``YYYY-Qn``); submission on a working day among the 1st–5th of the following month, office
  hours (Asia/Ho_Chi_Minh) — on time. The year's targets are those of the plan year, or of
  the nearest year the reference has.

Values (approximate, for the demo): flows (``sum``) = annual target × a monthly profile
(tourism peaks in summer and at Tết; exports dip in February; the behind-plan indicators —
revenue, disbursement — stay within 92–110 % of the pro-rata month) × ±5 % noise × 1.04, so
they run on plan or a little ahead; CPI around 80 % of its ceiling; GRDP growth a little under
target, rising through the year. Agencies: the catalogue's agency for province rows, the
district people's committee (``UBND <name>``, source ``UBND-<code>``) for district rows.

Episodes (seed-chosen places, never hard-coded):

* **Behind plan** (backfill): one district's public-investment disbursement (the first
  indicator with ``behind_plan``, preferring ``public_investment_disbursement``) runs at 55 %
  of normal after the first third of its reported months, so ``econ.behind_plan`` fires in
  the backfill and is firing when the demo starts. **Live, at t0 + 6 min**: a corrected report
  (revision 1) for that district's latest month brings progress to 0.8 × elapsed share + 3
  points — the alert resolves. Later months of that district are normal again.
* **Report missing**: one other district's report for the missing month (preferring
  ``budget_revenue``) is not in the backfill, so ``econ.report_missing`` fires once the worker
  has read the backfill and its timer clock (event time) has passed the deadline: at once in
  ``ioc demo``, whose other subsystems' live events carry that clock to the present; with
  ``ioc simulate econ`` alone, at the first live report (the correction, t0 + 6 min), since
  the backfill's newest report is days old. **Live, at t0 + 12 min** the report arrives late
  (revision 0) and the alert resolves.

Determinism: values and times are seeded from ``(seed, indicator, area, year)``; the episode
times are relative to the anchor. Ids: ``sim-{seed}-econ-{indicator}-{area or 'tinh'}-{period}
-r{revision}``; a re-run with the same seed and anchor yields the same events, and a replay is
deduplicated downstream.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ioc.connectors.simulator import LOCAL_TZ, SimEvent
from ioc.infra.reference import Area
from ioc.infra.reference_econ import EconReference, Indicator
from ioc.streams.econ import (
    BEHIND_FACTOR,
    REPORT_TOPIC,
    month_start,
    report_deadline,
    year_closes,
)

CORRECTION_AFTER = timedelta(minutes=6)
LATE_REPORT_AFTER = timedelta(minutes=12)
SLOW_FACTOR = 0.55
PLAN_PACE = 1.04
"""Flows run a little ahead of the pro-rata plan, as most of a province's indicators do."""

_PROFILES: dict[str, tuple[float, ...]] = {
    # share of a normal month (1.0 = target / 12), by month
    "budget_revenue": (0.92, 0.92, 0.96, 1.0, 0.96, 1.0, 0.98, 0.98, 1.0, 1.02, 1.08, 1.1),
    "public_investment_disbursement": (0.92, 0.92, 0.94, 0.96, 0.98, 1.0, 1.0, 1.02, 1.04,
                                       1.04, 1.08, 1.1),
    "export_value": (1.02, 0.72, 1.02, 0.96, 1.02, 1.02, 1.02, 1.08, 1.02, 1.02, 1.02, 1.08),
    "new_enterprises": (0.96, 0.5, 1.08, 1.08, 1.02, 1.08, 1.02, 1.02, 0.96, 1.02, 1.08, 1.2),
    "tourist_arrivals": (0.96, 1.08, 0.96, 1.02, 1.08, 1.26, 1.32, 1.26, 0.9, 0.72, 0.66, 0.78),
}
_AGENCY_CODES = {"Sở Tài chính": "STC", "Sở Kế hoạch và Đầu tư": "SKHDT",
                 "Sở Công Thương": "SCT", "Cục Thống kê tỉnh": "CTK",
                 "Sở Văn hóa, Thể thao và Du lịch": "SVHTTDL"}


@dataclass(frozen=True)
class Episodes:
    """Where and when the scripted episodes happen (for tests and the demo's narration)."""

    year: int
    last_month: int
    behind: tuple[str, str] | None          # (indicator, area)
    behind_month: int | None                # the month the correction replaces
    correction_at: datetime | None
    missing: tuple[str, str, str] | None    # (indicator, area, period)
    late_at: datetime | None


def _previous(year: int, month: int) -> tuple[int, int]:
    return (year, month - 1) if month > 1 else (year - 1, 12)


class EconSimulator:
    def __init__(self, econ: EconReference, areas: Mapping[str, Area], seed: int = 0, *,
                 episodes: bool = True) -> None:
        if not econ.targets:
            raise ValueError("the econ simulator needs targets in the reference data")
        self.econ = econ
        self.areas = areas
        self.seed = seed
        self.episodes_enabled = episodes
        self.episodes: Episodes | None = None
        self._schedule: list[SimEvent] = []
        self._anchored = False

    # -- the plan ----------------------------------------------------------------------------
    def _targets_year(self, year: int) -> int:
        years = sorted({y for _, _, y in self.econ.targets})
        return min(years, key=lambda y: (abs(y - year), -y))

    def _submission(self, rng: random.Random, year: int, month: int) -> datetime:
        """A working day among the 1st–5th of the month after ``month``, office hours."""
        start = month_start(year, month + 1).astimezone(LOCAL_TZ)
        days = [start + timedelta(days=d) for d in range(5)]
        day = rng.choice([d for d in days if d.weekday() < 5])
        minutes = rng.randrange(8 * 60, 16 * 60 + 30)
        return (day + timedelta(minutes=minutes)).astimezone(UTC)

    def _report(self, ind: Indicator, area: str, period: str, value: float, at: datetime,
                revision: int = 0) -> SimEvent:
        if area:
            name = self.areas[area].name_vi if area in self.areas else area
            agency, source = f"UBND {name}", f"UBND-{area}"
        else:
            agency = ind.agency
            source = f"{_AGENCY_CODES.get(ind.agency, 'UBND')}-QNA"
        return SimEvent(REPORT_TOPIC, ind.code, {
            "event_id": f"sim-{self.seed}-econ-{ind.code}-{area or 'tinh'}-{period}-r{revision}",
            "occurred_at": at,
            "source": source,
            "area_code": area,
            "indicator_code": ind.code,
            "period": period,
            "value": value,
            "unit": ind.unit,
            "reporting_agency": agency,
            "revision": revision,
        })

    def _value(self, rng: random.Random, ind: Indicator, target: float, month: int,
               factor: float = 1.0) -> float:
        if ind.aggregation == "sum":
            profile = _PROFILES.get(ind.code, (1.0,) * 12)
            noise = 1.0 if factor != 1.0 else rng.uniform(0.95, 1.05)
            value = target / 12 * profile[month - 1] * factor * noise * PLAN_PACE
            return float(round(value)) if ind.unit == "doanh nghiệp" else round(value, 1)
        if ind.aggregation == "average":
            return round(target * rng.uniform(0.7, 0.9), 2)
        return round(target - 0.6 + 0.15 * (month // 3) + rng.uniform(-0.2, 0.2), 1)

    def _build(self, t0: datetime) -> None:
        loc = t0.astimezone(LOCAL_TZ)
        last_y, last_m = _previous(loc.year, loc.month)          # last complete month
        miss_y, miss_m = last_y, last_m
        while report_deadline(miss_y, miss_m) > t0:
            miss_y, miss_m = _previous(miss_y, miss_m)
        year: int = miss_y
        missing_month: int | None = miss_m
        if t0 >= year_closes(year):
            year, missing_month = year + 1, None
        last = last_m if last_y == year else 12
        ty = self._targets_year(year)
        series = sorted((ind, area) for ind, area, y in self.econ.targets if y == ty)
        districts = sorted({a for _, a in series if a})
        rng = random.Random(f"{self.seed}|econ-episodes|{year}")
        behind_ind = self._pick([i for i, m in self.econ.indicators.items() if m.behind_plan],
                                "public_investment_disbursement", series)
        behind = None
        if self.episodes_enabled and behind_ind:
            places = [a for a in districts if (behind_ind, a) in series]
            behind = (behind_ind, rng.choice(places)) if places else None
        missing = None
        if self.episodes_enabled and missing_month is not None:
            req = [i for i, m in self.econ.indicators.items() if m.monthly_required]
            miss_ind = self._pick(req, "budget_revenue", series)
            places = [a for a in districts if (miss_ind, a) in series
                      and (behind is None or a != behind[1])] if miss_ind else []
            if miss_ind and places:
                missing = (miss_ind, rng.choice(places), f"{year}-{missing_month:02d}")
        events: list[SimEvent] = []
        episode_series: list[tuple[int, SimEvent]] = []
        for ind_code, area in series:
            ind = self.econ.indicators[ind_code]
            target = self.econ.targets[(ind_code, area, ty)]
            srng = random.Random(f"{self.seed}|econ|{ind_code}|{area}|{year}")
            if ind.frequency == "monthly":
                periods = [(m, f"{year}-{m:02d}") for m in range(1, last + 1)]
            elif ind.frequency == "quarterly":
                periods = [(3 * q, f"{year}-Q{q}") for q in range(1, last // 3 + 1)]
            else:
                periods = [(12, str(year))] if last == 12 else []
            for month, period in periods:
                at = self._submission(srng, year, month)
                value = self._value(srng, ind, target, month)
                ev = self._report(ind, area, period, value, at)
                if missing is not None and (ind_code, area, period) == missing:
                    continue  # withheld: arrives late, live
                if (ind_code, area) == behind:
                    episode_series.append((month, ev))
                else:
                    events.append(ev)
        correction_at = behind_month = None
        if behind is not None:
            corrected = self._slow_down(behind, episode_series, t0, year, ty)
            events.extend(ev for _, ev in episode_series)
            if corrected is not None:
                behind_month, correction = corrected
                correction_at = correction.occurred_at
                events.append(correction)
            else:
                behind = None
        late_at = None
        if missing is not None:
            ind = self.econ.indicators[missing[0]]
            srng = random.Random(f"{self.seed}|econ|late|{year}")
            target = self.econ.targets[(missing[0], missing[1], ty)]
            late_at = t0 + LATE_REPORT_AFTER
            events.append(self._report(ind, missing[1], missing[2],
                                       self._value(srng, ind, target, missing_month or 1),
                                       late_at))
        self._schedule = sorted(events, key=lambda e: (e.occurred_at, e.value["event_id"]))
        self.episodes = Episodes(year, last, behind, behind_month, correction_at, missing,
                                 late_at)

    @staticmethod
    def _pick(codes: list[str], preferred: str, series: list[tuple[str, str]]) -> str | None:
        with_districts = sorted({i for i, a in series if a and i in codes})
        if preferred in with_districts:
            return preferred
        return with_districts[0] if with_districts else None

    def _slow_down(self, key: tuple[str, str], reports: list[tuple[int, SimEvent]],
                   t0: datetime, year: int, ty: int
                   ) -> tuple[int, SimEvent] | None:
        """Turn the behind-plan series slow up to its latest backfilled month, in place, and
        return that month and its correction (or ``None`` if nothing was backfilled)."""
        ind = self.econ.indicators[key[0]]
        target = self.econ.targets[(key[0], key[1], ty)]
        backfilled = [m for m, ev in reports if ev.occurred_at <= t0]
        if not backfilled:
            return None
        latest = max(backfilled)
        first_slow = latest // 3 + 1
        rng = random.Random(f"{self.seed}|econ|slow|{year}")
        for i, (month, ev) in enumerate(reports):
            if first_slow <= month <= latest:
                value = self._value(rng, ind, target, month, SLOW_FACTOR)
                reports[i] = (month, SimEvent(ev.topic, ev.key, dict(ev.value, value=value)))
        at = t0 + CORRECTION_AFTER
        seen = {m: ev.value["value"] for m, ev in reports if ev.occurred_at <= at}
        needed = (BEHIND_FACTOR * max(seen) / 12 + 0.03) * target
        new_value = round(seen[latest] + needed - sum(seen.values()) + 0.05, 1)
        period = f"{year}-{latest:02d}"
        return latest, self._report(ind, key[1], period, new_value, at, revision=1)

    # -- serving -----------------------------------------------------------------------------
    def events_at(self, now: datetime, interval_s: float = 60.0) -> list[SimEvent]:
        """Events with ``now − interval_s < occurred_at <= now``; on the first call also the
        backfill (every scheduled report up to ``now``)."""
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        start = now - timedelta(seconds=interval_s)
        if not self._anchored:
            self._anchored = True
            self._build(start)
            return [e for e in self._schedule if e.occurred_at <= now]
        return [e for e in self._schedule if start < e.occurred_at <= now]


__all__ = ["EconSimulator", "Episodes"]
