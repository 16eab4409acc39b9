"""Semantic checks of the health and education topics, beyond what the Avro types say.

:data:`CHECKS` maps each topic to its complete list of checks (the common checks of every event
included), merged by :mod:`ioc.schemas.validation`. Every check returns human-readable problems
naming the field; an empty list means acceptable.

Dates: ``school_day`` must be the Asia/Ho_Chi_Minh date of ``occurred_at`` (the daily attendance
KPI is cut at local midnight on event time, so a report stamped on another day would count for
the wrong day); a case's ``onset_date`` cannot be after its diagnosis date.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ioc.schemas.checks_security_cyber import Check, common

FACILITY_STATUS_TOPIC = "ioc.health.facility_status.v1"
DISEASE_CASE_TOPIC = "ioc.health.disease_case.v1"
ATTENDANCE_TOPIC = "ioc.edu.attendance.v1"

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def _text(r: Mapping[str, Any], name: str) -> str:
    return str(r.get(name) or "").strip()


def _int(r: Mapping[str, Any], name: str) -> int | None:
    value = r.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _local_date(r: Mapping[str, Any]) -> date | None:
    occurred = r.get("occurred_at")
    if not isinstance(occurred, datetime) or occurred.tzinfo is None:
        return None
    return occurred.astimezone(LOCAL_TZ).date()


def _not_negative(r: Mapping[str, Any], *names: str) -> list[str]:
    problems = []
    for name in names:
        value = _int(r, name)
        if value is not None and value < 0:
            problems.append(f"{name}: must be >= 0, got {value}")
    return problems


def facility_status(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "facility_id"):
        problems.append("facility_id: must not be empty (a facility id of ref_health_facilities)")
    if not _text(r, "area_code"):
        problems.append("area_code: must not be empty (where the facility is)")
    problems += _not_negative(r, "beds_total", "beds_occupied", "emergency_waiting",
                              "icu_total", "icu_occupied")
    if (r.get("icu_total") is None) != (r.get("icu_occupied") is None):
        problems.append("icu_total, icu_occupied: give both or neither")
    return problems


def disease_case(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "case_id"):
        problems.append("case_id: must not be empty (the surveillance system's case number)")
    if not _text(r, "area_code"):
        problems.append("area_code: must not be empty (where the patient lives)")
    onset, diagnosed = r.get("onset_date"), _local_date(r)
    if isinstance(onset, date) and diagnosed is not None and onset > diagnosed:
        problems.append(f"onset_date: {onset} is after the diagnosis date {diagnosed} "
                        "(local date of occurred_at)")
    return problems


def attendance(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "school_id"):
        problems.append("school_id: must not be empty (a school id of ref_schools)")
    if not _text(r, "area_code"):
        problems.append("area_code: must not be empty (where the school is)")
    enrolled, present = _int(r, "enrolled"), _int(r, "present")
    if enrolled is not None and enrolled <= 0:
        problems.append(f"enrolled: must be > 0, got {enrolled}")
    if present is not None and present < 0:
        problems.append(f"present: must be >= 0, got {present}")
    if enrolled is not None and present is not None and present > enrolled > 0:
        problems.append(f"present: {present} is more than enrolled ({enrolled})")
    day, local = r.get("school_day"), _local_date(r)
    if isinstance(day, date) and local is not None and day != local:
        problems.append(f"school_day: {day} is not the local (Asia/Ho_Chi_Minh) date of "
                        f"occurred_at ({local}); stamp the report with the roll-call time")
    return problems


CHECKS: dict[str, list[Check]] = {
    FACILITY_STATUS_TOPIC: [common, facility_status],
    DISEASE_CASE_TOPIC: [common, disease_case],
    ATTENDANCE_TOPIC: [common, attendance],
}
