"""How long ClickHouse keeps rows: a TTL per table, from settings, applied by ``ioc setup``.

Settings (``ioc.infra.settings``):

- ``IOC_RETENTION_DAYS`` — the default for every table below except ``kpi`` (default ``0``:
  keep for good);
- ``IOC_RETENTION`` — per-table days, ``table=days,table=days`` (``0`` = keep for good), e.g.
  ``feedback_report=365,dead_letters=30,kpi=3650``.

Which rule wins, for one table: its ``IOC_RETENTION`` entry; else the shorter of its built-in
default (:data:`BUILT_IN`) and ``IOC_RETENTION_DAYS``; else it is kept. Built in are only the
tables that may hold personal data: ``feedback_report`` (citizens' reports with their
pseudonyms and free text) 730 days, ``dead_letters`` (rejected input, for fixing and replay)
90 days. To keep them longer, name them in ``IOC_RETENTION``.

Tables and the time their rows age by (:func:`managed_tables`):

- every raw event table (``traffic_flow``, ``feedback_report``, …): ``occurred_at``, the event
  time — "keep two years of data" means two years of events, whenever they arrived (a backfill
  older than the retention is dropped at the next merge);
- ``dead_letters``: ``failed_at``; ``alerts``: ``updated_at`` (an episode's latest state ages
  from its last change, so a long-firing alert's row is kept while it changes);
  ``alert_events``: ``occurred_at``; ``alert_acks``: ``acked_at``; ``silences``: ``updated_at``;
- ``kpi``: ``window_start``, only when named in ``IOC_RETENTION``. KPIs are aggregates without
  personal data, small (one row per window and key), and what year-on-year comparisons and
  annual targets are measured against, so the general default does not shorten them.
- Reference tables (``ref_*``) and ``schema_migrations`` are never aged.

How: ``ALTER TABLE … MODIFY TTL toDateTime(<column>) + INTERVAL <days> DAY`` (``REMOVE TTL``
when a table goes back to "keep"), only when the table's TTL differs, so ``ioc setup`` stays
idempotent. ClickHouse deletes the rows already expired when the TTL is set (it materialises
it) and later ones during merges: a row past its time may stay visible until the table's next
TTL merge (``merge_with_ttl_timeout``, 4 hours by default); ``OPTIMIZE TABLE … FINAL`` forces
one. A TTL that is not of this shape (set by hand) is left alone and reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ioc.infra.settings import Settings

BUILT_IN: Mapping[str, int] = {"feedback_report": 730, "dead_letters": 90}
DERIVED: Mapping[str, str] = {"dead_letters": "failed_at", "alerts": "updated_at",
                              "alert_events": "occurred_at", "alert_acks": "acked_at",
                              "silences": "updated_at"}
OPT_IN: Mapping[str, str] = {"kpi": "window_start"}
_TTL = re.compile(r"\bTTL (.+?)(?: SETTINGS |$)")
_OURS = re.compile(r"^toDateTime\(`?(\w+)`?\) \+ toIntervalDay\((\d+)\)$")


class RetentionError(ValueError):
    """``IOC_RETENTION`` names a table that has no retention."""


@dataclass(frozen=True)
class Retention:
    table: str
    column: str
    days: int | None     # None: kept for good
    action: str          # "set", "unchanged", "removed", "custom TTL kept"
    expired: int = 0     # rows older than the retention when it was set (deleted)

    def describe(self) -> str:
        keep = f"{self.days} days by {self.column}" if self.days else "kept"
        extra = f", {self.expired} expired rows deleted" if self.expired else ""
        return f"{self.table} {keep} ({self.action}{extra})"


def managed_tables() -> dict[str, str]:
    """Every table that may get a retention → its time column."""
    from ioc.connectors.sink import raw_table
    from ioc.schemas.catalogue import Catalogue

    out = {raw_table(t): "occurred_at" for t in Catalogue().event_topics}
    out.update(DERIVED)
    out.update(OPT_IN)
    return out


def plan(settings: Settings) -> dict[str, int | None]:
    """Days per managed table (None: keep), from the settings (rules in the module doc)."""
    tables = managed_tables()
    unknown = sorted(set(dict(settings.retention)) - set(tables))
    if unknown:
        raise RetentionError(f"IOC_RETENTION names {', '.join(unknown)}, which have no "
                             f"retention; tables: {', '.join(sorted(tables))}")
    explicit = dict(settings.retention)
    out: dict[str, int | None] = {}
    for table in tables:
        if table in explicit:
            days = explicit[table]
        else:
            candidates = [d for d in (BUILT_IN.get(table),
                                      settings.retention_days if table not in OPT_IN else None)
                          if d]
            days = min(candidates) if candidates else 0
        out[table] = days or None
    return out


def current_ttls(client: Any, database: str, cluster: bool = False) -> dict[str, str | None]:
    """Each table's TTL expression; on a cluster, that of its ``<table>_local`` (the
    ``Distributed`` table has none)."""
    rows = client.query("SELECT name, engine_full FROM system.tables WHERE database = "
                        f"'{database}'").result_rows
    out: dict[str, str | None] = {}
    for name, engine in rows:
        name = str(name)
        if cluster:
            if not name.endswith("_local"):
                continue
            name = name.removesuffix("_local")
        m = _TTL.search(str(engine))
        out[name] = m.group(1).strip() if m else None
    return out


def apply(client: Any, settings: Settings) -> list[Retention]:
    """Set every managed table's TTL to what the settings say (idempotent). On a ClickHouse
    cluster the statements go ``ON CLUSTER`` to the ``<table>_local`` tables."""
    db = settings.database
    wanted = plan(settings)
    ddl = None
    if settings.clickhouse_cluster:
        from ioc.infra.migrations import cluster_ddl

        ddl = cluster_ddl(db, settings.clickhouse_cluster)

    class _Commands:
        def command(self, sql: str) -> None:
            for statement in ddl.transform(sql) if ddl else [sql]:
                client.command(statement)

    commands = _Commands()
    current = current_ttls(client, db, cluster=ddl is not None)
    done = []
    for table, column in sorted(managed_tables().items()):
        if table not in current:
            continue  # not created (a migration of a subsystem not installed)
        days, now = wanted[table], current[table]
        ours = _OURS.match(now) if now else None
        if now and not ours:
            done.append(Retention(table, column, None, f"custom TTL kept: {now}"))
            continue
        if days is None:
            if now:
                commands.command(f"ALTER TABLE {db}.`{table}` REMOVE TTL")
            done.append(Retention(table, column, None, "removed" if now else "unchanged"))
            continue
        if ours and ours.group(1) == column and int(ours.group(2)) == days:
            done.append(Retention(table, column, days, "unchanged"))
            continue
        expired = int(client.query(
            f"SELECT count() FROM {db}.`{table}` WHERE `{column}` < now() - INTERVAL {days} DAY"
        ).result_rows[0][0])
        commands.command(f"ALTER TABLE {db}.`{table}` MODIFY TTL toDateTime(`{column}`) + "
                       f"INTERVAL {days} DAY SETTINGS mutations_sync = 2")
        done.append(Retention(table, column, days, "set", expired))
    return done


def summary(done: list[Retention]) -> str:
    """One line for ``ioc setup``: what is aged and what changed."""
    aged = [r for r in done if r.days]
    changed = [r for r in done if r.action != "unchanged"]
    parts = [r.describe() for r in aged] or ["every table kept for good"]
    parts += [r.describe() for r in changed if not r.days]
    return (f"retention ({len(changed)} changed): " + "; ".join(parts))
