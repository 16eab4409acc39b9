"""Semantic checks of the econ indicator reports and the shared reading of ``period``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ioc.schemas.checks_econ import REPORT_TOPIC, Period, parse_period
from ioc.schemas.validation import semantic_errors

GOOD: dict[str, Any] = {
    "event_id": "r-1", "occurred_at": datetime(2026, 11, 3, 2, tzinfo=UTC),
    "source": "STC-QNA", "area_code": "", "indicator_code": "budget_revenue",
    "period": "2026-10", "value": 2150.5, "unit": "tỷ đồng",
    "reporting_agency": "Sở Tài chính", "revision": 0,
}


@pytest.mark.parametrize(("text", "period", "kind"), [
    ("2026-10", Period(2026, 10, 10), "month"),
    ("2026-Q3", Period(2026, 7, 9), "quarter"),
    ("2026", Period(2026, 1, 12), "year"),
    (" 2026-01 ", Period(2026, 1, 1), "month"),
])
def test_periods_parse_and_print_back(text: str, period: Period, kind: str) -> None:
    got = parse_period(text)
    assert got == period and got.kind == kind
    assert parse_period(got.text) == got


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-Q5", "26-10", "2026-1",
                                  "2026/10", "", "1999", "2026-10-01"])
def test_malformed_periods_are_none(text: str) -> None:
    assert parse_period(text) is None


def test_a_good_report_passes() -> None:
    assert semantic_errors(REPORT_TOPIC, GOOD) == []


@pytest.mark.parametrize(("changes", "field"), [
    ({"indicator_code": ""}, "indicator_code"),
    ({"indicator_code": "Budget Revenue"}, "indicator_code"),
    ({"period": "2026-13"}, "period"),
    ({"period": "2026-12"}, "period"),  # December has not begun on 3 November
    ({"value": float("nan")}, "value"),
    ({"value": float("inf")}, "value"),
    ({"unit": " "}, "unit"),
    ({"reporting_agency": ""}, "reporting_agency"),
    ({"revision": -1}, "revision"),
    ({"event_id": ""}, "event_id"),
])
def test_bad_reports_name_the_field(changes: dict[str, Any], field: str) -> None:
    problems = semantic_errors(REPORT_TOPIC, {**GOOD, **changes})
    assert len(problems) == 1 and problems[0].startswith(field + ":"), problems


def test_the_current_month_may_be_reported_early_in_local_time() -> None:
    # 1 November 00:30 local is still 31 October in UTC: November has begun locally.
    early = {**GOOD, "period": "2026-11",
             "occurred_at": datetime(2026, 10, 31, 17, 30, tzinfo=UTC)}
    assert semantic_errors(REPORT_TOPIC, early) == []
