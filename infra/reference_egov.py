"""Reference data of the e-government subsystem: agencies, portal systems, procedures.

Three versioned CSV files, read by the stream processor and the simulator at start and loaded
by ``ioc setup`` into ClickHouse for dashboards and analysts:

- ``egov_agencies.csv`` (``code``, ``name_vi``, ``level`` — province, district or commune —,
  ``area_code``) → ``ref_egov_agencies``: the agencies that resolve dossiers (field ``agency``
  of ``ioc.egov.dossier.v1``) and own portal systems. ``area_code`` is the administrative unit
  the agency serves; it places the agency's 30-day KPIs and alerts.
- ``egov_systems.csv`` (``system_id``, ``name_vi``, ``url``, ``owner_agency`` — an agency
  code —) → ``ref_egov_systems``: the portals and systems that health checks
  (``ioc.egov.portal_check.v1`` field ``system_id``) refer to. Ids shared with the cyber
  subsystem's ``gov_systems.csv`` name the same system there (that file keeps owner *names*
  and no URL, hence a file of its own).
- ``egov_procedures.csv`` (``procedure_code``, ``name_vi``, ``level``, ``agency``,
  ``due_days`` — working days —, ``online_level`` — none, partial or full —,
  ``fee_required`` — 0/1 —) → ``ref_egov_procedures``: the procedure catalogue. A row with an
  empty ``agency`` applies to every agency of its ``level`` (every district people's committee
  handles the same district procedures).

A deployment's own reference folder (``IOC_REFERENCE_DIR``) may carry its own copies; when it
lacks one, the shipped default in ``infra/reference`` is used. The shipped lists are
**illustrative** (a subset of Quảng Nam's agencies; procedure codes and processing times in the
national catalogue's style but not copied from it; URLs as the province's domains would
read): the province's office replaces them with its own catalogue. A deployment that loads its
own areas (communes after the 2025 reform) replaces ``egov_agencies.csv`` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.infra.reference import ReferenceDataError, read_rows
from ioc.infra.reference_cyber import reference_file

AGENCIES_FILE = "egov_agencies.csv"
SYSTEMS_FILE = "egov_systems.csv"
PROCEDURES_FILE = "egov_procedures.csv"
LEVELS = ("province", "district", "commune")
ONLINE_LEVELS = ("none", "partial", "full")


@dataclass(frozen=True)
class Agency:
    code: str
    name_vi: str
    level: str
    area_code: str


@dataclass(frozen=True)
class PortalSystem:
    system_id: str
    name_vi: str
    url: str
    owner_agency: str


@dataclass(frozen=True)
class Procedure:
    procedure_code: str
    name_vi: str
    level: str
    agency: str  # empty: every agency of ``level``
    due_days: int
    online_level: str
    fee_required: bool


def load_agencies(directory: Path | None = None) -> dict[str, Agency]:
    path = reference_file(directory, AGENCIES_FILE)
    out: dict[str, Agency] = {}
    for line, r in read_rows(path, ["code", "name_vi", "level", "area_code"]):
        agency = Agency(r["code"], r["name_vi"], r["level"], r["area_code"])
        if not agency.code or agency.code in out:
            raise ReferenceDataError(f"{path}:{line}: empty or duplicate code {agency.code!r}")
        if not agency.name_vi:
            raise ReferenceDataError(f"{path}:{line}: empty name_vi")
        if agency.level not in LEVELS:
            raise ReferenceDataError(f"{path}:{line}: level must be one of {LEVELS}, "
                                     f"got {agency.level!r}")
        out[agency.code] = agency
    return out


def load_systems(directory: Path | None = None) -> dict[str, PortalSystem]:
    path = reference_file(directory, SYSTEMS_FILE)
    out: dict[str, PortalSystem] = {}
    for line, r in read_rows(path, ["system_id", "name_vi", "url", "owner_agency"]):
        system = PortalSystem(r["system_id"], r["name_vi"], r["url"], r["owner_agency"])
        if not system.system_id or system.system_id in out:
            raise ReferenceDataError(
                f"{path}:{line}: empty or duplicate system_id {system.system_id!r}")
        if not system.name_vi:
            raise ReferenceDataError(f"{path}:{line}: empty name_vi")
        if system.url and not system.url.startswith(("http://", "https://")):
            raise ReferenceDataError(f"{path}:{line}: url must be http(s) or empty")
        out[system.system_id] = system
    return out


def load_procedures(directory: Path | None = None) -> dict[str, Procedure]:
    path = reference_file(directory, PROCEDURES_FILE)
    cols = ["procedure_code", "name_vi", "level", "agency", "due_days", "online_level",
            "fee_required"]
    out: dict[str, Procedure] = {}
    for line, r in read_rows(path, cols):
        try:
            proc = Procedure(r["procedure_code"], r["name_vi"], r["level"], r["agency"],
                             int(r["due_days"]), r["online_level"],
                             r["fee_required"] in ("1", "true", "yes"))
        except ValueError as exc:
            raise ReferenceDataError(f"{path}:{line}: {exc}") from exc
        if not proc.procedure_code or proc.procedure_code in out:
            raise ReferenceDataError(f"{path}:{line}: empty or duplicate procedure_code "
                                     f"{proc.procedure_code!r}")
        if proc.level not in LEVELS or proc.online_level not in ONLINE_LEVELS:
            raise ReferenceDataError(f"{path}:{line}: level must be one of {LEVELS} and "
                                     f"online_level one of {ONLINE_LEVELS}")
        if proc.due_days <= 0:
            raise ReferenceDataError(f"{path}:{line}: due_days must be > 0")
        out[proc.procedure_code] = proc
    return out


def procedures_of(agency: Agency, procedures: dict[str, Procedure]) -> list[Procedure]:
    """The catalogue rows an agency handles: its own, and those of its level for all."""
    return [p for p in procedures.values()
            if p.agency == agency.code or (not p.agency and p.level == agency.level)]


def load_into_clickhouse(client: Any, db: str, directory: Path | None = None) -> dict[str, int]:
    """Replace ``ref_egov_agencies``, ``ref_egov_systems`` and ``ref_egov_procedures`` with the
    files' content; return row counts. All files are read and cross-checked (owners and
    procedure agencies must be known agencies) before anything is written."""
    agencies = load_agencies(directory)
    systems = load_systems(directory)
    procedures = load_procedures(directory)
    unknown = sorted({s.owner_agency for s in systems.values() if s.owner_agency}
                     | {p.agency for p in procedures.values() if p.agency})
    unknown = [code for code in unknown if code not in agencies]
    if unknown:
        raise ReferenceDataError(f"egov systems or procedures refer to unknown agencies: "
                                 f"{unknown}")
    now = datetime.now(UTC)
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_egov_agencies")
    client.insert(f"{db}.ref_egov_agencies",
                  [[a.code, a.name_vi, a.level, a.area_code, now] for a in agencies.values()],
                  column_names=["code", "name_vi", "level", "area_code", "loaded_at"])
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_egov_systems")
    client.insert(f"{db}.ref_egov_systems",
                  [[s.system_id, s.name_vi, s.url, s.owner_agency, now]
                   for s in systems.values()],
                  column_names=["system_id", "name_vi", "url", "owner_agency", "loaded_at"])
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_egov_procedures")
    client.insert(f"{db}.ref_egov_procedures",
                  [[p.procedure_code, p.name_vi, p.level, p.agency, p.due_days, p.online_level,
                    int(p.fee_required), now] for p in procedures.values()],
                  column_names=["procedure_code", "name_vi", "level", "agency", "due_days",
                                "online_level", "fee_required", "loaded_at"])
    return {"ref_egov_agencies": len(agencies), "ref_egov_systems": len(systems),
            "ref_egov_procedures": len(procedures)}
