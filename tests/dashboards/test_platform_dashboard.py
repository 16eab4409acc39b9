"""The platform-health dashboard: Prometheus targets built with the SDK, every PromQL expression
parsed by a real parser, every metric and label name one the platform really exposes."""

from __future__ import annotations

from typing import Any

import pytest
from promql import exposed_series, label_values, metric_names, promql_problems

from ioc.dashboards import platform
from ioc.dashboards.build import OPS_FOLDER, folder_of, iter_panels, render_dict
from ioc.dashboards.common import serialise

BOARD = render_dict("platform")
TARGETS = [(panel, target) for panel in iter_panels(BOARD) for target in panel["targets"]]
SERIES = exposed_series()


def test_identity_folder_and_determinism() -> None:
    assert (BOARD["uid"], BOARD["title"]) == ("ioc-platform", "Sức khỏe nền tảng")
    assert {"ops", "wall"} <= set(BOARD["tags"])
    assert folder_of(BOARD) == OPS_FOLDER
    assert serialise(platform.build()) == serialise(platform.build())
    assert BOARD["refresh"] == "30s" and BOARD["time"] == {"from": "now-3h", "to": "now"}


def test_every_panel_and_target_reads_the_prometheus_datasource() -> None:
    ds = {"type": "prometheus", "uid": "ioc-prometheus"}
    for panel, target in TARGETS:
        assert panel["datasource"] == ds and target["datasource"] == ds, panel["title"]
        assert target["editorMode"] == "code" and target["expr"]
        # stats read the latest value (instant), charts a range
        assert target["instant"] is (panel["type"] == "stat"), panel["title"]
        assert target["range"] is (panel["type"] != "stat"), panel["title"]
    for panel in iter_panels(BOARD):
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize(("title", "expr"), [(p["title"], t["expr"]) for p, t in TARGETS])
def test_expression_parses_and_uses_real_metric_and_label_names(title: str, expr: str) -> None:
    assert promql_problems(expr, SERIES) == []


def test_the_checker_would_catch_a_wrong_name() -> None:
    assert promql_problems("sum(rate(ioc_events_in[5m]))", SERIES) == [
        "unknown metric 'ioc_events_in'"]  # a counter is exported with _total
    assert promql_problems('sum by (table) (ioc_consumer_lag{component="sink"})', SERIES) == [
        "sum by ['table']: no such label below"]
    assert promql_problems("sum(rate(ioc_events_in_total[5m])", SERIES) == [
        "does not parse: unclosed left parenthesis"]


def test_the_screen_shows_everything_the_issue_asks_for() -> None:
    used = set().union(*(metric_names(t["expr"]) for _, t in TARGETS))
    assert {"up", "ioc_events_in_total", "ioc_events_out_total", "ioc_consumer_lag",
            "ioc_dead_letters_total", "ioc_sink_batch_seconds_bucket",
            "ioc_sink_batch_rows_sum", "ioc_sink_batch_rows_count", "ioc_sink_retries_total",
            "ioc_stream_open_windows", "ioc_stream_held_events",
            "ioc_alerts_emitted_total"} <= used


def test_label_values_are_the_ones_the_platform_sets() -> None:
    components = set().union(*(label_values(t["expr"], "component") for _, t in TARGETS))
    assert components <= set(platform.COMPONENTS) == {"streams", "sink"}
    jobs = set().union(*(label_values(t["expr"], "job") for _, t in TARGETS))
    assert jobs == set(platform.SCRAPE_JOBS)


def _by_name(panel: dict[str, Any]) -> dict[str, str]:
    return {o["matcher"]["options"]: p["value"]
            for o in panel["fieldConfig"]["overrides"] for p in o["properties"]
            if p["id"] == "displayName"}


def test_processes_panel_names_each_job_in_vietnamese() -> None:
    panel = next(p for p in iter_panels(BOARD) if p["title"] == "Tiến trình đang chạy")
    assert _by_name(panel) == {"ioc-worker": "Bộ xử lý luồng", "ioc-sink": "Bộ ghi ClickHouse"}
    mapping = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert mapping["0"]["text"] == "Ngừng" and mapping["0"]["color"] == "red"
    assert mapping["1"]["text"] == "Đang chạy" and mapping["1"]["color"] == "green"
