"""Migrations and the data contract agree: every event topic has a raw table that can hold
every field of its schema, plus the sink's position columns."""

from __future__ import annotations

import re
from typing import Any

from ioc.connectors.sink import default_mappings
from ioc.infra.migrations import discover, migrate
from ioc.schemas.serde import Serde


def test_every_topic_has_a_table_with_every_field(chdb_client: Any, fresh_db: str) -> None:
    for mapping in default_mappings(Serde()):
        rows = chdb_client.query(f"DESCRIBE TABLE {fresh_db}.{mapping.table}").result_rows
        columns = {r[0] for r in rows}
        missing = set(mapping.columns) - columns
        assert not missing, f"{mapping.table} lacks {missing} for {mapping.topic}"
        if mapping.raw:
            assert {"_topic", "_partition", "_offset", "_ingested_at"} <= columns
        timestamps = {r[0]: r[1] for r in rows if "DateTime" in r[1]}
        assert all(t.startswith(("DateTime64(3, 'UTC')", "Nullable(DateTime64(3, 'UTC'))"))
                   for t in timestamps.values()), timestamps


def test_migrating_again_applies_nothing(chdb_client: Any, fresh_db: str) -> None:
    assert migrate(chdb_client, fresh_db) == []
    versions = [r[0] for r in chdb_client.query(
        f"SELECT version FROM {fresh_db}.schema_migrations ORDER BY version").result_rows]
    assert versions == [m.version for m in discover() if not m.server_only]


def test_server_only_migrations_are_skipped_on_the_embedded_store(chdb_client: Any,
                                                                  fresh_db: str) -> None:
    server_only = [m for m in discover() if m.server_only]
    assert [m.name for m in server_only] == ["access_control"]
    tables = {r[0] for r in chdb_client.query(f"SHOW TABLES FROM {fresh_db}").result_rows}
    for stmt in server_only[0].statements(fresh_db):
        assert stmt.startswith(("CREATE ROLE IF NOT EXISTS", "GRANT SELECT ON",
                                "CREATE ROW POLICY IF NOT EXISTS")), stmt
        for table in re.findall(rf"\b{fresh_db}\.(\w+)", stmt):
            assert table in tables, f"{table} of {stmt!r} does not exist"


class RecordingServer:
    """Stands in for a ClickHouse server client: records statements, knows no migrations."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.inserted: list[Any] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str) -> Any:
        return type("Result", (), {"result_rows": []})()

    def insert(self, table: str, rows: list[Any], column_names: list[str]) -> None:
        self.inserted.extend(rows)


def test_server_only_migrations_run_on_a_server() -> None:
    server = RecordingServer()
    applied = migrate(server, "ioc")
    assert [m.name for m in applied] == [m.name for m in discover()]
    assert "CREATE ROLE IF NOT EXISTS ioc_dept_traffic" in server.commands
    assert any(c.startswith("CREATE ROW POLICY IF NOT EXISTS ioc_all_rows ON ioc.alerts")
               for c in server.commands)
