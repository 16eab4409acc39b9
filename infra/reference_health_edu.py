"""Reference data of the health and education subsystems: health facilities and schools.

Two versioned CSV files, read by the stream processor and the simulator at start and loaded by
``ioc setup`` into ClickHouse for dashboards and analysts:

- ``health_facilities.csv`` (``facility_id``, ``name_vi``, ``area_code``, ``kind``, ``beds``,
  ``icu_beds``) → ``ref_health_facilities``: hospitals and district health centres whose
  status reports (``ioc.health.facility_status.v1`` field ``facility_id``) the IOC receives.
  ``kind`` is one of :data:`FACILITY_KINDS`; ``beds`` and ``icu_beds`` are the planned beds
  (the status reports carry the beds actually in service).
- ``schools.csv`` (``school_id``, ``name_vi``, ``area_code``, ``level``, ``enrolled``) →
  ``ref_schools``: the schools that report attendance (``ioc.edu.attendance.v1``); ``level``
  is one of :data:`SCHOOL_LEVELS`; ``enrolled`` is the pupils enrolled this school year. The
  wall screen compares the schools that reported with this list.

Area populations (for incidence per 100,000) come from ``areas.csv`` (:mod:`ioc.infra.reference`),
never from these files.

A deployment's own reference folder (``IOC_REFERENCE_DIR``) may carry its own copies; when it
lacks one (a folder prepared before this subsystem existed), the shipped default is used, so
adding the subsystem never breaks a deployment. A deployment's own file must refer to area codes
of its own ``areas.csv`` (checked by :func:`load_into_clickhouse`); the shipped defaults are not
checked against a deployment's areas, since they describe Quảng Nam's 2020 units. **The shipped
lists are illustrative** (real kinds of institutions on the 2020 units, approximate bed and
pupil numbers): the Departments of Health and of Education replace them with their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.infra.reference import DEFAULT_DIR, ReferenceDataError, load_areas, read_rows
from ioc.infra.reference_cyber import reference_file

FACILITIES_FILE = "health_facilities.csv"
SCHOOLS_FILE = "schools.csv"

FACILITY_KINDS = ("general_hospital", "specialty_hospital", "health_centre",
                  "private_hospital", "other")
SCHOOL_LEVELS = ("preschool", "primary", "lower_secondary", "upper_secondary", "other")


@dataclass(frozen=True)
class HealthFacility:
    facility_id: str
    name_vi: str
    area_code: str
    kind: str
    beds: int
    icu_beds: int


@dataclass(frozen=True)
class School:
    school_id: str
    name_vi: str
    area_code: str
    level: str
    enrolled: int


def _count(path: Path, line: int, name: str, text: str) -> int:
    try:
        value = int(text or 0)
    except ValueError:
        raise ReferenceDataError(f"{path}:{line}: {name} must be a whole number, got {text!r}"
                                 ) from None
    if value < 0:
        raise ReferenceDataError(f"{path}:{line}: {name} must be >= 0, got {value}")
    return value


def load_facilities(directory: Path | None = None) -> dict[str, HealthFacility]:
    path = reference_file(directory, FACILITIES_FILE)
    out: dict[str, HealthFacility] = {}
    cols = ["facility_id", "name_vi", "area_code", "kind", "beds", "icu_beds"]
    for line, r in read_rows(path, cols):
        fac = HealthFacility(r["facility_id"], r["name_vi"], r["area_code"], r["kind"],
                             _count(path, line, "beds", r["beds"]),
                             _count(path, line, "icu_beds", r["icu_beds"]))
        if not fac.facility_id or fac.facility_id in out:
            raise ReferenceDataError(
                f"{path}:{line}: empty or duplicate facility_id {fac.facility_id!r}")
        if not fac.name_vi or not fac.area_code:
            raise ReferenceDataError(f"{path}:{line}: empty name_vi or area_code")
        if fac.kind not in FACILITY_KINDS:
            raise ReferenceDataError(f"{path}:{line}: kind must be one of {FACILITY_KINDS}, "
                                     f"got {fac.kind!r}")
        out[fac.facility_id] = fac
    return out


def load_schools(directory: Path | None = None) -> dict[str, School]:
    path = reference_file(directory, SCHOOLS_FILE)
    out: dict[str, School] = {}
    for line, r in read_rows(path, ["school_id", "name_vi", "area_code", "level", "enrolled"]):
        school = School(r["school_id"], r["name_vi"], r["area_code"], r["level"],
                        _count(path, line, "enrolled", r["enrolled"]))
        if not school.school_id or school.school_id in out:
            raise ReferenceDataError(
                f"{path}:{line}: empty or duplicate school_id {school.school_id!r}")
        if not school.name_vi or not school.area_code:
            raise ReferenceDataError(f"{path}:{line}: empty name_vi or area_code")
        if school.level not in SCHOOL_LEVELS:
            raise ReferenceDataError(f"{path}:{line}: level must be one of {SCHOOL_LEVELS}, "
                                     f"got {school.level!r}")
        out[school.school_id] = school
    return out


def _check_areas(directory: Path | None, name: str, used: set[str]) -> None:
    """A deployment's own file must use its own area codes (shipped defaults are exempt)."""
    if directory is None or not (directory / name).is_file() or directory == DEFAULT_DIR:
        return
    unknown = sorted(used - set(load_areas(directory)))
    if unknown:
        raise ReferenceDataError(f"{directory / name}: unknown area codes {unknown}")


def load_into_clickhouse(client: Any, db: str, directory: Path | None = None) -> dict[str, int]:
    """Replace ``ref_health_facilities`` and ``ref_schools`` with the files' content; return row
    counts. Both files are read and checked before anything is written, so a bad file changes
    nothing."""
    facilities = load_facilities(directory)
    schools = load_schools(directory)
    _check_areas(directory, FACILITIES_FILE, {f.area_code for f in facilities.values()})
    _check_areas(directory, SCHOOLS_FILE, {s.area_code for s in schools.values()})
    now = datetime.now(UTC)
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_health_facilities")
    client.insert(f"{db}.ref_health_facilities",
                  [[f.facility_id, f.name_vi, f.area_code, f.kind, f.beds, f.icu_beds, now]
                   for f in facilities.values()],
                  column_names=["facility_id", "name_vi", "area_code", "kind", "beds",
                                "icu_beds", "loaded_at"])
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_schools")
    client.insert(f"{db}.ref_schools",
                  [[s.school_id, s.name_vi, s.area_code, s.level, s.enrolled, now]
                   for s in schools.values()],
                  column_names=["school_id", "name_vi", "area_code", "level", "enrolled",
                                "loaded_at"])
    return {"ref_health_facilities": len(facilities), "ref_schools": len(schools)}
