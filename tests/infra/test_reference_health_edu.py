"""Health facilities and schools reference lists: the shipped files, a deployment's own, and
the Kafka retention the health domain asks ``ioc setup`` for."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from ioc.infra.reference import DEFAULT_DIR, ReferenceDataError, load_areas
from ioc.infra.reference_health_edu import (
    FACILITY_KINDS,
    SCHOOL_LEVELS,
    load_facilities,
    load_into_clickhouse,
    load_schools,
)
from ioc.infra.runtime import REFERENCE_LOADERS, topic_configs
from ioc.infra.settings import Settings
from ioc.schemas.catalogue import Catalogue


class RecordingClient:
    """Just enough of a clickhouse-connect client to see what a loader writes."""

    def __init__(self) -> None:
        self.inserted: dict[str, list[list[Any]]] = {}
        self.commands: list[str] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def insert(self, table: str, rows: list[list[Any]], column_names: list[str]) -> None:
        self.inserted[table] = rows


def test_shipped_lists_are_complete_and_on_known_areas() -> None:
    areas = load_areas()
    facilities = load_facilities()
    schools = load_schools()
    assert {f.area_code for f in facilities.values()} <= set(areas)
    assert {s.area_code for s in schools.values()} <= set(areas)
    district_units = {c for c, a in areas.items() if a.level != "province"}
    assert {s.area_code for s in schools.values()} == district_units
    assert {f.area_code for f in facilities.values() if f.kind == "health_centre"} == (
        district_units)
    assert {f.kind for f in facilities.values()} <= set(FACILITY_KINDS)
    assert {s.level for s in schools.values()} == set(SCHOOL_LEVELS) - {"other"}
    assert all(f.beds > 0 for f in facilities.values())
    assert all(s.enrolled > 0 for s in schools.values())


def test_a_deployment_folder_without_the_files_uses_the_shipped_ones(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_DIR / "areas.csv", tmp_path / "areas.csv")
    assert load_facilities(tmp_path) == load_facilities()
    assert load_schools(tmp_path) == load_schools()


def test_a_deployments_own_list_must_use_its_own_areas(tmp_path: Path) -> None:
    (tmp_path / "areas.csv").write_text(
        "code,name_vi,level,parent_code,population,population_approx,valid_from\n"
        "49,Tỉnh Quảng Nam,province,,1500000,1,2025-07-01\n"
        "20101,Phường Tam Kỳ,commune,49,60000,1,2025-07-01\n", encoding="utf-8")
    (tmp_path / "health_facilities.csv").write_text(
        "facility_id,name_vi,area_code,kind,beds,icu_beds\n"
        "bv-1,Bệnh viện A,20101,general_hospital,300,10\n", encoding="utf-8")
    client = RecordingClient()
    counts = load_into_clickhouse(client, "ioc", tmp_path)
    # own facilities on own areas; the schools fall back to the shipped (unchecked) list
    assert counts == {"ref_health_facilities": 1, "ref_schools": len(load_schools())}
    (tmp_path / "schools.csv").write_text(
        "school_id,name_vi,area_code,level,enrolled\n"
        "s-1,Trường Tiểu học A,99999,primary,500\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=r"unknown area codes \['99999'\]"):
        load_into_clickhouse(RecordingClient(), "ioc", tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    ("bv-1,A,502,hospital,300,0", "kind must be one of"),
    ("bv-1,A,502,general_hospital,many,0", "beds must be a whole number"),
    ("bv-1,A,502,general_hospital,-3,0", "beds must be >= 0"),
    (",A,502,general_hospital,3,0", "empty or duplicate facility_id"),
])
def test_bad_facility_rows_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "health_facilities.csv").write_text(
        "facility_id,name_vi,area_code,kind,beds,icu_beds\n" + text + "\n", encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=message) as err:
        load_facilities(tmp_path)
    assert "health_facilities.csv:2" in str(err.value)


def test_setup_loads_the_lists_and_keeps_case_events_for_the_outbreak_rule() -> None:
    assert load_into_clickhouse in REFERENCE_LOADERS
    configs = topic_configs(Settings(topic_prefix="x."), Catalogue())
    assert configs["x.ioc.health.disease_case.v1"]["retention.ms"] == str(60 * 86_400_000)
    assert "retention.ms" not in configs["x.ioc.health.facility_status.v1"]
