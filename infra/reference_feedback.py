"""Reference data of the citizen-feedback subsystem: report categories and handling agencies.

Two versioned CSV files, read by the stream processor (Vietnamese names in alert summaries, the
agencies the backlog gauge reports on) and by the simulator (due times, routing), and loaded by
``ioc setup`` into ClickHouse for dashboards and analysts:

- ``feedback_categories.csv`` (``code``, ``name_vi``, ``due_days``, ``agency``) →
  ``ref_feedback_categories``: the ``category`` symbols of ``ioc.feedback.report.v1``, their
  Vietnamese names, the usual time allowed to resolve one (days after assignment) and the
  agency a report of that category is usually routed to;
- ``feedback_agencies.csv`` (``agency``, ``name_vi``) → ``ref_feedback_agencies``: the agencies
  that reports are assigned to (``assigned_agency``).

A deployment's reference folder (``IOC_REFERENCE_DIR``) may carry its own copies; when it lacks
one (a folder prepared before this subsystem existed), the shipped default in
``infra/reference`` is used. The shipped lists are illustrative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.infra.reference import ReferenceDataError, read_rows
from ioc.infra.reference_cyber import reference_file

CATEGORIES_FILE = "feedback_categories.csv"
AGENCIES_FILE = "feedback_agencies.csv"


@dataclass(frozen=True)
class FeedbackCategory:
    code: str
    name_vi: str
    due_days: int
    agency: str


@dataclass(frozen=True)
class FeedbackAgency:
    agency: str
    name_vi: str


def load_agencies(directory: Path | None = None) -> dict[str, FeedbackAgency]:
    path = reference_file(directory, AGENCIES_FILE)
    out: dict[str, FeedbackAgency] = {}
    for line, r in read_rows(path, ["agency", "name_vi"]):
        agency = FeedbackAgency(r["agency"], r["name_vi"])
        if not agency.agency or agency.agency in out:
            raise ReferenceDataError(f"{path}:{line}: empty or duplicate agency "
                                     f"{agency.agency!r}")
        if not agency.name_vi:
            raise ReferenceDataError(f"{path}:{line}: empty name_vi")
        out[agency.agency] = agency
    return out


def load_categories(directory: Path | None = None) -> dict[str, FeedbackCategory]:
    path = reference_file(directory, CATEGORIES_FILE)
    agencies = load_agencies(directory)
    out: dict[str, FeedbackCategory] = {}
    for line, r in read_rows(path, ["code", "name_vi", "due_days", "agency"]):
        try:
            cat = FeedbackCategory(r["code"], r["name_vi"], int(r["due_days"]), r["agency"])
        except ValueError as exc:
            raise ReferenceDataError(f"{path}:{line}: {exc}") from exc
        if not cat.code or cat.code in out:
            raise ReferenceDataError(f"{path}:{line}: empty or duplicate code {cat.code!r}")
        if not cat.name_vi:
            raise ReferenceDataError(f"{path}:{line}: empty name_vi")
        if cat.due_days < 1:
            raise ReferenceDataError(f"{path}:{line}: due_days must be >= 1")
        if cat.agency not in agencies:
            raise ReferenceDataError(f"{path}:{line}: agency {cat.agency!r} is not in "
                                     f"{AGENCIES_FILE}")
        out[cat.code] = cat
    return out


def load_into_clickhouse(client: Any, db: str, directory: Path | None = None) -> dict[str, int]:
    """Replace ``ref_feedback_categories`` and ``ref_feedback_agencies`` with the files'
    content; return row counts. Both files are read before anything is written."""
    categories = load_categories(directory)
    agencies = load_agencies(directory)
    now = datetime.now(UTC)
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_feedback_categories")
    client.insert(f"{db}.ref_feedback_categories",
                  [[c.code, c.name_vi, c.due_days, c.agency, now] for c in categories.values()],
                  column_names=["code", "name_vi", "due_days", "agency", "loaded_at"])
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_feedback_agencies")
    client.insert(f"{db}.ref_feedback_agencies",
                  [[a.agency, a.name_vi, now] for a in agencies.values()],
                  column_names=["agency", "name_vi", "loaded_at"])
    return {"ref_feedback_categories": len(categories), "ref_feedback_agencies": len(agencies)}
