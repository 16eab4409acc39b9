"""Education (``edu``): daily school attendance and the low-attendance alert.

Topic ``ioc.edu.attendance.v1``: one report per school and school day from the morning roll
call (Kafka key ``area_code``: an area's whole day — its schools' reports, their corrections —
and the alert's state live on one partition, and the area's daily window closes on that
partition's own watermark). Within a day the latest report of each school counts (a correction
replaces the earlier figures; a re-sent report is not counted twice).

KPIs, all 1d windows cut at Asia/Ho_Chi_Minh midnight (the report's ``occurred_at``, whose
local date is its ``school_day``):

- ``edu.attendance_rate`` (per area, entity ""): Σ present / Σ enrolled over the schools that
  reported that day. ``sample_count`` is Σ enrolled (pupils, not reports), so the rate of
  several areas combines exactly as Σ value·sample_count / Σ sample_count.
- ``edu.attendance_rate`` (per area, entity = school level: ``preschool``, ``primary``,
  ``lower_secondary``, ``upper_secondary``, ``other``): the same for that level's schools.
- ``edu.schools_reported`` (per area, entity ""): schools that reported that day.
- ``edu.pupils_absent`` (per area, entity ""): Σ (enrolled − present); ``sample_count`` = the
  schools.

Alert ``edu.attendance_low`` (labels: area_code) — evaluated when an area's daily window closes
(the partition has a report stamped after the next local midnight plus the allowed lateness,
normally the next school morning): attendance rate < 0.85 → warning, ``starts_at`` = the end
of that school day (local midnight). A further low day updates the episode; it resolves at
the close of the next school day with a rate ≥ 0.85 (``ends_at`` = the end of that day).
Days without reports (Sundays, holidays) have no window and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.infra.reference import Area, ReferenceData
from ioc.streams.domain import BaseRule, Domain, Record
from ioc.streams.engine import KpiFamily, Window
from ioc.streams.rules import alert_record
from ioc.streams.vi import date_vi, number_vi, percent_vi
from ioc.streams.windows import LOCAL_TZ, WINDOWS

ATTENDANCE_TOPIC = "ioc.edu.attendance.v1"

ATTENDANCE_RATE_KPI = "edu.attendance_rate"
SCHOOLS_REPORTED_KPI = "edu.schools_reported"
PUPILS_ABSENT_KPI = "edu.pupils_absent"

AREA_FAMILY = "edu.attendance.1d"
LEVEL_FAMILY = "edu.attendance_level.1d"

LEVEL_VI = {
    "preschool": "Mầm non",
    "primary": "Tiểu học",
    "lower_secondary": "Trung học cơ sở",
    "upper_secondary": "Trung học phổ thông",
    "other": "Khác",
}


class SchoolDayAttendance:
    """The latest report of each school in the window (by ``occurred_at``; a later report with
    the same time wins), summed."""

    def __init__(self, rate_only: bool = False) -> None:
        self.rate_only = rate_only
        self.latest: dict[str, tuple[datetime, int, int]] = {}

    def add(self, event: Mapping[str, Any]) -> None:
        school = str(event["school_id"])
        ts: datetime = event["occurred_at"]
        prev = self.latest.get(school)
        if prev is None or ts >= prev[0]:
            self.latest[school] = (ts, int(event["enrolled"]), int(event["present"]))

    def results(self) -> list[tuple[str, float, int]]:
        enrolled = sum(e for _, e, _ in self.latest.values())
        present = sum(p for _, _, p in self.latest.values())
        if enrolled <= 0:
            return []
        out = [(ATTENDANCE_RATE_KPI, present / enrolled, enrolled)]
        if not self.rate_only:
            schools = len(self.latest)
            out += [(SCHOOLS_REPORTED_KPI, float(schools), schools),
                    (PUPILS_ABSENT_KPI, float(enrolled - present), schools)]
        return out


def edu_families() -> list[KpiFamily]:
    return [
        KpiFamily(AREA_FAMILY, ATTENDANCE_TOPIC, WINDOWS["1d"],
                  lambda ev: (str(ev["area_code"]), ""), lambda a, e: SchoolDayAttendance()),
        KpiFamily(LEVEL_FAMILY, ATTENDANCE_TOPIC, WINDOWS["1d"],
                  lambda ev: (str(ev["area_code"]), str(ev["level"])),
                  lambda a, e: SchoolDayAttendance(rate_only=True)),
    ]


@dataclass
class _AreaState:
    last_end: datetime
    firing: dict[str, Any] | None = None


class AttendanceLowRule(BaseRule):
    """Daily attendance rate of an area < ``threshold`` → warning; see the module docstring."""

    rule = name = "edu.attendance_low"
    family = AREA_FAMILY

    def __init__(self, areas: Mapping[str, Area], threshold: float = 0.85) -> None:
        self.areas = areas
        self.threshold = threshold
        self.state: dict[str, _AreaState] = {}

    def restore(self, alerts: Iterable[Mapping[str, Any]]) -> None:
        """The latest record per area tells the last day judged and whether it is firing."""
        for a in alerts:
            if a["rule"] != self.rule:
                continue
            st = self.state.get(a["area_code"])
            if st is not None and a["updated_at"] < st.last_end:
                continue
            firing = dict(a) if a["status"] == "firing" else None
            self.state[a["area_code"]] = _AreaState(a["updated_at"], firing)

    def on_window_closed(self, window: Window) -> list[Record]:
        if window.family.name != self.family:
            return []
        acc = window.acc
        assert isinstance(acc, SchoolDayAttendance)
        enrolled = sum(e for _, e, _ in acc.latest.values())
        present = sum(p for _, _, p in acc.latest.values())
        if enrolled <= 0:
            return []
        return self.on_day(window.area_code, window.start, window.end, present, enrolled)

    def on_day(self, area_code: str, start: datetime, end: datetime, present: int,
               enrolled: int) -> list[Record]:
        st = self.state.get(area_code)
        if st is not None and end <= st.last_end:
            return []  # judged already (replay after a restart)
        rate = present / enrolled
        area = self.areas.get(area_code)
        place = area.name_vi if area else area_code
        day = date_vi(start.astimezone(LOCAL_TZ).date())
        firing = st.firing if st is not None else None
        figures = (f"{percent_vi(rate, 1)} ngày {day} ({number_vi(present)}/"
                   f"{number_vi(enrolled)} học sinh có mặt)")
        out: list[Record] = []
        if rate >= self.threshold:
            if firing is not None:
                out.append(dict(firing, status="resolved", ends_at=end, updated_at=end,
                                value=rate,
                                summary=f"Tỷ lệ học sinh đi học tại {place} đã trở lại bình "
                                        f"thường: {figures}, đạt ngưỡng "
                                        f"{percent_vi(self.threshold)}."))
                firing = None
        else:
            firing = alert_record(
                rule=self.rule, labels={"area_code": area_code}, severity="warning",
                status="firing", domain="edu", area_code=area_code, entity="", value=rate,
                threshold=self.threshold,
                summary=f"Tỷ lệ học sinh đi học tại {place} thấp: {figures}, dưới ngưỡng "
                        f"{percent_vi(self.threshold)}.",
                starts_at=firing["starts_at"] if firing is not None else end, ends_at=None,
                updated_at=end)
            out.append(firing)
        self.state[area_code] = _AreaState(end, firing)
        return out


def edu_domain(ref: ReferenceData) -> Domain:
    return Domain(
        name="edu",
        topics=(ATTENDANCE_TOPIC,),
        families=tuple(edu_families()),
        rules=(AttendanceLowRule(ref.areas),),
    )
