"""What every registered dashboard must satisfy, checked once for all of them (new dashboards are
checked automatically; each dashboard's own test file checks its identity and its numbers)."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from ioc.dashboards.build import DASHBOARDS, iter_panels, panel_queries, render_dict
from ioc.dashboards.common import DATASOURCE_UID, serialise

SQL_BOARDS = sorted(name for name in DASHBOARDS if panel_queries(render_dict(name)))


def _has_diacritics(text: str) -> bool:
    return any(unicodedata.decomposition(ch) for ch in text if ch.isalpha() and ord(ch) > 127)


@pytest.fixture(scope="module", params=sorted(DASHBOARDS))
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    return render_dict(request.param)


def test_serialisation_is_deterministic_and_round_trips_through_the_sdk(
        board: dict[str, Any]) -> None:
    register_default_plugins()
    text = serialise(board)
    assert text == serialise(render_dict(next(k for k in DASHBOARDS
                                              if render_dict(k)["uid"] == board["uid"])))
    assert to_plain(Dashboard.from_json(json.loads(text))) == board
    assert board["editable"] is False


def to_plain(model: Any) -> dict[str, Any]:
    from ioc.dashboards.common import to_dict

    return to_dict(model)


def test_panel_ids_are_1_to_n_and_titles_unique_and_vietnamese(board: dict[str, Any]) -> None:
    panels = list(iter_panels(board))
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    titles = [p["title"] for p in panels]
    assert len(set(titles)) == len(titles)
    assert all(_has_diacritics(t) for t in [board["title"], *titles])


@pytest.mark.parametrize("name", SQL_BOARDS)
def test_sql_panels_use_the_clickhouse_datasource_and_the_right_format(name: str) -> None:
    for panel in iter_panels(render_dict(name)):
        for target in panel.get("targets") or []:
            if "rawSql" not in target:
                continue
            assert target["datasource"]["uid"] == DATASOURCE_UID, panel["title"]
            assert target["format"] == (0 if panel["type"] == "timeseries" else 1), \
                panel["title"]


@pytest.mark.parametrize("name", SQL_BOARDS)
def test_every_table_is_read_from_database_ioc_with_final_and_the_time_range(name: str) -> None:
    table_ref = re.compile(r"\b(FROM|JOIN)\s+(?!\()(\S+)(\s+AS\s+\w+)?(\s+FINAL)?", re.I)
    for title, raw in panel_queries(render_dict(name)):
        sql = re.sub(r"--[^\n]*", "", raw)
        for _, table, _, final in table_ref.findall(sql):
            assert table.startswith("ioc."), f"{name} / {title}: {table}"
            assert final.strip().upper() == "FINAL", f"{name} / {title}: {table} without FINAL"
        assert not re.search(r"(?<!`)\bwindow\b(?!`)", sql.replace("window_", "")), title
        assert "$__timeFilter(" in sql or "$__toTime" in sql or "$__fromTime" in sql, title
