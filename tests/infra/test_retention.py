"""Retention per table from settings: which rule wins, and on real chDB that the TTL ``ioc
setup`` sets deletes an old row and keeps a recent one, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ioc.infra import retention
from ioc.infra.settings import Settings, SettingsError


def test_settings_parse_days_per_table_and_refuse_nonsense() -> None:
    s = Settings.from_env({"IOC_RETENTION": " feedback_report=365, dead_letters = 30 ,",
                           "IOC_RETENTION_DAYS": "400"})
    assert s.retention == (("dead_letters", 30), ("feedback_report", 365))
    assert s.retention_days == 400
    for env in ({"IOC_RETENTION": "feedback_report"}, {"IOC_RETENTION": "kpi=-1"},
                {"IOC_RETENTION": "kpi=ten"}, {"IOC_RETENTION_DAYS": "1y"}):
        with pytest.raises(SettingsError):
            Settings.from_env(env)


def test_per_table_entry_wins_then_the_shorter_of_built_in_and_default() -> None:
    plan = retention.plan(Settings())
    assert plan["feedback_report"] == 730 and plan["dead_letters"] == 90
    assert plan["traffic_flow"] is None and plan["kpi"] is None
    plan = retention.plan(Settings(retention_days=365, retention=(("dead_letters", 0),
                                                                 ("kpi", 3650))))
    assert plan["feedback_report"] == 365  # shorter than the built-in 730
    assert plan["traffic_flow"] == plan["alerts"] == plan["alert_events"] == 365
    assert plan["dead_letters"] is None  # named: kept for good
    assert plan["kpi"] == 3650  # never from the general default
    assert retention.plan(Settings(retention_days=1000))["dead_letters"] == 90
    with pytest.raises(retention.RetentionError, match="ref_areas"):
        retention.plan(Settings(retention=(("ref_areas", 30),)))


def _dead_letter(offset: int, failed_at: datetime) -> list[Any]:
    return ["ioc.x.v1", 0, offset, None, b"", "decode", "r", "streams", failed_at]


DL_COLUMNS = ["topic", "partition", "offset", "key", "payload", "error_type", "reason",
              "stage", "failed_at"]


def test_ttl_deletes_old_rows_keeps_recent_ones_and_setup_is_idempotent(
        chdb_client: Any, fresh_db: str) -> None:
    db, now = fresh_db, datetime.now(UTC)
    chdb_client.insert(f"{db}.dead_letters", [_dead_letter(1, now - timedelta(days=40)),
                                              _dead_letter(2, now - timedelta(days=1))],
                       column_names=DL_COLUMNS)
    chdb_client.insert(f"{db}.traffic_flow", [["old", now - timedelta(days=500)],
                                              ["new", now - timedelta(days=5)]],
                       column_names=["event_id", "occurred_at"])
    settings = Settings(database=db, retention=(("dead_letters", 30), ("traffic_flow", 365)))
    done = {r.table: r for r in retention.apply(chdb_client, settings)}
    assert (done["dead_letters"].action, done["dead_letters"].expired) == ("set", 1)
    assert (done["traffic_flow"].days, done["traffic_flow"].expired) == (365, 1)
    assert done["feedback_report"].days == 730 and done["kpi"].action == "unchanged"

    def offsets() -> list[int]:
        return [r[0] for r in chdb_client.query(
            f"SELECT offset FROM {db}.dead_letters ORDER BY offset").result_rows]

    assert offsets() == [2]  # deleted when the TTL was set
    assert chdb_client.query(f"SELECT event_id FROM {db}.traffic_flow").result_rows == [("new",)]
    # rows that arrive already expired go at the next merge
    chdb_client.insert(f"{db}.dead_letters", [_dead_letter(3, now - timedelta(days=31)),
                                              _dead_letter(4, now)], column_names=DL_COLUMNS)
    chdb_client.command(f"OPTIMIZE TABLE {db}.dead_letters FINAL")
    assert offsets() == [2, 4]
    again = retention.apply(chdb_client, settings)
    assert {r.action for r in again} == {"unchanged"}
    assert retention.summary(again).startswith("retention (0 changed): dead_letters 30 days")
    # back to "keep": the TTL is removed
    keep = settings.with_(retention=(("dead_letters", 0),))
    done = {r.table: r for r in retention.apply(chdb_client, keep)}
    assert done["dead_letters"].action == "removed" and done["traffic_flow"].action == "removed"
    engine = chdb_client.query(f"SELECT engine_full FROM system.tables WHERE database = '{db}' "
                               "AND name = 'dead_letters'").result_rows[0][0]
    assert " TTL " not in engine


def test_setup_refuses_a_retention_for_a_table_that_has_none(tmp_path: Any) -> None:
    from ioc.infra.runtime import SetupError, setup_clickhouse

    with pytest.raises(SetupError, match="IOC_RETENTION names ref_areas"):
        setup_clickhouse(Settings(data_dir=tmp_path, retention=(("ref_areas", 30),)))
