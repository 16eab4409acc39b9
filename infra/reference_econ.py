"""Reference data of the socio-economic indicators subsystem (``econ``).

Three versioned CSV files, read by the stream processor at start and loaded by ``ioc setup``
into ClickHouse for dashboards and analysts:

- ``econ_indicators.csv`` → ``ref_econ_indicators``: the indicator catalogue. Columns:
  ``code``; ``name_vi``; ``unit`` (reports must use it); ``aggregation`` — how the year to
  date is formed from the periods reported: ``sum`` (flows: revenue, disbursement, exports,
  arrivals, new enterprises), ``average`` (CPI: the mean of the months reported), ``latest``
  (a reported rate such as GRDP growth: the latest period's figure); ``frequency`` —
  ``monthly`` (periods ``YYYY-MM``), ``quarterly`` (``YYYY-Qn``, and ``YYYY`` for the full-year
  figure) or ``annual`` (``YYYY``); ``sum`` and ``average`` indicators must be monthly;
  ``agency`` (responsible agency, Vietnamese); ``monthly_required`` (1: every area with a
  target for the year must send a report for every month, checked by the
  ``econ.report_missing`` alert); ``behind_plan`` (1: the ``econ.behind_plan`` alert applies —
  only for monthly ``sum`` indicators, where the pro-rata plan is meaningful); ``direction``
  (``higher`` or ``lower`` is better; CPI's target is a ceiling).
- ``econ_targets.csv`` → ``ref_econ_targets``: annual targets by ``indicator_code``,
  ``area_code`` (empty: province-wide) and ``year``, in the indicator's unit, ``approximate``
  flag. A target row also makes that (indicator, area) a required monthly reporter for the
  year when the indicator has ``monthly_required``.
- ``econ_actuals.csv`` → ``ref_econ_actuals``: actual figures of past periods
  (``indicator_code``, ``area_code``, ``period``, ``value``, ``approximate``), used for
  year-on-year growth when the platform holds no report for that period (a report, when there
  is one, wins).

A deployment's own reference folder (``IOC_REFERENCE_DIR``) may carry its own copies. When it
lacks one of these files (a folder prepared before the subsystem existed), the shipped default
in ``infra/reference`` is used; shipped target and actual rows for areas that the deployment's
``areas.csv`` does not know are then left out, so Quảng Nam's district figures never attach to
another province's units. In a deployment's own files an unknown area or indicator code is an
error that names the file and line. The shipped figures are **approximate** (rounded, of the
order of Quảng Nam's recent plans and yearbooks), marked ``approximate = 1``: the statistics
office's and the finance department's figures replace them before anything is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.infra.reference import DEFAULT_DIR, ReferenceDataError, load_areas, read_rows
from ioc.infra.reference_cyber import reference_file
from ioc.schemas.checks_econ import Period, parse_period

INDICATORS_FILE = "econ_indicators.csv"
TARGETS_FILE = "econ_targets.csv"
ACTUALS_FILE = "econ_actuals.csv"

AGGREGATIONS = ("sum", "average", "latest")
FREQUENCIES = {"monthly": ("month",), "quarterly": ("quarter", "year"), "annual": ("year",)}
"""Period kinds (:attr:`Period.kind`) each reporting frequency accepts."""


@dataclass(frozen=True)
class Indicator:
    code: str
    name_vi: str
    unit: str
    aggregation: str
    frequency: str
    agency: str
    monthly_required: bool
    behind_plan: bool
    direction: str

    def accepts(self, period: Period) -> bool:
        return period.kind in FREQUENCIES[self.frequency]


@dataclass(frozen=True)
class EconReference:
    """Everything the econ processor needs. ``targets`` maps (indicator, area, year) to the
    annual target; ``actuals`` maps (indicator, area, period text) to a past figure."""

    indicators: dict[str, Indicator]
    targets: dict[tuple[str, str, int], float]
    actuals: dict[tuple[str, str, str], float]


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes")


def load_indicators(directory: Path | None = None) -> dict[str, Indicator]:
    path = reference_file(directory, INDICATORS_FILE)
    cols = ["code", "name_vi", "unit", "aggregation", "frequency", "agency", "monthly_required",
            "behind_plan", "direction"]
    out: dict[str, Indicator] = {}
    for line, r in read_rows(path, cols):
        ind = Indicator(r["code"], r["name_vi"], r["unit"], r["aggregation"], r["frequency"],
                        r["agency"], _flag(r["monthly_required"]), _flag(r["behind_plan"]),
                        r["direction"] or "higher")
        where = f"{path}:{line}"
        if not ind.code or ind.code in out:
            raise ReferenceDataError(f"{where}: empty or duplicate code {ind.code!r}")
        if not ind.name_vi or not ind.unit:
            raise ReferenceDataError(f"{where}: name_vi and unit must not be empty")
        if ind.aggregation not in AGGREGATIONS:
            raise ReferenceDataError(f"{where}: aggregation must be one of {AGGREGATIONS}")
        if ind.frequency not in FREQUENCIES:
            raise ReferenceDataError(f"{where}: frequency must be one of {sorted(FREQUENCIES)}")
        if ind.aggregation != "latest" and ind.frequency != "monthly":
            raise ReferenceDataError(f"{where}: {ind.aggregation} indicators must be monthly")
        if ind.monthly_required and ind.frequency != "monthly":
            raise ReferenceDataError(f"{where}: monthly_required needs frequency monthly")
        if ind.behind_plan and ind.aggregation != "sum":
            raise ReferenceDataError(f"{where}: behind_plan applies to sum indicators only")
        if ind.direction not in ("higher", "lower"):
            raise ReferenceDataError(f"{where}: direction must be higher or lower")
        out[ind.code] = ind
    return out


def _area_ok(area: str, known: set[str], shipped: bool, where: str) -> bool:
    """Province-wide and known areas pass; an unknown area is skipped in the shipped default
    (it belongs to the default province) and an error in a deployment's own file."""
    if not area or area in known:
        return True
    if shipped:
        return False
    raise ReferenceDataError(f"{where}: unknown area_code {area!r} (not in areas.csv)")


