"""Schema evolution: crafted incompatible changes are caught (with the field and direction),
compatible ones pass, and `ioc schemas check` fails on a catalogue folder with a bad change."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ioc.schemas.catalogue import AVRO_DIR, Catalogue
from ioc.schemas.compat import check_directory, compare

FLOW = "ioc.traffic.flow.v1"
CURRENT: dict[str, Any] = json.loads((AVRO_DIR / f"{FLOW}.avsc").read_text(encoding="utf-8"))
INCIDENT: dict[str, Any] = json.loads(
    (AVRO_DIR / "ioc.security.incident.v1.avsc").read_text(encoding="utf-8"))


def changed(base: dict[str, Any], name: str, **over: Any) -> dict[str, Any]:
    new = copy.deepcopy(base)
    for f in new["fields"]:
        if f["name"] == name:
            f.update(over)
    return new


def without(base: dict[str, Any], name: str) -> dict[str, Any]:
    new = copy.deepcopy(base)
    new["fields"] = [f for f in new["fields"] if f["name"] != name]
    return new


def plus(base: dict[str, Any], f: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(base)
    new["fields"].append(f)
    return new


def test_adding_a_field_with_a_default_is_compatible_both_ways() -> None:
    new = plus(CURRENT, {"name": "lane", "type": "int", "default": 0})
    assert compare(new, CURRENT) == ([], [])


def test_removing_a_field_that_has_a_default_is_compatible() -> None:
    assert compare(without(CURRENT, "occupancy"), CURRENT) == ([], [])


def test_widening_int_to_long_and_docs_changes_are_fine_backward() -> None:
    new = changed(CURRENT, "vehicle_count", type="long", doc="other words", doc_vi="khác")
    backward, forward = compare(new, CURRENT)
    assert backward == []
    assert forward == ["vehicle_count: type changed from long to int"]


@pytest.mark.parametrize("new,backward,forward", [
    (plus(CURRENT, {"name": "lane", "type": "int"}),
     ["lane: field is missing in the writer's schema and has no default in the reader's"], []),
    (without(CURRENT, "segment_id"), [],
     ["segment_id: field is missing in the writer's schema and has no default in the "
      "reader's"]),
    (changed(CURRENT, "avg_speed_kmh", type="string"),
     ["avg_speed_kmh: type changed from double to string"],
     ["avg_speed_kmh: type changed from string to double"]),
    (changed(CURRENT, "occurred_at", type="long"),
     ["occurred_at: logical type changed from timestamp-millis to none (same bytes, different "
      "meaning)"],
     ["occurred_at: logical type changed from none to timestamp-millis (same bytes, different "
      "meaning)"]),
    (dict(CURRENT, name="TrafficReading"),
     ["record: record name changed from TrafficFlow to TrafficReading (add the old name to "
      "'aliases')"],
     ["record: record name changed from TrafficReading to TrafficFlow (add the old name to "
      "'aliases')"]),
])
def test_incompatible_changes_are_caught(new: dict[str, Any], backward: list[str],
                                         forward: list[str]) -> None:
    assert compare(new, CURRENT) == (backward, forward)


def test_enum_symbols_need_a_default_on_the_reading_side() -> None:
    severity = next(f for f in INCIDENT["fields"] if f["name"] == "severity")
    grown = copy.deepcopy(severity["type"])
    grown["symbols"].append("catastrophic")
    # the enum has a default: old readers map the new symbol to it
    assert compare(changed(INCIDENT, "severity", type=grown), INCIDENT) == ([], [])
    no_default = {k: v for k, v in grown.items() if k != "default"}
    old = changed(INCIDENT, "severity", type={k: v for k, v in severity["type"].items()
                                              if k != "default"})
    backward, forward = compare(changed(INCIDENT, "severity", type=no_default), old)
    assert backward == []
    assert forward == ["severity: enum symbols ['catastrophic'] are unknown to the reader, "
                       "whose enum has no default"]


def test_making_a_field_nullable_is_backward_not_forward() -> None:
    new = changed(CURRENT, "vehicle_count", type=["null", "int"], default=None)
    backward, forward = compare(new, CURRENT)
    assert backward == []
    assert forward == ["vehicle_count: type changed from null to int"]


def catalogue_dir(tmp: Path, current: dict[str, Any], history: list[dict[str, Any]]) -> Path:
    (tmp / "history" / FLOW).mkdir(parents=True)
    (tmp / f"{FLOW}.avsc").write_text(json.dumps(current), encoding="utf-8")
    for i, old in enumerate(history, start=1):
        (tmp / "history" / FLOW / f"{i:03d}.avsc").write_text(json.dumps(old), encoding="utf-8")
    return tmp


def test_check_is_transitive_over_every_earlier_version(tmp_path: Path) -> None:
    v1 = without(CURRENT, "occupancy")
    v1 = plus(v1, {"name": "lanes", "type": "int"})  # v1 had a required field …
    v2 = without(CURRENT, "occupancy")               # … v2 dropped it (incompatible with v1)
    verdicts = check_directory(catalogue_dir(tmp_path, CURRENT, [v1, v2]))
    assert [(v.old, v.ok) for v in verdicts] == [(f"history/{FLOW}/001.avsc", False),
                                                 (f"history/{FLOW}/002.avsc", True)]
    assert verdicts[0].forward == ["lanes: field is missing in the writer's schema and has no "
                                   "default in the reader's"]
    # old data stays readable: every version is in the catalogue by its fingerprint
    cat = Catalogue(tmp_path)
    assert len(cat.by_fingerprint) == 3


def run_check(directory: Path) -> subprocess.CompletedProcess[str]:
    ioc = Path(sys.executable).parent / "ioc"
    return subprocess.run([str(ioc), "schemas", "check", "--dir", str(directory)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_check_fails_on_an_incompatible_change_and_passes_a_compatible_one(
        tmp_path: Path) -> None:
    good = run_check(catalogue_dir(tmp_path / "good", CURRENT, [without(CURRENT, "occupancy")]))
    assert good.returncode == 0, good.stdout
    assert "1 earlier versions of 1 topics checked, 0 incompatible" in good.stdout
    bad = run_check(catalogue_dir(tmp_path / "bad", changed(CURRENT, "segment_id",
                                                            type="int"), [CURRENT]))
    assert bad.returncode == 1
    assert "INCOMPATIBLE" in bad.stdout
    assert "backward (new schema reading old data): segment_id: type changed from string " \
           "to int" in bad.stdout


def test_the_repos_catalogue_passes() -> None:
    assert all(v.ok for v in check_directory(AVRO_DIR))
