"""The province situation level: every boundary of the documented table, against chDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.dashboards.situation import LEVELS, situation_sql

AT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
AT_SQL = "toDateTime64('2026-11-30 03:00:00', 3, 'UTC')"


def alert(n: int, severity: str, *, domain: str = "traffic", rule: str = "r", area: str = "",
          status: str = "firing", starts: timedelta = timedelta(hours=-1),
          ends: timedelta | None = None) -> list[Any]:
    start = AT + starts
    end = AT + ends if ends is not None else None
    return [f"a{n}", rule, severity, status, domain, area or f"5{n:02d}", "", 1.0, 1.0, "s",
            start, end, start if end is None else end, "", None]


COLUMNS = ["alert_id", "rule", "severity", "status", "domain", "area_code", "entity", "value",
           "threshold", "summary", "starts_at", "ends_at", "updated_at", "acked_by", "acked_at"]


def level_of(client: Any, db: str, rows: list[list[Any]]) -> tuple[int, str]:
    client.command(f"TRUNCATE TABLE {db}.alerts")
    if rows:
        client.insert(f"{db}.alerts", rows, column_names=COLUMNS)
    res = client.query(situation_sql(AT_SQL, database=db))
    level, name = res.result_rows[0][:2]
    return level, name


CASES: list[tuple[list[list[Any]], int]] = [
    ([], 1),
    ([alert(1, "info")], 1),
    ([alert(1, "warning")], 2),
    ([alert(i, "warning") for i in range(9)], 2),
    ([alert(i, "warning") for i in range(10)], 3),
    ([alert(1, "critical")], 3),
    ([alert(i, "critical") for i in range(3)], 3),
    ([alert(i, "critical") for i in range(4)], 4),
    ([alert(1, "critical"), alert(2, "critical", domain="health")], 4),
    ([alert(i, "critical") for i in range(7)], 4),
    ([alert(i, "critical") for i in range(8)], 5),
    ([alert(1, "critical"), alert(2, "critical", domain="health"),
      alert(3, "critical", domain="cyber")], 5),
]


def test_levels_follow_the_documented_table(chdb_client: Any, fresh_db: str) -> None:
    # One database for all cases (a fresh one per case costs a second each).
    got = [level_of(chdb_client, fresh_db, rows) for rows, _ in CASES]
    assert got == [(lv, LEVELS[lv - 1].name_vi) for _, lv in CASES]


def test_many_alerts_of_one_rule_in_one_area_are_one_situation(chdb_client: Any,
                                                               fresh_db: str) -> None:
    rows = [alert(i, "warning", rule="feedback.overdue", area="503") for i in range(25)]
    assert level_of(chdb_client, fresh_db, rows)[0] == 2


def test_only_alerts_active_at_the_moment_count(chdb_client: Any, fresh_db: str) -> None:
    rows = [
        # resolved before AT: does not count
        alert(1, "critical", status="resolved", starts=timedelta(hours=-3),
              ends=timedelta(hours=-2)),
        # starts after AT: does not count
        alert(2, "critical", starts=timedelta(minutes=5)),
        # resolved after AT: was active at AT, counts
        alert(3, "warning", status="resolved", starts=timedelta(hours=-1),
              ends=timedelta(minutes=30)),
    ]
    assert level_of(chdb_client, fresh_db, rows)[0] == 2