def load_targets(indicators: dict[str, Indicator], areas: set[str],
                 directory: Path | None = None) -> dict[tuple[str, str, int], float]:
    path = reference_file(directory, TARGETS_FILE)
    shipped = path.parent.resolve() == DEFAULT_DIR.resolve()
    out: dict[tuple[str, str, int], float] = {}
    for line, r in read_rows(path, ["indicator_code", "area_code", "year", "target"]):
        where = f"{path}:{line}"
        if r["indicator_code"] not in indicators:
            raise ReferenceDataError(f"{where}: unknown indicator_code {r['indicator_code']!r}")
        if not _area_ok(r["area_code"], areas, shipped, where):
            continue
        try:
            key = (r["indicator_code"], r["area_code"], int(r["year"]))
            target = float(r["target"])
        except ValueError as exc:
            raise ReferenceDataError(f"{where}: {exc}") from exc
        if key in out:
            raise ReferenceDataError(f"{where}: duplicate target for {key}")
        if target <= 0:
            raise ReferenceDataError(f"{where}: target must be > 0")
        out[key] = target
    return out


def load_actuals(indicators: dict[str, Indicator], areas: set[str],
                 directory: Path | None = None) -> dict[tuple[str, str, str], float]:
    path = reference_file(directory, ACTUALS_FILE)
    shipped = path.parent.resolve() == DEFAULT_DIR.resolve()
    out: dict[tuple[str, str, str], float] = {}
    for line, r in read_rows(path, ["indicator_code", "area_code", "period", "value"]):
        where = f"{path}:{line}"
        ind = indicators.get(r["indicator_code"])
        if ind is None:
            raise ReferenceDataError(f"{where}: unknown indicator_code {r['indicator_code']!r}")
        if not _area_ok(r["area_code"], areas, shipped, where):
            continue
        period = parse_period(r["period"])
        if period is None or not ind.accepts(period):
            raise ReferenceDataError(f"{where}: period {r['period']!r} does not fit the "
                                     f"{ind.frequency} indicator {ind.code}")
        try:
            value = float(r["value"])
        except ValueError as exc:
            raise ReferenceDataError(f"{where}: {exc}") from exc
        key = (ind.code, r["area_code"], period.text)
        if key in out:
            raise ReferenceDataError(f"{where}: duplicate figure for {key}")
        out[key] = value
    return out


def load_econ(directory: Path | None = None) -> EconReference:
    """All three files, checked against each other and against ``areas.csv``."""
    indicators = load_indicators(directory)
    areas = set(load_areas(directory))
    return EconReference(indicators, load_targets(indicators, areas, directory),
                         load_actuals(indicators, areas, directory))


def load_into_clickhouse(client: Any, db: str, directory: Path | None = None) -> dict[str, int]:
    """Replace ``ref_econ_indicators``, ``ref_econ_targets`` and ``ref_econ_actuals`` with the
    files' content; return row counts. Every file is read and checked before anything is
    written, so a bad file changes nothing."""
    ref = load_econ(directory)
    targets_approx = _approx_flags(reference_file(directory, TARGETS_FILE),
                                   ["indicator_code", "area_code", "year"])
    actuals_approx = _approx_flags(reference_file(directory, ACTUALS_FILE),
                                   ["indicator_code", "area_code", "period"])
    now = datetime.now(UTC)
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_econ_indicators")
    client.insert(
        f"{db}.ref_econ_indicators",
        [[i.code, i.name_vi, i.unit, i.aggregation, i.frequency, i.agency,
          int(i.monthly_required), int(i.behind_plan), i.direction, now]
         for i in ref.indicators.values()],
        column_names=["code", "name_vi", "unit", "aggregation", "frequency", "agency",
                      "monthly_required", "behind_plan", "direction", "loaded_at"])
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_econ_targets")
    client.insert(
        f"{db}.ref_econ_targets",
        [[ind, area, year, target,
          int(targets_approx.get((ind, area, str(year)), False)), now]
         for (ind, area, year), target in ref.targets.items()],
        column_names=["indicator_code", "area_code", "year", "target", "approximate",
                      "loaded_at"])
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_econ_actuals")
    client.insert(
        f"{db}.ref_econ_actuals",
        [[ind, area, period, value, int(actuals_approx.get((ind, area, period), False)), now]
         for (ind, area, period), value in ref.actuals.items()],
        column_names=["indicator_code", "area_code", "period", "value", "approximate",
                      "loaded_at"])
    return {"ref_econ_indicators": len(ref.indicators), "ref_econ_targets": len(ref.targets),
            "ref_econ_actuals": len(ref.actuals)}


def _approx_flags(path: Path, key: list[str]) -> dict[tuple[str, ...], bool]:
    """The optional ``approximate`` column by row key (absent column: not approximate)."""
    return {tuple(r[k] for k in key): _flag(r.get("approximate", ""))
            for _, r in read_rows(path, key)}
