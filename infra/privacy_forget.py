"""Deleting one person's data by pseudonym, everywhere ClickHouse holds it (``ioc privacy
forget``).

A citizen who asks for their data to be deleted gives their phone number or name; with the
deployment's key (``IOC_PSEUDONYM_KEY`` or ``$IOC_DATA_DIR/pseudonym.key``) these give the
pseudonym(s) their reports carry (:func:`ioc.connectors.privacy.pseudonymize`). :func:`forget`
then deletes, in the database:

1. the person's **reports**: every row of a table with a ``reporter_pseudonym`` column that
   carries one of the pseudonyms, and — since only the ``submitted`` step of a report usually
   carries it — every row of any table with a ``report_id`` column whose report id is one of
   those reports' (all their lifecycle steps: assigned, resolved, …);
2. their **dead letters**: rows of ``dead_letters`` from a personal-data topic whose payload
   (read as text, JSON or Avro) holds one of the pseudonyms or report ids;
3. the **alerts about their reports** (``feedback.overdue``, whose entity is the report id):
   every row with such an ``alert_id`` in ``alerts``, ``alert_events`` (the notifier's
   history) and ``alert_acks``.

KPIs (``kpi``) are aggregates — counts, rates, hours per area, category or agency — and are
not changed: they hold nothing about a person, and a deletion must not rewrite the province's
statistics. Screens that list reports or alerts (overdue reports, alert history) lose the
person's rows.

Rows are deleted with ``ALTER TABLE … DELETE … SETTINGS mutations_sync = 2``: the parts holding
them are rewritten before the command returns, so the data is gone from disk too, not only
hidden (a lightweight ``DELETE FROM`` only masks rows until the next merge). ``dry_run``
counts without deleting.

The same function runs in two places: directly on the store when the platform is stopped (or
on a ClickHouse server), and inside the running platform's sink process through the query
server's admin endpoint (:mod:`ioc.connectors.query_server`), since the embedded store belongs
to that process. What stays in Kafka, and for how long, is in ``docs/privacy.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ioc.connectors.privacy import PERSONAL_TOPICS, is_pseudonym
from ioc.schemas.serde import DecodeError, Serde
from ioc.streams.feedback import OVERDUE_RULE

ALERT_RULES_BY_REPORT = (OVERDUE_RULE,)
"""Alert rules whose ``entity`` is a report id (the alerts about one person's report)."""


class Sql(Protocol):
    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str) -> None: ...


class ConnectSql:
    """:class:`Sql` over a clickhouse-connect client (embedded or server). On a ClickHouse
    cluster (``cluster``: :func:`ioc.infra.migrations.cluster_ddl`) deletions go ``ON CLUSTER``
    to every shard's ``<table>_local``; reads go through the ``Distributed`` tables."""

    def __init__(self, client: Any, cluster: Any = None) -> None:
        self.client = client
        self.cluster = cluster

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.client.query(sql).result_rows]

    def run(self, sql: str) -> None:
        for statement in self.cluster.transform(sql) if self.cluster else [sql]:
            self.client.command(statement)

    def table(self, name: str) -> str:
        """The name readers use for a table found in ``system.tables``."""
        return name.removesuffix("_local") if self.cluster else name


