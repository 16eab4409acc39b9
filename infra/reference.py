"""Reference data: administrative areas and road segments, from versioned CSV files.

The files are the single source: ``ioc setup`` loads them into ``ref_areas`` and
``ref_road_segments`` for dashboards and analysts, and the stream processors read the same files
at start (so a worker does not depend on ClickHouse being reachable). A deployment points
``IOC_REFERENCE_DIR`` at its own files; no code hard-codes the list.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).parent / "reference"


class ReferenceDataError(ValueError):
    """A reference file is missing a column or has a bad value (message names file and row)."""


@dataclass(frozen=True)
class Area:
    code: str
    name_vi: str
    level: str
    parent_code: str
    population: int
    population_approx: bool
    valid_from: date
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class RoadSegment:
    segment_id: str
    name_vi: str
    area_code: str
    free_flow_kmh: float
    road_class: str
    length_km: float


def read_rows(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a UTF-8 CSV with a header naming ``required`` columns;
    values are stripped. Errors name the file (and the line, in callers)."""
    if not path.exists():
        raise ReferenceDataError(f"reference file not found: {path}")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ReferenceDataError(f"{path}: missing columns {missing}")
        return [(i, {k: (v or "").strip() for k, v in row.items() if k})
                for i, row in enumerate(reader, start=2)]


def load_areas(directory: Path | None = None) -> dict[str, Area]:
    path = (directory or DEFAULT_DIR) / "areas.csv"
    cols = ["code", "name_vi", "level", "parent_code", "population", "population_approx",
            "valid_from"]
    out: dict[str, Area] = {}
    for line, r in read_rows(path, cols):
        try:
            area = Area(r["code"].strip(), r["name_vi"].strip(), r["level"].strip(),
                        r["parent_code"].strip(), int(r["population"] or 0),
                        r["population_approx"].strip() in ("1", "true", "yes"),
                        date.fromisoformat(r["valid_from"].strip()),
                        float(r["lat"]) if r.get("lat") else None,
                        float(r["lon"]) if r.get("lon") else None)
        except ValueError as exc:
            raise ReferenceDataError(f"{path}:{line}: {exc}") from exc
        if not area.code or area.code in out:
            raise ReferenceDataError(f"{path}:{line}: empty or duplicate code {area.code!r}")
        out[area.code] = area
    return out


def load_segments(directory: Path | None = None) -> dict[str, RoadSegment]:
    path = (directory or DEFAULT_DIR) / "road_segments.csv"
    cols = ["segment_id", "name_vi", "area_code", "free_flow_kmh", "road_class", "length_km"]
    out: dict[str, RoadSegment] = {}
    for line, r in read_rows(path, cols):
        try:
            seg = RoadSegment(r["segment_id"].strip(), r["name_vi"].strip(),
                              r["area_code"].strip(), float(r["free_flow_kmh"]),
                              r["road_class"].strip(), float(r["length_km"] or 0))
        except ValueError as exc:
            raise ReferenceDataError(f"{path}:{line}: {exc}") from exc
        if seg.free_flow_kmh <= 0:
            raise ReferenceDataError(f"{path}:{line}: free_flow_kmh must be > 0")
        if not seg.segment_id or seg.segment_id in out:
            raise ReferenceDataError(f"{path}:{line}: empty or duplicate segment_id")
        out[seg.segment_id] = seg
    return out


@dataclass(frozen=True)
class ReferenceData:
    """The reference data every domain starts from; domains load their own extra files
    (facilities, agencies, targets, …) from the same ``directory``."""

    directory: Path
    areas: dict[str, Area]
    segments: dict[str, RoadSegment]


def load_reference(directory: Path | None = None) -> ReferenceData:
    directory = directory or DEFAULT_DIR
    return ReferenceData(directory, load_areas(directory), load_segments(directory))


def load_into_clickhouse(client: Any, db: str, directory: Path | None = None) -> dict[str, int]:
    """Replace the reference tables' content with the files' content; return row counts."""
    areas = load_areas(directory)
    segments = load_segments(directory)
    unknown = sorted({s.area_code for s in segments.values()} - set(areas))
    if unknown:
        raise ReferenceDataError(f"road segments refer to unknown area codes: {unknown}")
    now = datetime.now(UTC)
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_areas")
    client.insert(
        f"{db}.ref_areas",
        [[a.code, a.name_vi, a.level, a.parent_code, a.population, int(a.population_approx),
          a.valid_from, a.lat, a.lon, now] for a in areas.values()],
        column_names=["code", "name_vi", "level", "parent_code", "population",
                      "population_approx", "valid_from", "lat", "lon", "loaded_at"],
    )
    client.command(f"TRUNCATE TABLE IF EXISTS {db}.ref_road_segments")
    client.insert(
        f"{db}.ref_road_segments",
        [[s.segment_id, s.name_vi, s.area_code, s.free_flow_kmh, s.road_class, s.length_km, now]
         for s in segments.values()],
        column_names=["segment_id", "name_vi", "area_code", "free_flow_kmh", "road_class",
                      "length_km", "loaded_at"],
    )
    return {"ref_areas": len(areas), "ref_road_segments": len(segments)}
