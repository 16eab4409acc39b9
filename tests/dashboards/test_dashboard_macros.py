"""expand_macros follows the ClickHouse Grafana plugin's macro table and parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ioc.dashboards.macros import SUPPORTED, expand_macros

# The time range of the plugin's own macro tests (pkg/macros/macros_test.go).
FROM = datetime(2014, 11, 12, 11, 45, 26, 371000, tzinfo=UTC)
TO = datetime(2015, 11, 12, 11, 45, 26, 371000, tzinfo=UTC)


def x(sql: str, interval_s: int = 20, **kw: Any) -> str:
    return expand_macros(sql, FROM, TO, interval_s, **kw)


@pytest.mark.parametrize(("sql", "expected"), [
    ("$__timeFilter(time)", "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"),
    ("$__timeFilter_ms(time)", "time >= fromUnixTimestamp64Milli(1415792726371) AND "
                               "time <= fromUnixTimestamp64Milli(1447328726371)"),
    ("$__dateFilter(date)", "date >= toDate('2014-11-12') AND date <= toDate('2015-11-12')"),
    ("$__dateTimeFilter(d, t)", "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND "
                                "(t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))"),
    ("$__dt(d, t)", "(d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')) AND "
                    "(t >= toDateTime(1415792726) AND t <= toDateTime(1447328726))"),
    ("$__timeFrom(t)", "t >= toDateTime(1415792726)"),
    ("$__timeTo(t)", "t <= toDateTime(1447328726)"),
    ("$__fromTime", "toDateTime(1415792726)"),
    ("$__toTime", "toDateTime(1447328726)"),
    ("$__fromTime_ms", "fromUnixTimestamp64Milli(1415792726371)"),
    ("$__toTime_ms", "fromUnixTimestamp64Milli(1447328726371)"),
    ("$__interval_s", "20"),
    ("$__timeInterval(col)", "toStartOfInterval(toDateTime(col), INTERVAL 20 second)"),
    ("$__timeInterval_ms(col)", "toStartOfInterval(toDateTime64(col, 3), INTERVAL 20000 "
                                "millisecond)"),
    ("$__timeGroup(col, 5m)", "toStartOfInterval(toDateTime(col), INTERVAL 300 second)"),
])
def test_each_macro_expands_as_the_plugin_documents(sql: str, expected: str) -> None:
    assert x(sql) == expected


def test_every_supported_macro_is_covered() -> None:
    assert {"timeFilter", "timeFilter_ms", "dateFilter", "dateTimeFilter", "dt", "timeFrom",
            "timeTo", "timeGroup", "fromTime", "toTime", "fromTime_ms", "toTime_ms",
            "interval_s", "timeInterval", "timeInterval_ms", "conditionalAll"} == SUPPORTED


def test_a_longer_macro_name_is_not_read_as_a_shorter_one() -> None:
    assert x("$__toTime_ms") != x("$__toTime") + "_ms"
    assert x("$__timeFilter_ms(t)").startswith("t >= fromUnixTimestamp64Milli(")


def test_arguments_only_when_the_bracket_follows_the_name() -> None:
    # The plugin's parser once swallowed "(…)" further on; now only "$__name(" takes arguments.
    sql = "WHERE t >= $__fromTime AND k IN ('a', 'b') ORDER BY count() DESC"
    assert x(sql) == "WHERE t >= toDateTime(1415792726) AND k IN ('a', 'b') ORDER BY count() DESC"
    assert x("$__toTime - INTERVAL 1 HOUR") == "toDateTime(1447328726) - INTERVAL 1 HOUR"
    assert x("$__fromTime()") == x("$__fromTime")


def test_arguments_may_contain_brackets_and_commas_inside_them() -> None:
    assert x("$__timeFilter(toDateTime(a, 'UTC'))") == (
        "toDateTime(a, 'UTC') >= toDateTime(1415792726) AND "
        "toDateTime(a, 'UTC') <= toDateTime(1447328726)")


def test_every_occurrence_is_replaced_and_the_rest_left_alone() -> None:
    sql = "SELECT $__interval_s AS s, '$' AS d FROM t WHERE $__timeFilter(a) OR $__timeFilter(b)"
    out = x(sql)
    assert "$__" not in out
    assert out.startswith("SELECT 20 AS s, '$' AS d FROM t WHERE a >= ")
    assert " OR b >= toDateTime(1415792726)" in out


def test_interval_is_at_least_one_second() -> None:
    assert x("$__timeInterval(c)", interval_s=1) == (
        "toStartOfInterval(toDateTime(c), INTERVAL 1 second)")
    with pytest.raises(ValueError):
        x("$__interval_s", interval_s=0)


def test_time_range_in_another_zone_means_the_same_instants() -> None:
    ict = timezone(timedelta(hours=7))
    assert expand_macros("$__fromTime", FROM.astimezone(ict), TO.astimezone(ict)) == (
        "toDateTime(1415792726)")
    # Dates are the UTC dates Grafana sends, as in the plugin.
    late = datetime(2025, 3, 10, 23, 30, tzinfo=ict)  # 16:30 UTC
    assert expand_macros("$__dateFilter(d)", late, late) == (
        "d >= toDate('2025-03-10') AND d <= toDate('2025-03-10')")


@pytest.mark.parametrize("sql", [
    "$__timefilter(t)",          # wrong case
    "$__timeFliter(t)",          # typo
    "$__interval",               # a Grafana global variable, not a plugin macro
    "$__from",
    "$__toTimeX",
])
def test_unknown_macros_raise(sql: str) -> None:
    with pytest.raises(ValueError, match="unknown macro"):
        x(sql)


@pytest.mark.parametrize("sql", [
    "$__timeFilter",             # needs a column
    "$__timeFilter(a, b)",
    "$__dateTimeFilter(a)",
    "$__timeGroup(a)",
    "$__timeGroup(a, soon)",
    "$__timeFilter(a",           # unclosed
])
def test_bad_arguments_raise(sql: str) -> None:
    with pytest.raises(ValueError):
        x(sql)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        expand_macros("$__fromTime", FROM.replace(tzinfo=None), TO)


def test_conditional_all_uses_the_template_variable() -> None:
    sql = "WHERE $__conditionalAll(area_code IN ($area), $area) AND $__timeFilter(t)"
    assert x(sql, variables={"area": "$__all"}).startswith("WHERE 1=1 AND t >= ")
    assert x(sql, variables={"area": "'502'"}).startswith("WHERE area_code IN ($area) AND ")
    assert x(sql, variables={"area": ["502", "503"]}).startswith("WHERE area_code IN ($area)")
    assert x("$__conditionalAll(a = ${v}, ${v})", variables={"v": ""}) == "1=1"


def test_expanded_macros_are_valid_clickhouse(chdb_client: Any) -> None:
    sql = """
        SELECT $__timeInterval(t) AS time, $__timeInterval_ms(t) AS time_ms,
               $__timeGroup(t, 1h) AS hour, $__interval_s AS step,
               $__fromTime AS f, $__toTime AS e, $__fromTime_ms AS fm, $__toTime_ms AS em
        FROM (SELECT toDateTime64('2015-01-01 00:00:00', 3, 'UTC') AS t,
                     toDate('2015-01-01') AS d)
        WHERE $__timeFilter(t) AND $__timeFilter_ms(t) AND $__dateFilter(d)
          AND $__dateTimeFilter(d, t) AND $__dt(d, t) AND $__timeFrom(t) AND $__timeTo(t)
    """
    rows = chdb_client.query(x(sql, interval_s=60)).result_rows
    assert len(rows) == 1
    assert rows[0][3] == 60