class ChdbSql:
    """:class:`Sql` over a raw chDB connection (the query server's engine)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        out = bytes(self.conn.query(sql, "JSONCompact").bytes() or b"")
        return [tuple(r) for r in json.loads(out)["data"]] if out else []

    def run(self, sql: str) -> None:
        self.conn.query(sql, "TabSeparated")


@dataclass
class ForgetResult:
    pseudonyms: list[str]
    dry_run: bool
    report_ids: list[str] = field(default_factory=list)
    alert_ids: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)  # table → rows (to delete, if dry)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForgetResult:
        return cls(list(data["pseudonyms"]), bool(data["dry_run"]), list(data["report_ids"]),
                   list(data["alert_ids"]), {str(k): int(v) for k, v in data["deleted"].items()})


def _lit(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(_lit(v) for v in sorted(set(values))) + ")"


def _columns(sql: Sql, db: str) -> dict[str, set[str]]:
    rows = sql.rows(
        "SELECT c.table, c.name FROM system.columns AS c INNER JOIN system.tables AS t "
        f"ON t.database = c.database AND t.name = c.table WHERE c.database = {_lit(db)} "
        "AND t.engine LIKE '%MergeTree%'")
    out: dict[str, set[str]] = {}
    named = getattr(sql, "table", str)
    for table, name in rows:
        out.setdefault(named(str(table)), set()).add(str(name))
    return out


def _dead_letter_matches(payload: bytes, topic: str, pseudonyms: set[str], reports: set[str],
                         serde: Serde) -> bool:
    text = payload.decode("utf-8", "replace")
    if any(p in text for p in pseudonyms):
        return True
    record: Any = None
    try:
        record = serde.decode(topic, payload, check=False)
    except DecodeError:
        try:
            record = json.loads(text)
        except ValueError:
            record = None
    return isinstance(record, dict) and (str(record.get("report_id") or "") in reports
                                         or str(record.get("reporter_pseudonym") or "")
                                         in pseudonyms)


def forget(sql: Sql, database: str, pseudonyms: Sequence[str], dry_run: bool = False,
           serde: Serde | None = None) -> ForgetResult:
    """Delete (or with ``dry_run`` count) everything of the people with these pseudonyms."""
    wanted = sorted({p.strip() for p in pseudonyms if p.strip()})
    bad = [p for p in wanted if not is_pseudonym(p)]
    if bad or not wanted:
        raise ValueError("a pseudonym is 16 lowercase hex digits (as in reporter_pseudonym); "
                         f"got {', '.join(repr(b) for b in bad) or 'none'}")
    serde = serde or Serde()
    db = f"`{database}`"
    result = ForgetResult(wanted, dry_run)
    tables = _columns(sql, database)
    ids: set[str] = set()
    for table, cols in sorted(tables.items()):
        if {"reporter_pseudonym", "report_id"} <= cols:
            ids.update(str(r[0]) for r in sql.rows(
                f"SELECT DISTINCT report_id FROM {db}.`{table}` "
                f"WHERE reporter_pseudonym IN {_in(wanted)}"))
    ids.discard("")
    result.report_ids = sorted(ids)
    conditions: dict[str, str] = {}
    for table, cols in tables.items():
        parts = []
        if "reporter_pseudonym" in cols:
            parts.append(f"reporter_pseudonym IN {_in(wanted)}")
        if "report_id" in cols and ids:
            parts.append(f"report_id IN {_in(ids)}")
        if parts:
            conditions[table] = " OR ".join(parts)
    if {"topic", "partition", "offset", "payload"} <= tables.get("dead_letters", set()):
        letters = []
        for topic, part, offset, payload_hex in sql.rows(
                f"SELECT topic, `partition`, `offset`, hex(payload) FROM {db}.dead_letters "
                f"WHERE topic IN {_in(PERSONAL_TOPICS)}"):
            if _dead_letter_matches(bytes.fromhex(str(payload_hex)), str(topic), set(wanted),
                                    ids, serde):
                letters.append(f"({_lit(str(topic))}, {int(part)}, {int(offset)})")
        if letters:
            conditions["dead_letters"] = (f"(topic, `partition`, `offset`) IN "
                                          f"({', '.join(sorted(set(letters)))})")
    alert_ids: set[str] = set()
    if ids:
        for table, cols in sorted(tables.items()):
            if {"alert_id", "rule", "entity"} <= cols:
                alert_ids.update(str(r[0]) for r in sql.rows(
                    f"SELECT DISTINCT alert_id FROM {db}.`{table}` WHERE rule IN "
                    f"{_in(ALERT_RULES_BY_REPORT)} AND entity IN {_in(ids)}"))
    result.alert_ids = sorted(alert_ids)
    if alert_ids:
        for table, cols in tables.items():
            if "alert_id" in cols:
                conditions[table] = f"alert_id IN {_in(alert_ids)}"
    for table, cond in sorted(conditions.items()):
        n = int(sql.rows(f"SELECT count() FROM {db}.`{table}` WHERE {cond}")[0][0])
        if not n:
            continue
        result.deleted[table] = n
        if not dry_run:
            sql.run(f"ALTER TABLE {db}.`{table}` DELETE WHERE {cond} "
                    "SETTINGS mutations_sync = 2")
    return result


def tombstone_alerts(settings: Any, alert_ids: Sequence[str]) -> int:
    """Tombstones (null values) for these alerts on the compacted alert and ack topics, so the
    log cleaner removes their records (those topics are never deleted by time). Returns how
    many were written."""
    if not alert_ids:
        return 0
    from ioc.connectors.producer import make_producer

    producer = make_producer(settings.bootstrap, **settings.kafka_security)
    for topic in ("ioc.alert.v1", "ioc.alert_ack.v1"):
        for alert_id in alert_ids:
            producer.produce(settings.topic(topic), key=alert_id.encode(), value=None)
    if producer.flush(30):
        raise RuntimeError("Kafka did not confirm the alert tombstones in 30 s")
    return 2 * len(alert_ids)
