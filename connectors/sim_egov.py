"""Simulated public-service dossiers and portal health checks: pure and deterministic.

Like the other simulators, no Kafka and no sleeping: ``events_at(now, interval_s)`` returns
the events whose event time falls in ``(now − interval_s, now]``, sorted by time, as
:class:`~ioc.connectors.simulator.SimEvent` values with the Avro schema's field names — except
the **first call**, which also returns a backfill of history (see below). The model
(approximate figures chosen for the demo, not statistics):

* **Dossiers** (``ioc.egov.dossier.v1``, keyed by ``dossier_id``): about
  ``dossiers_per_day`` (40) dossiers per working day for the whole province, received during
  office hours in Asia/Ho_Chi_Minh time (07:30–11:30 and 13:30–17:00, the morning busier;
  Mondays a little busier, Fridays a little quieter; a Saturday-morning session at 30 %; none
  on Sunday). Agencies come from ``egov_agencies.csv`` (district people's committees weigh
  twice a department: most dossiers are land and household-business ones), the procedure from
  the agency's rows of ``egov_procedures.csv``. Channel: in January 2024 a procedure offered
  fully online is filed online 45 % of the time, a partly online one 29 %; the shares grow
  linearly with the calendar (about 0.75 and 0.5 points a month: 70 % and 45 % by late 2026,
  capped at 90 %); 4 % come by post. Fees are paid online by most online applicants and few
  in-person ones. ``due_at`` adds the procedure's working days (Mon–Fri) to the reception
  time. Outcomes: 3 % rejected (early), 1 % withdrawn, 7 % sent back for a supplement
  (returned 1–6 days later, the appointment set anew), the rest resolved; 40 % get a
  ``processing`` step a few hours after reception. Decisions come on a working day before the
  appointment, earlier rather than later; a small agency-specific share (0.1–0.4 %) comes 1–4
  working days late.
* **Portal checks** (``ioc.egov.portal_check.v1``, keyed by ``system_id``): every
  ``check_every_s`` (60) per system of ``egov_systems.csv`` from the provincial data centre's
  probe (``TTDL-QNA``), at a fixed second of the minute per system. Response times are
  log-normal around a per-system median (250–700 ms), slower in office hours; one check in a
  thousand fails on its own (never three in a row by chance).

**Scripted episodes**, anchored at the first call (``anchor``):

* *On-time rate below 95 %* — one seed-chosen district people's committee (any agency if the
  reference has none) clears a backlog of 12 old dossiers, long past their appointments, on the
  days 35 and 34 before the anchor. The backfill lets the stream rule see 30 days before its
  first published window, so its first windows (ending 8–10 days before the anchor) hold the
  backlog: ``egov.on_time_rate_low`` fires at the end of that first day; the window ending with
  the 4th day before the anchor no longer holds it and the alert resolves then. The same agency
  still has 3 dossiers open past their appointments at the anchor (``egov.overdue_open``),
  decided late 2–4 working days later.
* *Portal outage* — one seed-chosen system fails every check from 1.5–4 minutes after the anchor
  for 5–8 minutes (HTTP 503 or no answer), then answers again: ``egov.portal_down`` fires at the
  third failed check and resolves at the first good one, within the first ~12 simulated
  minutes.

**Backfill**: the first call also returns every dossier event of the :data:`BACKFILL_DAYS` (40)
local days before the anchor and the portal checks of the last :data:`BACKFILL_CHECK_HOURS`
(2) hours — about 3,000 + 700 events, in time order. ``backfill=False`` turns it off.

Determinism: dossiers of a reception day are drawn from ``(seed, day)``, checks from
``(seed, system, minute)``, the episodes from ``(seed, anchor)``; ids are
``sim-{seed}-dos-{yyyymmdd}-{n}-{status}``, ``sim-{seed}-backlog-{n}-{status}`` and
``sim-{seed}-chk-{system}-{epoch minute}``, so a replay is deduplicated downstream.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ioc.connectors.simulator import LOCAL_TZ, SimEvent, _poisson, from_epoch_ms, to_epoch_ms
from ioc.infra.reference_egov import Agency, PortalSystem, Procedure, procedures_of

DOSSIER_TOPIC = "ioc.egov.dossier.v1"
PORTAL_CHECK_TOPIC = "ioc.egov.portal_check.v1"

BACKFILL_DAYS = 40
BACKFILL_CHECK_HOURS = 2
MAX_SPAN_DAYS = 110
"""Longest time between a dossier's reception and its last event (30 working days, a
supplement and 30 working days again, a late decision)."""
BACKLOG_SIZE = 12
BACKLOG_OPEN = 3
BACKLOG_DAYS = (35, 34)

_MORNING = (time(7, 30), time(11, 30))
_AFTERNOON = (time(13, 30), time(17, 0))
_MORNING_S = (_MORNING[0], 4 * 3600)
_AFTERNOON_S = (_AFTERNOON[0], 3 * 3600 + 1800)
_WEEKDAY_FACTOR = (1.15, 1.0, 1.0, 1.0, 0.95, 0.3, 0.0)
_TREND_EPOCH = date(2024, 1, 1)


def _local(d: date, t: time) -> datetime:
    return datetime.combine(d, t, tzinfo=LOCAL_TZ)


def add_working_days(d: date, n: int) -> date:
    """``n`` working days (Mon–Fri) after ``d``; public holidays are not modelled."""
    if n <= 0:
        return d
    wd = d.weekday()
    if wd >= 5:  # from a weekend day the first working day is the Monday
        d += timedelta(days=7 - wd)
        n, wd = n - 1, 0
    weeks, rem = divmod(n, 5)
    if wd + rem >= 5:
        rem += 2
    return d + timedelta(days=7 * weeks + rem)


def _next_working_day(d: date) -> date:
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def _office_time(rng: random.Random, d: date, *, morning_only: bool = False) -> datetime:
    """A moment in the office hours of ``d`` (local), the morning more likely."""
    start, span = _MORNING_S if morning_only or rng.random() < 0.6 else _AFTERNOON_S
    return _local(d, start) + timedelta(seconds=rng.randrange(span))


def online_trend(d: date) -> float:
    """Multiplier of the online shares: 0.9 in January 2024, +0.015 a month, at most 1.6."""
    months = (d.year - _TREND_EPOCH.year) * 12 + d.month - _TREND_EPOCH.month
    return min(1.6, 0.9 + 0.015 * months)


@dataclass(frozen=True)
class Outage:
    """``system_id`` fails every check in ``[start, end)``."""

    system_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Backlog:
    """``agency`` decides ``size`` overdue dossiers on the given local days."""

    agency: str
    days: tuple[date, ...]


class EgovSimulator:
    def __init__(self, agencies: Mapping[str, Agency], systems: Mapping[str, PortalSystem],
                 procedures: Mapping[str, Procedure], seed: int = 0, *,
                 source: str = "VP-UBND", probe_source: str = "STTTT",
                 probe_location: str = "TTDL-QNA", dossiers_per_day: float = 40.0,
                 check_every_s: int = 60, backfill: bool = True, episodes: bool = True
                 ) -> None:
        self.procedures = {code: procedures_of(a, dict(procedures))
                           for code, a in sorted(agencies.items())}
        self.procedures = {c: p for c, p in self.procedures.items() if p}
        if not self.procedures or not systems:
            raise ValueError("the egov simulator needs agencies with procedures and systems")
        if check_every_s <= 0 or (60 % check_every_s and check_every_s % 60):
            raise ValueError("check_every_s must divide a minute or be whole minutes")
        self.agencies = dict(agencies)
        self.systems = dict(sorted(systems.items()))
        self.seed = seed
        self.source = source
        self.probe_source = probe_source
        self.probe_location = probe_location
        self.rate = dossiers_per_day
        self.check_every_ms = check_every_s * 1000
        self.backfill = backfill
        self.episodes = episodes
        self._weights = {c: 2.0 if self.agencies[c].level == "district" else 1.0
                         for c in self.procedures}
        self._late = {c: 0.001 + 0.003 * random.Random(f"late|{c}").random()
                      for c in self.procedures}
        self._median_ms = {s: random.Random(f"median|{s}").uniform(250, 700)
                           for s in self.systems}
        self._offset_ms = {s: zlib.crc32(s.encode()) % self.check_every_ms
                           for s in self.systems}
        self.anchor: datetime | None = None
        self.outage: Outage | None = None
        self.backlog: Backlog | None = None
        self._backlog_events: list[SimEvent] = []
        self._days: dict[date, dict[date, list[SimEvent]]] = {}
        self._on_date: dict[date, list[SimEvent]] = {}

    # -- the episodes --------------------------------------------------------------------------
    def _anchor(self, now: datetime) -> None:
        self.anchor = now
        if not self.episodes:
            return
        rng = random.Random(f"{self.seed}|egov-episodes|{to_epoch_ms(now)}")
        start = now + timedelta(seconds=rng.randrange(90, 240))
        self.outage = Outage(rng.choice(sorted(self.systems)), start,
                             start + timedelta(minutes=rng.randrange(5, 9)))
        districts = sorted(c for c in self.procedures if self.agencies[c].level == "district")
        agency = rng.choice(districts or sorted(self.procedures))
        today = now.astimezone(LOCAL_TZ).date()
        self.backlog = Backlog(agency, tuple(today - timedelta(days=n) for n in BACKLOG_DAYS))
        self._backlog_events = self._backlog_dossiers(rng, self.backlog)
        self._on_date.clear()

    def _backlog_dossiers(self, rng: random.Random, backlog: Backlog) -> list[SimEvent]:
        agency = self.agencies[backlog.agency]
        procs = self.procedures[backlog.agency]
        out = []
        for n in range(BACKLOG_SIZE):
            proc = rng.choice(procs)
            decided_day = backlog.days[n * len(backlog.days) // BACKLOG_SIZE]
            decided = _office_time(rng, decided_day, morning_only=decided_day.weekday() == 5)
            # received long enough before that the appointment passed 8–15 days earlier
            due_day = decided_day - timedelta(days=rng.randrange(8, 16))
            received_day = due_day
            for _ in range(proc.due_days):
                received_day -= timedelta(days=1)
                while received_day.weekday() >= 5:
                    received_day -= timedelta(days=1)
            received = _office_time(rng, received_day)
            due = _local(add_working_days(received_day, proc.due_days), received.timetz())
            did = f"H49.{agency.code}-{received_day:%y%m%d}-B{n:02d}"
            base = self._fields(did, agency, proc, "in_person", received, due,
                                fee_paid_online=False)
            for status, at in (("received", received), ("resolved", decided)):
                out.append(self._event(f"sim-{self.seed}-backlog-{n}-{status}", base, status,
                                       at, resolved=at if status == "resolved" else None))
        # ... and a few it has not cleared yet: open past their appointment at the anchor,
        # decided late a few working days after it.
        today = backlog.days[0] + timedelta(days=BACKLOG_DAYS[0])
        for n in range(BACKLOG_SIZE, BACKLOG_SIZE + BACKLOG_OPEN):
            proc = min(procs, key=lambda p: p.due_days)
            received_day = today - timedelta(days=rng.randrange(10, 20))
            while received_day.weekday() >= 5:
                received_day -= timedelta(days=1)
            received = _office_time(rng, received_day)
            due = _local(add_working_days(received_day, proc.due_days), received.timetz())
            decided = _office_time(rng, add_working_days(today, rng.randint(2, 4)))
            did = f"H49.{agency.code}-{received_day:%y%m%d}-B{n:02d}"
            base = self._fields(did, agency, proc, "in_person", received, due,
                                fee_paid_online=False)
            for status, at in (("received", received), ("resolved", decided)):
                out.append(self._event(f"sim-{self.seed}-backlog-{n}-{status}", base, status,
                                       at, resolved=at if status == "resolved" else None))
        return out

    # -- dossiers ----------------------------------------------------------------------------
    def _fields(self, did: str, agency: Agency, proc: Procedure, channel: str,
                received: datetime, due: datetime, *, fee_paid_online: bool
                ) -> dict[str, Any]:
        return {"source": self.source, "area_code": agency.area_code, "dossier_id": did,
                "channel": channel, "procedure_code": proc.procedure_code,
                "agency": agency.code, "received_at": received, "due_at": due,
                "fee_required": proc.fee_required,
                "paid_online": proc.fee_required and fee_paid_online,
                "online_level": proc.online_level}

    @staticmethod
    def _event(event_id: str, base: Mapping[str, Any], status: str, at: datetime, *,
               resolved: datetime | None = None, due: datetime | None = None) -> SimEvent:
        value: dict[str, Any] = {"event_id": event_id, "occurred_at": at.astimezone(LOCAL_TZ)}
        value.update(source=base["source"], area_code=base["area_code"],
                     dossier_id=base["dossier_id"], status=status, channel=base["channel"],
                     procedure_code=base["procedure_code"], agency=base["agency"],
                     received_at=base["received_at"], due_at=due or base["due_at"],
                     resolved_at=resolved, fee_required=base["fee_required"],
                     paid_online=base["paid_online"], online_level=base["online_level"])
        for key in ("occurred_at", "received_at", "due_at", "resolved_at"):
            if value[key] is not None:
                value[key] = value[key].astimezone(UTC)  # whole seconds already
        return SimEvent(DOSSIER_TOPIC, base["dossier_id"], value)

    def _day(self, d: date) -> dict[date, list[SimEvent]]:
        """Every event of the dossiers received on local day ``d``, whenever they happen, by
        the local date they happen on."""
        cached = self._days.get(d)
        if cached is not None:
            return cached
        if len(self._days) > 4 * MAX_SPAN_DAYS:
            self._days.clear()
        rng = random.Random(f"{self.seed}|egov|{d.isoformat()}")
        factor = _WEEKDAY_FACTOR[d.weekday()]
        out: dict[date, list[SimEvent]] = {}
        for n in range(_poisson(rng, self.rate * factor) if factor else 0):
            for e in self._dossier(rng, d, n):
                out.setdefault(e.occurred_at.astimezone(LOCAL_TZ).date(), []).append(e)
        self._days[d] = out
        return out

    def _dossier(self, rng: random.Random, d: date, n: int) -> list[SimEvent]:
        code = rng.choices(list(self._weights), weights=list(self._weights.values()))[0]
        agency = self.agencies[code]
        proc = rng.choice(self.procedures[code])
        trend = online_trend(d)
        p_online = {"full": 0.5, "partial": 0.32, "none": 0.0}[proc.online_level] * trend
        roll = rng.random()
        channel = ("online" if roll < min(p_online, 0.9)
                   else "post" if roll < min(p_online, 0.9) + 0.04 else "in_person")
        paid = rng.random() < {"online": min(0.95, 0.75 * trend), "post": 0.3,
                               "in_person": 0.12 * trend}[channel]
        received = _office_time(rng, d, morning_only=d.weekday() == 5)
        due = _local(add_working_days(d, proc.due_days), received.timetz())
        did = f"H49.{code}-{d:%y%m%d}-{n:04d}"
        base = self._fields(did, agency, proc, channel, received, due, fee_paid_online=paid)
        prefix = f"sim-{self.seed}-dos-{d:%Y%m%d}-{n}"
        events = [self._event(f"{prefix}-received", base, "received", received)]
        outcome = rng.random()
        if outcome < 0.01:  # withdrawn by the applicant
            day = add_working_days(d, rng.randint(1, 3))
            events.append(self._event(f"{prefix}-withdrawn", base, "withdrawn",
                                      _office_time(rng, day)))
            return events
        if outcome < 0.04:  # refused early, in writing
            day = add_working_days(d, rng.randint(1, min(proc.due_days, 5)))
            at = min(_office_time(rng, day), due - timedelta(minutes=1))
            events.append(self._event(f"{prefix}-rejected", base, "rejected", at, resolved=at))
            return events
        start_day, start = d, received
        if outcome < 0.11:  # sent back for a supplement, then resubmitted
            asked = _office_time(rng, add_working_days(d, rng.randint(1, min(3, proc.due_days))))
            back_day = _next_working_day(asked.date() + timedelta(days=rng.randint(1, 6)))
            back = _office_time(rng, back_day)
            due = _local(add_working_days(back_day, proc.due_days), back.timetz())
            events.append(self._event(f"{prefix}-supplement_requested", base,
                                      "supplement_requested", asked))
            events.append(self._event(f"{prefix}-supplement_returned", base,
                                      "supplement_returned", back, due=due))
            start_day, start = back_day, back
        if rng.random() < self._late[code]:
            day = add_working_days(due.date(), rng.randint(1, 4))
            decided = _office_time(rng, day)
        else:
            k = max(1, round(rng.triangular(1, proc.due_days, 1 + 0.4 * (proc.due_days - 1))))
            decided = min(_office_time(rng, add_working_days(start_day, k)),
                          due - timedelta(minutes=1))
        if rng.random() < 0.4:
            step = start + timedelta(minutes=rng.randrange(60, 180))
            if step.time() > _AFTERNOON[1]:
                step = _local(add_working_days(step.date(), 1), time(8, rng.randrange(60)))
            if step < decided:
                events.append(self._event(f"{prefix}-processing", base, "processing", step,
                                          due=due))
        events.append(self._event(f"{prefix}-resolved", base, "resolved", decided,
                                  resolved=decided, due=due))
        return events

    def _occurring_on(self, d: date) -> list[SimEvent]:
        """Dossier events whose local date is ``d``, sorted."""
        cached = self._on_date.get(d)
        if cached is None:
            if len(self._on_date) > 64:
                self._on_date.clear()
            out = [e for day in range(MAX_SPAN_DAYS, -1, -1)
                   for e in self._day(d - timedelta(days=day)).get(d, ())]
            out += [e for e in self._backlog_events
                    if e.occurred_at.astimezone(LOCAL_TZ).date() == d]
            cached = sorted(out, key=lambda e: (e.occurred_at, e.value["event_id"]))
            self._on_date[d] = cached
        return cached

    def dossier_events(self, start: datetime, end: datetime) -> list[SimEvent]:
        """Dossier events with ``start < occurred_at <= end``."""
        out: list[SimEvent] = []
        d = start.astimezone(LOCAL_TZ).date()
        while d <= end.astimezone(LOCAL_TZ).date():
            out.extend(e for e in self._occurring_on(d) if start < e.occurred_at <= end)
            d += timedelta(days=1)
        return out

    # -- portal checks -------------------------------------------------------------------------
    def check_events(self, start: datetime, end: datetime) -> list[SimEvent]:
        """Portal checks with ``start < occurred_at <= end``."""
        lo, hi = to_epoch_ms(start), to_epoch_ms(end)
        out = []
        for sid, offset in self._offset_ms.items():
            k = math.floor((lo - offset) / self.check_every_ms) + 1
            while (ms := k * self.check_every_ms + offset) <= hi:
                out.append(self._check(sid, ms))
                k += 1
        return out

    def _check(self, sid: str, ms: int) -> SimEvent:
        rng = random.Random(f"{self.seed}|chk|{sid}|{ms // self.check_every_ms}")
        at = from_epoch_ms(ms)
        o = self.outage
        if o is not None and o.system_id == sid and o.start <= at < o.end:
            up, status = False, rng.choice((503, None))
        elif rng.random() < 0.001:
            up, status = False, rng.choice((502, 504, None))
        else:
            up, status = True, 200
        local_hour = at.astimezone(LOCAL_TZ).hour
        busy = 1.4 if 8 <= local_hour < 17 and at.astimezone(LOCAL_TZ).weekday() < 5 else 1.0
        response = (round(rng.lognormvariate(math.log(self._median_ms[sid] * busy), 0.35))
                    if up else None)
        if status == 502 or status == 503:
            response = round(rng.uniform(5, 60))
        return SimEvent(PORTAL_CHECK_TOPIC, sid, {
            "event_id": f"sim-{self.seed}-chk-{sid}-{ms // 60_000}"
                        + (f"-{ms % 60_000 // self.check_every_ms}"
                           if self.check_every_ms < 60_000 else ""),
            "occurred_at": at,
            "source": self.probe_source,
            "area_code": "",
            "system_id": sid,
            "up": up,
            "response_ms": response,
            "http_status": status,
            "check_location": self.probe_location,
        })

    # -- the interval interface ------------------------------------------------------------------
    def events_at(self, now: datetime, interval_s: float = 60.0) -> list[SimEvent]:
        """Events with ``now − interval_s < occurred_at <= now``; the first call adds the
        backfill."""
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        start = now - timedelta(seconds=interval_s)
        dossier_from, check_from = start, start
        if self.anchor is None:
            self._anchor(now)
            if self.backfill:
                first_day = now.astimezone(LOCAL_TZ).date() - timedelta(days=BACKFILL_DAYS)
                dossier_from = min(start, _local(first_day, time(0)) - timedelta(milliseconds=1))
                check_from = min(start, now - timedelta(hours=BACKFILL_CHECK_HOURS))
        events = self.dossier_events(dossier_from, now) + self.check_events(check_from, now)
        return sorted(events, key=lambda e: (e.occurred_at, e.value["event_id"]))


__all__ = ["Backlog", "EgovSimulator", "Outage", "SimEvent", "add_working_days"]
