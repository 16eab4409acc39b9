"""The migrations rewritten for a ClickHouse cluster (``IOC_CLICKHOUSE_CLUSTER``).

No ClickHouse cluster runs here (no Keeper, no second server; chDB refuses ON CLUSTER and
Replicated engines). What is proved: every shipped statement is rewritten, into the expected
replicated/distributed pair with the expected sharding keys; every rewritten statement parses
as ClickHouse SQL (``formatQuery`` of chDB 4.x, ClickHouse 26.9); every sharding key is an
integer expression over the real tables' columns; what cannot be rewritten is refused before
anything runs; the runner issues the rewritten statements in order; the sink's cluster insert
settings are real settings and a retried batch is still deduplicated by its token.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from ioc.connectors.sink import Batch, ClickHouseSink, TableMapping, default_mappings
from ioc.infra.cluster_ddl import (
    SHARD_BY,
    ClusterDDL,
    ClusterDDLError,
    cluster_insert_settings,
    placement,
)
from ioc.infra.metrics import Metrics
from ioc.infra.migrations import cluster_ddl, discover, migrate, plan
from ioc.infra.settings import Settings, SettingsError
from ioc.schemas.serde import Serde

CLUSTER = "ioc_cluster"
ON = f"ON CLUSTER '{CLUSTER}'"


def transformed() -> tuple[ClusterDDL, list[tuple[str, str, list[str]]]]:
    """(file, statement, rewritten statements) for every shipped statement."""
    ddl = ClusterDDL(CLUSTER, "ioc")
    out = [(m.path.name, s, ddl.transform(s)) for m in discover() for s in m.statements("ioc")]
    return ddl, out


def test_every_shipped_statement_runs_on_the_cluster() -> None:
    ddl, rows = transformed()
    assert len(rows) > 60
    created = 0
    for name, stmt, out in rows:
        assert out, f"{name}: {stmt[:60]} gave nothing"
        for sql in out:
            assert sql.count(ON) == 1, f"{name}: {sql[:120]}"
            assert "non_replicated" not in sql
            engines = re.findall(r"ENGINE = (\w+)", sql)
            assert all(e.startswith("Replicated") or e == "Distributed" for e in engines), sql
        if stmt.startswith("CREATE TABLE"):
            created += 1
            table = stmt.split()[5].removeprefix("ioc.")
            assert len(out) == (2 if placement(table) == "sharded" else 1), table
    assert created == len(ddl.tables) == 32
    # Every table the sink writes (raw events, kpi, alerts, dead letters, notifications) is
    # sharded and keeps insert deduplication; every reference table is on every node.
    for mapping in default_mappings(Serde()):
        assert ddl.tables[mapping.table].placement == "sharded", mapping.table
    assert {t for t, p in ddl.tables.items() if p.placement == "everywhere"} == \
        {t for t in ddl.tables if t.startswith("ref_")}


def test_a_table_becomes_a_replicated_local_table_and_a_distributed_table() -> None:
    ddl = ClusterDDL(CLUSTER, "ioc")
    [kpi] = [s for s in discover()[0].statements("ioc") if s.startswith(
        "CREATE TABLE IF NOT EXISTS ioc.kpi\n")]
    local, distributed = ddl.transform(kpi)
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS ioc.kpi_local {ON}\n(\n    kpi ")
    assert ("\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/kpi', "
            "'{replica}', computed_at)\nPARTITION BY toYYYYMM(window_start)\n"
            "ORDER BY (kpi, `window`, area_code, entity, window_start)\n"
            "SETTINGS replicated_deduplication_window = 1000") in local
    # the columns are the single-server table's, verbatim
    assert kpi[kpi.index("(") + 1:kpi.index("\n)")] in local
    assert distributed == (
        f"CREATE TABLE IF NOT EXISTS ioc.kpi {ON} AS ioc.kpi_local\n"
        f"ENGINE = Distributed('{CLUSTER}', 'ioc', 'kpi_local', "
        "cityHash64(kpi, `window`, area_code, entity))")


def test_sharding_keys_keep_rows_of_one_order_by_key_on_one_shard(chdb_client: Any,
                                                                   fresh_db: str) -> None:
    ddl, _ = transformed()
    keys = {t: p.sharding_key for t, p in ddl.tables.items() if p.placement == "sharded"}
    assert keys["kpi"] == "cityHash64(kpi, `window`, area_code, entity)"   # a KPI series
    assert keys["alerts"] == keys["alert_acks"] == "cityHash64(alert_id)"  # an alert's episodes
    assert keys["dead_letters"] == "cityHash64(topic, `partition`, `offset`)"
    for mapping in default_mappings(Serde()):
        if mapping.raw:
            assert keys[mapping.table] == "cityHash64(event_id)", mapping.table
    for table, key in keys.items():
        plan_ = ddl.tables[table]
        n = SHARD_BY.get(table, len(plan_.order_by))
        # a function of a prefix of the ORDER BY key: same key, same hash, same shard
        assert key == f"cityHash64({', '.join(plan_.order_by[:n])})"
        # and an integer expression over the table's real columns (Distributed requires it)
        [(name, type_, *_)] = chdb_client.query(
            f"DESCRIBE (SELECT {key} AS shard_key FROM {fresh_db}.{table})").result_rows
        assert (name, type_) == ("shard_key", "UInt64"), table


def test_reference_tables_get_a_copy_on_every_node() -> None:
    _, rows = transformed()
    [out] = [o for _, s, o in rows if s.startswith("CREATE TABLE IF NOT EXISTS ioc.ref_areas")]
    [local] = out
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS ioc.ref_areas {ON}\n")
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/{database}/ref_areas', "
            "'{shard}-{replica}', loaded_at)\nORDER BY code\n"
            "SETTINGS replicated_deduplication_window = 0") in local
    # 0009's ALTER goes once to the replicated table
    alters = [o for name, _, o in rows if name == "0009_overview.sql"]
    assert alters == [[f"ALTER TABLE ioc.ref_areas {ON}\n    ADD COLUMN IF NOT EXISTS lat "
                       "Nullable(Float64) AFTER valid_from"],
                      [f"ALTER TABLE ioc.ref_areas {ON}\n    ADD COLUMN IF NOT EXISTS lon "
                       "Nullable(Float64) AFTER lat"]]


def test_views_and_access_control_run_on_the_cluster() -> None:
    _, rows = transformed()
    views = [(s, o) for _, s, o in rows if s.startswith("CREATE OR REPLACE VIEW")]
    assert len(views) == 8
    for stmt, [out] in views:
        name = stmt.split()[4]
        assert out == stmt.replace(f"VIEW {name} AS", f"VIEW {name} {ON} AS", 1)
    access = {s: o for name, s, o in rows if name == "0011_access_control.sql"}
    assert access["CREATE ROLE IF NOT EXISTS ioc_dept_traffic"] == \
        [f"CREATE ROLE IF NOT EXISTS ioc_dept_traffic {ON}"]
    grant = "GRANT SELECT ON ioc.traffic_flow TO ioc_dept_traffic"
    assert access[grant] == [f"GRANT {ON} SELECT ON ioc.traffic_flow TO ioc_dept_traffic",
                             f"GRANT {ON} SELECT ON ioc.traffic_flow_local TO ioc_dept_traffic"]
    assert access["GRANT SELECT ON ioc.ref_gov_systems TO ioc_dept_cyber"] == \
        [f"GRANT {ON} SELECT ON ioc.ref_gov_systems TO ioc_dept_cyber"]
    policy = ("CREATE ROW POLICY IF NOT EXISTS ioc_dept_traffic ON ioc.kpi\n"
              "    FOR SELECT USING startsWith(kpi, 'traffic.') TO ioc_dept_traffic")
    assert access[policy] == [
        policy.replace("ioc_dept_traffic ON ioc.kpi", f"ioc_dept_traffic {ON} ON ioc.kpi"),
        policy.replace("ioc_dept_traffic ON ioc.kpi", f"ioc_dept_traffic {ON} ON ioc.kpi_local")]


def test_alters_reach_the_local_table_and_column_changes_the_distributed_one_too() -> None:
    ddl, _ = transformed()
    assert ddl.transform("ALTER TABLE ioc.kpi ADD COLUMN IF NOT EXISTS unit String") == [
        f"ALTER TABLE ioc.kpi_local {ON}\n    ADD COLUMN IF NOT EXISTS unit String",
        f"ALTER TABLE ioc.kpi {ON}\n    ADD COLUMN IF NOT EXISTS unit String"]
    assert ddl.transform("ALTER TABLE ioc.traffic_flow MODIFY TTL toDateTime(occurred_at) + "
                         "INTERVAL 30 DAY, DROP COLUMN occupancy") == [
        f"ALTER TABLE ioc.traffic_flow_local {ON}\n    MODIFY TTL toDateTime(occurred_at) + "
        "INTERVAL 30 DAY,\n    DROP COLUMN occupancy",
        f"ALTER TABLE ioc.traffic_flow {ON}\n    DROP COLUMN occupancy"]
    assert ddl.transform("ALTER TABLE ioc.feedback_report DELETE WHERE reporter_pseudonym = 'x'"
                         ) == [f"ALTER TABLE ioc.feedback_report_local {ON}\n    DELETE WHERE "
                               "reporter_pseudonym = 'x'"]
    assert ddl.transform("TRUNCATE TABLE IF EXISTS ioc.ref_areas") == \
        [f"TRUNCATE TABLE IF EXISTS ioc.ref_areas {ON}"]
    assert ddl.transform("OPTIMIZE TABLE ioc.kpi FINAL") == \
        [f"OPTIMIZE TABLE ioc.kpi_local {ON} FINAL"]
    assert ddl.transform("DROP TABLE IF EXISTS ioc.silences") == \
        [f"DROP TABLE IF EXISTS ioc.silences {ON}", f"DROP TABLE IF EXISTS ioc.silences_local {ON}"]
    assert ddl.transform("INSERT INTO ioc.kpi (kpi) VALUES ('x')") == \
        ["INSERT INTO ioc.kpi (kpi) VALUES ('x')"]


@pytest.mark.parametrize(("sql", "message"), [
    ("CREATE TABLE IF NOT EXISTS ioc.buffer (a String) ENGINE = Log",
     "buffer: engine Log cannot be turned into a replicated, sharded table"),
    ("CREATE TABLE ioc.q (a String) ENGINE = Kafka('k:9092', 't', 'g', 'JSONEachRow')",
     "q: engine Kafka cannot"),
    ("CREATE TABLE ioc.r (a String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a",
     "already replicated"),
    ("CREATE TABLE ioc.n (a String) ENGINE = MergeTree ORDER BY tuple()",
     "ORDER BY tuple\\(\\) has no key to shard by"),
    ("CREATE TABLE ioc.s AS SELECT 1", "without a column list"),
    ("CREATE MATERIALIZED VIEW ioc.mv TO ioc.kpi AS SELECT * FROM ioc.kpi",
     "CREATE MATERIALIZED VIEW: not handled"),
    ("CREATE TABLE ioc.c ON CLUSTER x (a String) ENGINE = MergeTree ORDER BY a",
     "already says ON CLUSTER"),
    ("ALTER TABLE ioc.elsewhere ADD COLUMN b String", "elsewhere: the table was not created"),
    ("ALTER TABLE ioc.kpi MODIFY QUERY SELECT 1", "operation MODIFY QUERY is not handled"),
    ("RENAME TABLE ioc.kpi TO ioc.kpi2", "RENAME statements are not handled"),
    ("CREATE TABLE ioc.t (a String) ENGINE = MergeTree ORDER BY a "
     "SETTINGS replicated_deduplication_window = 5", "write non_replicated_deduplication_window"),
])
def test_what_cannot_be_rewritten_is_refused_clearly(sql: str, message: str) -> None:
    ddl, _ = transformed()
    with pytest.raises(ClusterDDLError, match=message):
        ddl.transform(sql)


def test_a_refused_statement_stops_the_runner_before_anything_runs(tmp_path: Path) -> None:
    for mig in discover():
        (tmp_path / mig.path.name).write_text(mig.path.read_text(encoding="utf-8"))
    (tmp_path / "0012_queue.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {db}.ok (a String) ENGINE = MergeTree ORDER BY a;\n\n"
        "CREATE TABLE IF NOT EXISTS {db}.queue (a String) ENGINE = Memory;\n")
    server = RecordingServer()
    with pytest.raises(ClusterDDLError, match=r"^0012_queue.sql, statement 2 \(CREATE TABLE IF "
                       r"NOT EXISTS ioc.queue .*engine Memory cannot"):
        migrate(server, "ioc", tmp_path, cluster=CLUSTER)
    assert server.commands == [] and server.inserted == []


class RecordingServer:
    """Stands in for a ClickHouse server: records statements; ``engine`` is what
    ``system.tables`` says ``schema_migrations`` is (None: it does not exist)."""

    def __init__(self, engine: str | None = None) -> None:
        self.engine = engine
        self.commands: list[str] = []
        self.inserted: list[tuple[str, list[Any]]] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        rows = [[self.engine]] if "system.tables" in sql and self.engine else []
        return type("Result", (), {"result_rows": rows})()

    def insert(self, table: str, rows: list[Any], column_names: list[str]) -> None:
        self.inserted.append((table, rows))


def test_the_runner_applies_every_migration_on_the_cluster() -> None:
    server = RecordingServer()
    applied = migrate(server, "ioc", cluster=CLUSTER)
    assert [m.name for m in applied] == [m.name for m in discover()]   # 0011 too: a server
    _, planned = plan("ioc", CLUSTER)
    assert server.commands[:2] == [
        f"CREATE DATABASE IF NOT EXISTS ioc {ON}",
        f"CREATE TABLE IF NOT EXISTS ioc.schema_migrations {ON}\n(\nversion UInt32, name String, "
        "applied_at DateTime64(3, 'UTC')\n)\nENGINE = ReplicatedMergeTree('/clickhouse/tables/all/"
        "{database}/schema_migrations', '{shard}-{replica}')\nORDER BY version\n"
        "SETTINGS replicated_deduplication_window = 0"]
    assert server.commands[2:] == [s for _, statements in planned for s in statements]
    assert all(ON in c for c in server.commands)
    assert [t for t, _ in server.inserted] == ["ioc.schema_migrations"] * len(applied)


def test_the_runner_refuses_a_single_server_database_and_the_embedded_store(
        chdb_client: Any) -> None:
    server = RecordingServer(engine="MergeTree")
    with pytest.raises(ClusterDDLError, match="set up without a cluster"):
        migrate(server, "ioc", cluster=CLUSTER)
    assert server.commands == []
    with pytest.raises(ClusterDDLError, match="embedded chDB has no clusters"):
        migrate(chdb_client, f"c_{uuid.uuid4().hex[:8]}", cluster=CLUSTER)


def test_every_rewritten_statement_is_valid_clickhouse_sql(chdb_client: Any) -> None:
    """chDB parses each statement (``formatQuery``: the server's own parser) and formats it
    back with the cluster, the engines and the sharding keys in place."""
    ddl, rows = transformed()
    statements = ddl.bootstrap() + [sql for _, _, out in rows for sql in out]
    assert len(statements) == 99
    engines = 0
    for sql in statements:
        [(formatted,)] = chdb_client.query("SELECT formatQuery({q:String})",
                                           parameters={"q": sql}).result_rows
        assert f"ON CLUSTER {CLUSTER}" in formatted, formatted[:200]
        for engine in re.findall(r"ENGINE = (\w+\(.*?\))\n", sql + "\n"):
            assert engine.replace("`", "") in formatted.replace("`", ""), (engine, formatted)
            engines += 1
    assert engines == sum(2 if p.placement == "sharded" else 1 for p in ddl.tables.values())
    with pytest.raises(Exception, match="SYNTAX_ERROR"):   # the check can fail
        chdb_client.query("SELECT formatQuery({q:String})",
                          parameters={"q": "CREATE TABLE t ON CLUSTER c ENGINE = ("})


def test_sink_inserts_carry_the_cluster_settings_and_stay_idempotent(chdb_client: Any,
                                                                    fresh_db: str) -> None:
    """On a cluster the sink adds a foreground Distributed insert with deduplication on. chDB
    has no Distributed tables, but it knows the settings, and the sink's insert with them and
    its dedup token still drops a retried batch (the same token a shard would see)."""
    settings = cluster_insert_settings(CLUSTER)
    assert settings == {"distributed_foreground_insert": 1, "insert_deduplicate": 1}
    assert cluster_insert_settings(None) == {}
    known = {r[0] for r in chdb_client.query(
        "SELECT name FROM system.settings WHERE name IN ({names:Array(String)})",
        parameters={"names": [*settings, "insert_deduplication_token",
                              "distributed_product_mode"]}).result_rows}
    assert known == {*settings, "insert_deduplication_token", "distributed_product_mode"}

    calls: list[dict[str, Any]] = []

    class Spy:
        def insert(self, table: str, rows: list[Any], column_names: list[str],
                   settings: dict[str, Any]) -> None:
            calls.append(settings)
            chdb_client.insert(table, rows, column_names=column_names, settings=settings)

    sink = ClickHouseSink(Spy(), fresh_db, Metrics(CollectorRegistry()), insert_settings=settings)
    mapping = TableMapping("ioc.dlq.v1", "dead_letters",
                           ["topic", "partition", "offset", "payload", "reason", "failed_at"],
                           raw=False)
    batch = Batch(mapping, partition=0)
    for offset in (10, 11):
        batch.add(["t", 0, offset, "x", "bad", datetime(2026, 1, 1, tzinfo=UTC)], offset)
    sink.write(batch)
    sink.write(batch)   # a retry of the same batch
    assert calls == [{**settings, "insert_deduplication_token": "ioc.dlq.v1:0:10-11"}] * 2
    assert chdb_client.query(f"SELECT count() FROM {fresh_db}.dead_letters").result_rows == [(2,)]


def test_the_cluster_setting_needs_a_server_and_a_plain_name() -> None:
    env = {"IOC_CLICKHOUSE_CLUSTER": "ioc", "IOC_CLICKHOUSE_URL": "http://ioc_writer@ch:8123"}
    assert Settings.from_env(env).clickhouse_cluster == "ioc"
    assert Settings.from_env({}).clickhouse_cluster is None
    with pytest.raises(SettingsError, match="IOC_CLICKHOUSE_CLUSTER needs a ClickHouse server"):
        Settings.from_env({"IOC_CLICKHOUSE_CLUSTER": "ioc"})
    with pytest.raises(SettingsError, match="IOC_CLICKHOUSE_CLUSTER"):
        Settings.from_env({**env, "IOC_CLICKHOUSE_CLUSTER": "ioc' OR 1"})


def test_code_outside_the_migrations_gets_the_cluster_statements_too() -> None:
    """Retention (MODIFY TTL) and deletions (ALTER … DELETE) run from code, not migrations:
    :func:`cluster_ddl` knows every migrated table, and comments do not confuse it."""
    ddl = cluster_ddl("ioc", CLUSTER)
    assert ddl.transform("ALTER TABLE ioc.feedback_report -- a person's reports\n"
                         "    DELETE WHERE reporter_pseudonym = 'p' SETTINGS mutations_sync = 2"
                         ) == [f"ALTER TABLE ioc.feedback_report_local {ON}\n    DELETE WHERE "
                               "reporter_pseudonym = 'p' SETTINGS mutations_sync = 2"]
    assert ddl.transform("ALTER TABLE ioc.ref_schools REMOVE TTL") == \
        [f"ALTER TABLE ioc.ref_schools {ON}\n    REMOVE TTL"]


def test_setup_prints_the_cluster_statements_for_review() -> None:
    ioc = str(Path(sys.executable).parent / "ioc")
    env = {**os.environ, "IOC_CLICKHOUSE_CLUSTER": CLUSTER,
           "IOC_CLICKHOUSE_URL": "http://ioc_admin@clickhouse.invalid:8123"}
    done = subprocess.run([ioc, "setup", "--print-ddl"], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    _, planned = plan("ioc", CLUSTER)
    for _, statements in planned:
        for sql in statements:
            assert f"{sql};\n" in done.stdout
    assert "-- 0011_access_control.sql (server only: skipped on chDB)" in done.stdout
    env.pop("IOC_CLICKHOUSE_URL")
    refused = subprocess.run([ioc, "setup", "--print-ddl"], capture_output=True, text=True,
                             env=env, timeout=60, check=False)
    assert refused.returncode == 2 and "IOC_CLICKHOUSE_URL" in refused.stderr
