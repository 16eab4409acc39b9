"""Ordered ClickHouse migrations.

Each file in ``infra/clickhouse/migrations`` is ``NNNN_name.sql``; statements are separated by a
semicolon at the end of a line and may use ``{db}`` for the database name. Applied versions are
recorded in ``<db>.schema_migrations``; running again applies only the new files, so ``ioc setup``
is idempotent. Statements use ``IF NOT EXISTS`` so a migration interrupted half-way can be re-run.

A file whose first line is ``-- ioc: server-only`` (access control: roles, grants, row policies)
runs only on a ClickHouse server. The embedded chDB has no users and refuses such statements, so
there the file is skipped and not recorded: the same migrations directory serves both, and a
chDB database simply has no access control (it is reached only by the local processes).

On a ClickHouse cluster (``IOC_CLICKHOUSE_CLUSTER``) the same files run, rewritten statement by
statement by :mod:`ioc.infra.cluster_ddl`: ``ON CLUSTER``, a ``Replicated…MergeTree`` table
``<name>_local`` plus a ``Distributed`` table ``<name>`` for each table, reference tables on
every node. Every migration is rewritten before the first statement runs, so a statement the
rewrite refuses stops ``ioc setup`` with the file, the statement and the reason, and nothing
half-applied. ``schema_migrations`` is then a replicated table on every node, so any node
answers which migrations ran. A database created without a cluster is refused: moving one
server's data into a cluster is a manual operation (docs/operations.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.infra.cluster_ddl import ClusterDDL, ClusterDDLError

MIGRATIONS_DIR = Path(__file__).parent / "clickhouse" / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
SERVER_ONLY = "-- ioc: server-only"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def server_only(self) -> bool:
        with open(self.path, encoding="utf-8") as handle:
            return handle.readline().strip() == SERVER_ONLY

    def statements(self, db: str) -> list[str]:
        text = "\n".join(
            line for line in self.path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("--")
        )
        parts = re.split(r";\s*$", text, flags=re.MULTILINE)
        return [p.strip().replace("{db}", db) for p in parts if p.strip()]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path.name}")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration versions in {directory}")
    return found


def is_embedded(client: Any) -> bool:
    """True for a clickhouse-connect client of the embedded chDB engine."""
    return type(client).__name__.lower().startswith("chdb")


_SCHEMA_MIGRATIONS = ("CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
                      "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
                      "ENGINE = MergeTree ORDER BY version")


def plan(db: str, cluster: str | None = None, directory: Path = MIGRATIONS_DIR
         ) -> tuple[list[str], list[tuple[Migration, list[str]]]]:
    """The statements the runner issues: its own bookkeeping first, then each migration's —
    rewritten for ``cluster`` when one is given. Raises :class:`ClusterDDLError` (file,
    statement, reason) for a statement that cannot be rewritten."""
    if not cluster:
        return ([f"CREATE DATABASE IF NOT EXISTS {db}", _SCHEMA_MIGRATIONS.format(db=db)],
                [(m, m.statements(db)) for m in discover(directory)])
    ddl = ClusterDDL(cluster, db)
    bootstrap = ddl.bootstrap()
    return bootstrap, _rewrite(ddl, db, directory)


def _rewrite(ddl: ClusterDDL, db: str, directory: Path
             ) -> list[tuple[Migration, list[str]]]:
    out = []
    for mig in discover(directory):
        statements: list[str] = []
        for n, stmt in enumerate(mig.statements(db), start=1):
            try:
                statements += ddl.transform(stmt)
            except ClusterDDLError as exc:
                first = stmt.strip().splitlines()[0]
                raise ClusterDDLError(f"{mig.path.name}, statement {n} ({first}): {exc}"
                                      ) from None
        out.append((mig, statements))
    return out


def cluster_ddl(db: str, cluster: str, directory: Path = MIGRATIONS_DIR) -> ClusterDDL:
    """A :class:`ClusterDDL` that knows every table of the migrations: for code that changes
    tables outside the migrations (a TTL, a deletion) on a cluster — ``transform`` turns its
    ``ALTER TABLE {db}.<table> …`` into the statements for ``<table>_local`` ``ON CLUSTER``."""
    ddl = ClusterDDL(cluster, db)
    ddl.bootstrap()
    _rewrite(ddl, db, directory)
    return ddl


def migrate(client: Any, db: str, directory: Path = MIGRATIONS_DIR,
            cluster: str | None = None) -> list[Migration]:
    """Apply pending migrations in order; return the ones applied now. With ``cluster``, on
    that ClickHouse cluster (see the module's docstring)."""
    embedded = is_embedded(client)
    if cluster and embedded:
        raise ClusterDDLError("a ClickHouse cluster needs ClickHouse servers: the embedded chDB "
                              "has no clusters (unset IOC_CLICKHOUSE_CLUSTER or point "
                              "IOC_CLICKHOUSE_URL at a node of the cluster)")
    bootstrap, migrations = plan(db, cluster, directory)
    if cluster:
        _refuse_single_server_database(client, db)
    for stmt in bootstrap:
        client.command(stmt)
    rows = client.query(f"SELECT version FROM {db}.schema_migrations").result_rows
    done = {row[0] for row in rows}
    applied = []
    for mig, statements in migrations:
        if mig.version in done or (embedded and mig.server_only):
            continue
        for stmt in statements:
            client.command(stmt)
        client.insert(
            f"{db}.schema_migrations",
            [[mig.version, mig.name, datetime.now(UTC)]],
            column_names=["version", "name", "applied_at"],
        )
        applied.append(mig)
    return applied


def _refuse_single_server_database(client: Any, db: str) -> None:
    rows = client.query("SELECT engine FROM system.tables WHERE database = {db:String} "
                        "AND name = 'schema_migrations'", parameters={"db": db}).result_rows
    if rows and not str(rows[0][0]).startswith("Replicated"):
        raise ClusterDDLError(
            f"database {db} was set up without a cluster ({db}.schema_migrations is "
            f"{rows[0][0]}): its tables are not replicated or sharded. Moving one server's data "
            "into a cluster is a manual operation (docs/operations.md, Scaling out); or set up "
            "another database name (IOC_CLICKHOUSE_DATABASE).")
