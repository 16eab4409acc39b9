"""Every wall dashboard follows the wall conventions — checked generically over the registry, so
a dashboard registered tomorrow is checked without anyone writing a test for it.

The rules (``ioc.dashboards.testing.wall_problems``): fits one 1920x1080 kiosk screen without
scrolling or overlap; stat panels at least 4 × 4 grid cells, other panels 6 × 5; Vietnamese
titles; refresh 5 s – 5 min; the shared palette and one colour per severity.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ioc.dashboards.build import (
    DASHBOARDS,
    FOLDERS,
    OPS_FOLDER,
    WALL_FOLDER,
    folder_of,
    render_dict,
)
from ioc.dashboards.common import SEVERITY_COLOURS, WALL_ROWS
from ioc.dashboards.testing import wall_problems
from ioc.infra.wall_profile import rows_that_fit

BOARDS = {name: render_dict(name) for name in DASHBOARDS}
WALL = sorted(name for name, board in BOARDS.items() if "wall" in board.get("tags", []))


def test_the_registered_wall_screens_are_checked() -> None:
    assert {"overview", "traffic", "security", "cyber", "platform"} <= set(WALL)


@pytest.mark.parametrize("name", WALL)
def test_wall_dashboard_follows_the_wall_conventions(name: str) -> None:
    assert wall_problems(BOARDS[name]) == []


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_dashboard_has_a_unique_ioc_uid_and_a_folder(name: str) -> None:
    board = BOARDS[name]
    assert board["uid"].startswith("ioc-") and len(board["uid"]) <= 40
    assert [n for n, b in BOARDS.items() if b["uid"] == board["uid"]] == [name]
    assert "ioc" in board["tags"]
    assert folder_of(board) in FOLDERS


def test_ops_dashboards_go_to_the_operations_folder() -> None:
    assert folder_of(BOARDS["platform"]) == OPS_FOLDER
    assert folder_of(BOARDS["overview"]) == WALL_FOLDER
    assert OPS_FOLDER.title == "IOC – Vận hành" and WALL_FOLDER.title == "IOC – Màn hình tường"


def test_the_kiosk_row_budget_matches_the_grid_check() -> None:
    assert rows_that_fit(1080) == WALL_ROWS == 27
    assert rows_that_fit(2160, scale=2.0) == WALL_ROWS  # a 4K screen at 200 %
    assert rows_that_fit(1080, scale=1.25) < WALL_ROWS  # zoomed in: less fits


def _broken(board: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(board)
    bad["title"] = "Overview"
    bad["refresh"] = ""
    bad["editable"] = True
    panels = bad["panels"]
    stat = next(p for p in panels if p["type"] == "stat")
    stat["title"] = "Traffic now"
    stat["gridPos"] = {**stat["gridPos"], "w": 3, "h": 3}
    stat["fieldConfig"]["defaults"]["thresholds"]["steps"] = [
        {"value": None, "color": "green"}, {"value": 5, "color": "#FF0000"},
        {"value": 2, "color": "red"}]
    table = [p for p in panels if p["type"] == "table"][-1]  # the firing-alerts table
    table["gridPos"] = {**table["gridPos"], "y": WALL_ROWS - 9, "h": 11}
    for override in table["fieldConfig"]["overrides"]:
        for prop in override["properties"]:
            if prop["id"] == "mappings" and "critical" in prop["value"][0]["options"]:
                prop["value"][0]["options"]["critical"]["color"] = "orange"
    return bad


def test_the_checker_catches_each_kind_of_problem() -> None:
    found = "\n".join(wall_problems(_broken(BOARDS["traffic"])))
    for expected in ("below the 27 rows of one screen", "overlaps",
                     "dashboard title 'Overview' has no Vietnamese diacritics",
                     "panel title 'Traffic now' has no Vietnamese diacritics",
                     "refresh '' is not between 5s and 5m", "dashboard is editable",
                     "stat panel 3×3 is smaller than 4×4",
                     "must start at null (−∞) and increase",
                     "threshold colour '#FF0000' is not in the palette",
                     "severity 'critical' shown in 'orange', not 'red'"):
        assert expected in found, found


def test_severity_colours_are_the_shared_ones() -> None:
    assert SEVERITY_COLOURS == {"critical": "red", "warning": "orange", "info": "blue"}
