"""Migrations and the data contract agree: every event topic has a raw table that can hold
every field of its schema, plus the sink's position columns."""

from __future__ import annotations

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
    assert versions == [m.version for m in discover()]
