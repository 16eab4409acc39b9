"""Ordered ClickHouse migrations.

Each file in ``infra/clickhouse/migrations`` is ``NNNN_name.sql``; statements are separated by a
semicolon at the end of a line and may use ``{db}`` for the database name. Applied versions are
recorded in ``<db>.schema_migrations``; running again applies only the new files, so ``ioc setup``
is idempotent. Statements use ``IF NOT EXISTS`` so a migration interrupted half-way can be re-run.

A file whose first line is ``-- ioc: server-only`` (access control: roles, grants, row policies)
runs only on a ClickHouse server. The embedded chDB has no users and refuses such statements, so
there the file is skipped and not recorded: the same migrations directory serves both, and a
chDB database simply has no access control (it is reached only by the local processes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def migrate(client: Any, db: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations in order; return the ones applied now."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = MergeTree ORDER BY version"
    )
    rows = client.query(f"SELECT version FROM {db}.schema_migrations").result_rows
    done = {row[0] for row in rows}
    applied = []
    embedded = is_embedded(client)
    for mig in discover(directory):
        if mig.version in done or (embedded and mig.server_only):
            continue
        for stmt in mig.statements(db):
            client.command(stmt)
        client.insert(
            f"{db}.schema_migrations",
            [[mig.version, mig.name, datetime.now(UTC)]],
            column_names=["version", "name", "applied_at"],
        )
        applied.append(mig)
    return applied
