"""Forgetting one person on real chDB: their reports (every lifecycle step), their dead letters
and the alerts about their reports go from every table; the other person's stay; KPIs are not
touched; a dry run deletes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from ioc.connectors.privacy import REPORT_TOPIC, pseudonymize
from ioc.infra.privacy_forget import ConnectSql, forget
from ioc.schemas.serde import Serde

KEY = b"test-key-0123456789abcdef"
NOW = datetime(2026, 11, 30, 1, tzinfo=UTC)
ANH, BINH = pseudonymize("0905 111 222", KEY), pseudonymize("Trần Văn Bình", KEY)


def _fill(client: Any, db: str) -> None:
    steps = [("A1", "submitted", ANH), ("A1", "assigned", ""), ("A2", "submitted", ANH),
             ("B1", "submitted", BINH), ("B1", "assigned", "")]
    client.insert(f"{db}.feedback_report",
                  [[f"{rid}-{st}", NOW, rid, st, who] for rid, st, who in steps],
                  column_names=["event_id", "occurred_at", "report_id", "status",
                                "reporter_pseudonym"])
    alerts = [("al-a1", "feedback.overdue", "A1"), ("al-b1", "feedback.overdue", "B1"),
              ("al-surge", "feedback.surge", "A1")]  # same entity text, another rule
    client.insert(f"{db}.alerts", [[a, r, e, NOW, NOW] for a, r, e in alerts],
                  column_names=["alert_id", "rule", "entity", "starts_at", "updated_at"])
    client.insert(f"{db}.alert_events", [[f"ev-{a}", NOW, a, r, e] for a, r, e in alerts],
                  column_names=["event_id", "occurred_at", "alert_id", "rule", "entity"])
    client.insert(f"{db}.alert_acks", [["al-a1", NOW, NOW], ["al-b1", NOW, NOW]],
                  column_names=["alert_id", "starts_at", "acked_at"])
    serde = Serde()
    avro_b = serde.encode_unchecked(REPORT_TOPIC, {
        "event_id": "B9", "occurred_at": NOW, "source": "s", "area_code": "503",
        "report_id": "B9", "status": "submitted", "channel": "app", "category": "waste",
        "description": "", "address": "", "lat": None, "lon": None, "assigned_agency": "",
        "due_at": None, "rating": 9, "reporter_pseudonym": BINH})
    letters = [(1, json.dumps({"report_id": "A1", "status": "resolved"}).encode()),  # A's id
               (2, json.dumps({"reporter_pseudonym": ANH}).encode()),
               (3, avro_b), (4, b"")]
    client.insert(f"{db}.dead_letters",
                  [[REPORT_TOPIC, 0, o, p, "decode", "r", "streams", NOW] for o, p in letters],
                  column_names=["topic", "partition", "offset", "payload", "error_type",
                                "reason", "stage", "failed_at"])
    client.insert(f"{db}.kpi", [["feedback.new_reports", "1d", NOW, NOW, "503", "waste", 3.0,
                                 3, NOW, 1]],
                  column_names=["kpi", "window", "window_start", "window_end", "area_code",
                                "entity", "value", "sample_count", "computed_at", "is_final"])


def _left(client: Any, db: str) -> dict[str, list[Any]]:
    q = {"reports": f"SELECT event_id FROM {db}.feedback_report ORDER BY event_id",
         "alerts": f"SELECT alert_id FROM {db}.alerts ORDER BY alert_id",
         "events": f"SELECT alert_id FROM {db}.alert_events ORDER BY alert_id",
         "acks": f"SELECT alert_id FROM {db}.alert_acks ORDER BY alert_id",
         "letters": f"SELECT offset FROM {db}.dead_letters ORDER BY offset",
         "kpi": f"SELECT value FROM {db}.kpi"}
    return {k: [r[0] for r in client.query(sql).result_rows] for k, sql in q.items()}


def test_forget_deletes_one_persons_rows_everywhere_and_nothing_else(
        chdb_client: Any, fresh_db: str) -> None:
    _fill(chdb_client, fresh_db)
    before = _left(chdb_client, fresh_db)
    dry = forget(ConnectSql(chdb_client), fresh_db, [ANH], dry_run=True)
    assert dry.report_ids == ["A1", "A2"] and dry.alert_ids == ["al-a1"]
    assert dry.deleted == {"feedback_report": 3, "dead_letters": 2, "alerts": 1,
                           "alert_events": 1, "alert_acks": 1}
    assert _left(chdb_client, fresh_db) == before

    done = forget(ConnectSql(chdb_client), fresh_db, [ANH])
    assert done.deleted == dry.deleted
    assert _left(chdb_client, fresh_db) == {
        "reports": ["B1-assigned", "B1-submitted"], "alerts": ["al-b1", "al-surge"],
        "events": ["al-b1", "al-surge"], "acks": ["al-b1"], "letters": [3, 4],
        "kpi": [3.0]}
    assert forget(ConnectSql(chdb_client), fresh_db, [ANH]).deleted == {}  # nothing left
    # the other person's dead letter was Avro: found by its decoded pseudonym
    assert forget(ConnectSql(chdb_client), fresh_db, [BINH]).deleted == {
        "feedback_report": 2, "dead_letters": 1, "alerts": 1, "alert_events": 1,
        "alert_acks": 1}


def test_forget_refuses_what_is_not_a_pseudonym(chdb_client: Any, fresh_db: str) -> None:
    for bad in (["0905111222"], ["Trần Văn Bình"], [], ["ABCDEF0123456789"]):
        with pytest.raises(ValueError, match="16 lowercase hex"):
            forget(ConnectSql(chdb_client), fresh_db, bad)


class _Recording:
    """Reads from real chDB; records the statements a cluster would run (chDB has no
    ``ON CLUSTER``)."""

    def __init__(self, client: Any) -> None:
        self.client, self.commands = client, []  # type: ignore[var-annotated]

    def query(self, sql: str) -> Any:
        return self.client.query(sql)

    def command(self, sql: str) -> None:
        self.commands.append(sql)


def test_on_a_cluster_deletions_go_on_cluster_to_every_shards_local_table(
        chdb_client: Any, fresh_db: str) -> None:
    from ioc.infra.migrations import cluster_ddl

    _fill(chdb_client, fresh_db)
    recording = _Recording(chdb_client)
    forget(ConnectSql(recording, cluster_ddl(fresh_db, "ioc_cluster")), fresh_db, [ANH])
    targets = sorted(c.split(" ON CLUSTER ")[0].removeprefix(f"ALTER TABLE {fresh_db}.")
                     for c in recording.commands)
    assert targets == ["alert_acks_local", "alert_events_local", "alerts_local",
                       "dead_letters_local", "feedback_report_local"]
    assert all("ON CLUSTER 'ioc_cluster'" in c and "DELETE WHERE" in c
               for c in recording.commands)
