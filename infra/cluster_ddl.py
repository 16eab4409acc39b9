"""The migrations, rewritten for a ClickHouse cluster (``IOC_CLICKHOUSE_CLUSTER``).

The migrations in ``infra/clickhouse/migrations`` are written once, for one server. When a
cluster name is set, the runner (:mod:`ioc.infra.migrations`) passes every statement through
:meth:`ClusterDDL.transform`, which parses it and returns the statements to run on the cluster.
There is no second copy of any migration. Every statement runs ``ON CLUSTER '<name>'`` (the
distributed DDL queue: every node runs it, in order). Per kind of statement:

- ``CREATE TABLE … ENGINE = <X>MergeTree(args)`` becomes the standard pair:

  * ``<table>_local`` with ``Replicated<X>MergeTree('/clickhouse/tables/{shard}/{database}/
    <table>', '{replica}', args)`` — the data, replicated inside each shard through ClickHouse
    Keeper — with the same columns, indexes, PARTITION BY, ORDER BY and settings;
  * ``<table>`` itself: ``Distributed('<cluster>', '<db>', '<table>_local', <sharding key>)``,
    so every reader (dashboards, views, sink, query server, briefings, analysts) keeps the
    table names it has always used. ``FINAL`` on it runs per shard.

  The **sharding key** is ``cityHash64`` of a prefix of the ORDER BY key (:data:`SHARD_BY`), so
  rows that ``ReplacingMergeTree`` must collapse — same ORDER BY key — always land on the same
  shard, where ``FINAL`` and background merges see them together. Raw event tables: the
  ``event_id``; ``kpi``: the series ``(kpi, window, area_code, entity)`` — every window of a
  series on one shard, so the per-series questions (latest value, ``argMax`` over windows,
  ``GROUP BY`` the series) are answered inside one shard (and
  ``optimize_distributed_group_by_sharding_key`` can skip the merge step), while the many
  series spread the load; ``alerts`` and ``alert_acks``: the ``alert_id`` — every episode of
  an alert and its acknowledgements together; any other table: its whole ORDER BY key.

- **Reference tables** (``ref_*``) and the runner's ``schema_migrations`` are not sharded: they
  are small, every view and dashboard joins them, and the reference loader replaces their
  content with ``TRUNCATE`` + ``INSERT``. They become one ``Replicated…MergeTree`` table under
  their own name with a copy on **every node** (Keeper path ``/clickhouse/tables/all/…``,
  replica ``{shard}-{replica}``): a join against them is local on each shard, and ``TRUNCATE``
  on a replicated table empties every copy (on a ``Distributed`` table it would leave the
  shards' rows in place).

- Settings: ``non_replicated_deduplication_window = N`` becomes
  ``replicated_deduplication_window = N``; a table without it gets
  ``replicated_deduplication_window = 0`` — the same insert deduplication as on one server
  (none), so a reload of identical reference rows after ``TRUNCATE`` is never dropped as a
  "duplicate" block.

- ``CREATE [OR REPLACE] VIEW``: ``ON CLUSTER``. ``ALTER TABLE``: ``ON CLUSTER``; on a sharded
  table every operation goes to ``<table>_local`` and the column operations (ADD, DROP,
  MODIFY, RENAME, COMMENT COLUMN) also to the ``Distributed`` table, whose columns must follow.
  ``TRUNCATE``, ``OPTIMIZE`` and ``DELETE FROM`` on a sharded table go to ``<table>_local``.
  ``DROP TABLE`` drops both.
- Access control (``CREATE ROLE``/``USER``/``SETTINGS PROFILE``/``QUOTA``, ``GRANT``,
  ``REVOKE``, ``CREATE ROW POLICY``): ``ON CLUSTER``, and a grant or row policy on a sharded
  table is repeated for ``<table>_local``. A query on a ``Distributed`` table runs on the shards
  as the initial user when the cluster has an interserver ``<secret>`` (the deployment files
  set one): the user then needs ``SELECT`` on ``<table>_local`` there, and the department's row
  policy on ``<table>_local`` is what filters its rows.
- ``INSERT`` runs unchanged (through the ``Distributed`` table).

Anything else — a ``MATERIALIZED VIEW``, an engine outside the ``*MergeTree`` family, a table
already ``Replicated…``, a statement that already says ``ON CLUSTER``, an ``ALTER`` operation
not listed above — is refused with a :class:`ClusterDDLError` naming the statement and the
reason, before anything runs: the runner transforms every migration before applying any.

Readers of a cluster need ``distributed_product_mode = 'global'`` (the deployment's users
profile sets it): several dashboards join two sharded tables (alerts with their
acknowledgements, overdue feedback alerts with the reports), which ClickHouse otherwise refuses
("double-distributed IN/JOIN subqueries"); with ``global`` the right side is computed once and
sent to every shard, the same answer as on one server. Writers: see
:func:`cluster_insert_settings`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_.{}-]+$")
"""A cluster name as ``remote_servers`` spells it (a ``{macro}`` is allowed)."""

MERGE_TREE_ENGINES = ("MergeTree", "ReplacingMergeTree", "SummingMergeTree",
                      "AggregatingMergeTree", "CollapsingMergeTree",
                      "VersionedCollapsingMergeTree", "GraphiteMergeTree", "CoalescingMergeTree")

SHARD_BY: dict[str, int] = {"kpi": 4, "alerts": 1, "alert_acks": 1}
"""Tables sharded by the first N columns of their ORDER BY key (default: all of them)."""

EVERYWHERE_PREFIXES = ("ref_",)
EVERYWHERE_TABLES = ("schema_migrations",)
LOCAL_SUFFIX = "_local"

SHARDED_PATH = "/clickhouse/tables/{shard}/{database}/"
EVERYWHERE_PATH = "/clickhouse/tables/all/{database}/"
EVERYWHERE_REPLICA = "{shard}-{replica}"

_COLUMN_OPS = {("ADD", "COLUMN"), ("DROP", "COLUMN"), ("MODIFY", "COLUMN"), ("RENAME", "COLUMN"),
               ("COMMENT", "COLUMN")}
_LOCAL_OPS = {("ADD", "INDEX"), ("DROP", "INDEX"), ("MATERIALIZE", "INDEX"), ("CLEAR", "INDEX"),
              ("ADD", "PROJECTION"), ("DROP", "PROJECTION"), ("MATERIALIZE", "PROJECTION"),
              ("CLEAR", "PROJECTION"), ("ADD", "CONSTRAINT"), ("DROP", "CONSTRAINT"),
              ("MODIFY", "TTL"), ("REMOVE", "TTL"), ("MATERIALIZE", "TTL"),
              ("MATERIALIZE", "COLUMN"), ("CLEAR", "COLUMN"), ("MODIFY", "SETTING"),
              ("RESET", "SETTING"), ("MODIFY", "ORDER"), ("DELETE", "WHERE"),
              ("UPDATE", ""), ("DROP", "PARTITION"), ("DROP", "PART"), ("DETACH", "PARTITION"),
              ("ATTACH", "PARTITION"), ("FREEZE", ""), ("UNFREEZE", "")}
_TABLE_CLAUSES = (("PARTITION", "BY"), ("ORDER", "BY"), ("PRIMARY", "KEY"), ("SAMPLE", "BY"),
                  ("TTL", ""), ("SETTINGS", ""), ("COMMENT", ""))
_ACCESS_ENTITIES = ("ROLE", "USER", "QUOTA")


class ClusterDDLError(ValueError):
    """A migration statement the cluster transformation cannot rewrite; says which and why."""


def cluster_insert_settings(cluster: str | None) -> dict[str, Any]:
    """Settings of the sink's inserts: none on one server; on a cluster, a **foreground**
    (synchronous) insert into the ``Distributed`` table with deduplication on.

    Why this keeps a retried batch idempotent: the sink sends every batch with
    ``insert_deduplication_token = topic:partition:first-last``. ``distributed_foreground_insert
    = 1`` makes the ``Distributed`` table split the block by the sharding key and insert each
    shard's rows into ``<table>_local`` (on one replica, ``internal_replication``) before the
    INSERT returns, forwarding the query's settings — the token among them. The split is a pure
    function of the rows, so a retry of the same batch sends each shard the same rows with the
    same token, and the shard's ``Replicated…MergeTree`` drops the block it already has (its
    block ids live in Keeper for the shard, so it does not matter which replica receives the
    retry). A batch that failed on one shard and succeeded on another is completed by the
    retry, without doubling. The default background mode would instead queue the rows on the
    receiving node and send them later, possibly merged with other inserts' rows into other
    blocks: the token would no longer match, the INSERT would return before the shards have the
    rows, and an "ok" would not mean "stored". ``insert_deduplicate = 1`` (the default) is set
    so that a profile cannot turn it off for the sink. Replayed batches whose offsets differ
    from the first attempt (another token) are still collapsed by ``FINAL``, because the same
    event always lands on the same shard (sharding by ``event_id``).
    """
    if not cluster:
        return {}
    return {"distributed_foreground_insert": 1, "insert_deduplicate": 1}


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Tok:
    kind: str    # word, qid (`quoted` identifier), str, num, sym
    text: str
    start: int
    end: int
    depth: int   # parenthesis depth outside this token

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def ident(self) -> str:
        """The identifier's name (unquoted), or "" for a non-identifier."""
        if self.kind == "word":
            return self.text
        if self.kind == "qid":
            return self.text[1:-1]
        return ""


_TOKEN = re.compile(r"""
    (?P<ws>\s+|--[^\n]*|/\*.*?\*/)
  | (?P<str>'(?:[^'\\]|\\.|'')*')
  | (?P<qid>`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<sym>.)
""", re.VERBOSE | re.DOTALL)


def _lex(sql: str) -> list[_Tok]:
    out: list[_Tok] = []
    depth = 0
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "sym"
        if kind == "ws":
            continue
        text = m.group()
        if text == ")":
            depth -= 1
            if depth < 0:
                raise ClusterDDLError("unbalanced parentheses")
        out.append(_Tok(kind, text, m.start(), m.end(), depth))
        if text == "(":
            depth += 1
    if depth:
        raise ClusterDDLError("unbalanced parentheses")
    return out


def _closing(toks: list[_Tok], i: int) -> int:
    """Index of the ``)`` matching the ``(`` at ``i``."""
    depth = toks[i].depth
    for j in range(i + 1, len(toks)):
        if toks[j].text == ")" and toks[j].depth == depth:
            return j
    raise ClusterDDLError("unbalanced parentheses")


def _split_top(sql: str, toks: list[_Tok], lo: int, hi: int) -> list[str]:
    """The text of ``toks[lo:hi]`` split at commas at the depth of ``toks[lo]``."""
    if lo >= hi:
        return []
    depth = toks[lo].depth
    parts, start = [], toks[lo].start
    for t in toks[lo:hi]:
        if t.text == "," and t.depth == depth:
            parts.append(sql[start:t.start].strip())
            start = t.end
    parts.append(sql[start:toks[hi - 1].end].strip())
    return parts


@dataclass(frozen=True)
class _Name:
    db: str
    table: str
    lo: int      # first token index
    hi: int      # one past the last token index


def _name(toks: list[_Tok], i: int) -> _Name:
    if i >= len(toks) or not toks[i].ident:
        raise ClusterDDLError("expected a table or view name")
    if i + 2 < len(toks) and toks[i + 1].text == "." and toks[i + 2].ident:
        return _Name(toks[i].ident, toks[i + 2].ident, i, i + 3)
    return _Name("", toks[i].ident, i, i + 1)


def _words(toks: list[_Tok], i: int, *words: str) -> bool:
    return all(i + k < len(toks) and toks[i + k].upper == w for k, w in enumerate(words))


def _skip(toks: list[_Tok], i: int, *words: str) -> int:
    """``i`` moved past ``words`` if they are there."""
    return i + len(words) if _words(toks, i, *words) else i


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"`{name}`"


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class TablePlan:
    """Where a migration's table lives on the cluster."""

    name: str                 # the name every reader uses
    placement: str            # "sharded" (Distributed over <name>_local) or "everywhere"
    engine: str               # the single-server engine, e.g. ReplacingMergeTree
    order_by: tuple[str, ...]
    sharding_key: str | None  # the Distributed table's key (sharded tables)

    @property
    def storage(self) -> str:
        """The table holding the rows on each node."""
        return self.name + LOCAL_SUFFIX if self.placement == "sharded" else self.name


def placement(table: str) -> str:
    if table in EVERYWHERE_TABLES or table.startswith(EVERYWHERE_PREFIXES):
        return "everywhere"
    return "sharded"


def sharding_key(table: str, order_by: Iterable[str]) -> str:
    """``cityHash64`` of the ORDER BY columns that decide the shard (:data:`SHARD_BY`)."""
    columns = list(order_by)
    if not columns:
        raise ClusterDDLError(f"{table}: ORDER BY tuple() has no key to shard by; give the table "
                              "an ORDER BY key")
    n = SHARD_BY.get(table, len(columns))
    if not 1 <= n <= len(columns):
        raise ClusterDDLError(f"{table}: SHARD_BY asks for {n} ORDER BY columns, the key has "
                              f"{len(columns)}")
    return f"cityHash64({', '.join(columns[:n])})"


def _settings_for_replicated(text: str | None) -> str:
    """A SETTINGS list with the dedup window moved to its replicated name (0 if none)."""
    items = [] if not text else [s.strip() for s in _split_settings(text)]
    out, window = [], "0"
    for item in items:
        key, _, value = item.partition("=")
        key = key.strip()
        if key == "non_replicated_deduplication_window":
            window = value.strip()
        elif key == "replicated_deduplication_window":
            raise ClusterDDLError("replicated_deduplication_window is set by the cluster "
                                  "transformation; write non_replicated_deduplication_window")
        else:
            out.append(item)
    return ", ".join([*out, f"replicated_deduplication_window = {window}"])


def _split_settings(text: str) -> list[str]:
    toks = _lex(text)
    return _split_top(text, toks, 0, len(toks))


class ClusterDDL:
    """Rewrites single-server migration statements for the cluster ``cluster``.

    It learns the tables from the ``CREATE TABLE`` statements it sees, so feed it every
    migration in order (also those already applied): a later ``ALTER``/``GRANT`` needs to know
    whether its table is sharded.
    """

    def __init__(self, cluster: str, db: str) -> None:
        if not CLUSTER_NAME.match(cluster):
            raise ClusterDDLError(f"cluster name {cluster!r}: use letters, digits, _ . - or a "
                                  "{macro}")
        self.cluster = cluster
        self.db = db
        self.tables: dict[str, TablePlan] = {}
        self.views: set[str] = set()

    @property
    def on_cluster(self) -> str:
        return f"ON CLUSTER '{self.cluster}'"

    def bootstrap(self) -> list[str]:
        """The database and the runner's ``schema_migrations`` table, on every node."""
        return [f"CREATE DATABASE IF NOT EXISTS {self.db} {self.on_cluster}",
                *self.transform(f"CREATE TABLE IF NOT EXISTS {self.db}.schema_migrations "
                                "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
                                "ENGINE = MergeTree ORDER BY version")]

    def sharded(self, table: str) -> bool:
        plan = self.tables.get(table)
        return plan is not None and plan.placement == "sharded"

    def transform(self, sql: str) -> list[str]:
        """The statements to run on the cluster for one single-server statement."""
        sql = sql.strip().rstrip(";").strip()
        toks = _lex(sql)
        if not toks:
            return []
        if any(t.upper == "ON" and _words(toks, i + 1, "CLUSTER")
               and not (i + 2 < len(toks) and toks[i + 2].text == ".")
               for i, t in enumerate(toks)):
            raise ClusterDDLError("the statement already says ON CLUSTER: write migrations for "
                                  "one server, the runner adds ON CLUSTER")
        head = toks[0].upper
        if head == "CREATE":
            return self._create(sql, toks)
        if head == "ALTER" and _words(toks, 1, "TABLE"):
            return self._alter(sql, toks)
        if head in ("GRANT", "REVOKE"):
            return self._grant(sql, toks)
        if head == "INSERT":
            return [sql]
        if head in ("TRUNCATE", "OPTIMIZE") and _words(toks, 1, "TABLE"):
            return self._to_storage(sql, toks, 2)
        if head == "DELETE" and _words(toks, 1, "FROM"):
            return self._to_storage(sql, toks, 2)
        if head == "DROP" and toks[1].upper in ("TABLE", "VIEW"):
            return self._drop(sql, toks)
        raise ClusterDDLError(f"{head} statements are not handled by the cluster transformation "
                              "(handled: CREATE TABLE/VIEW/ROLE/USER/ROW POLICY/SETTINGS "
                              "PROFILE/QUOTA, ALTER TABLE, GRANT, REVOKE, INSERT, TRUNCATE, "
                              "OPTIMIZE, DELETE FROM, DROP TABLE/VIEW)")

    # ------------------------------------------------------------------ CREATE

    def _create(self, sql: str, toks: list[_Tok]) -> list[str]:
        i = _skip(toks, 1, "OR", "REPLACE")
        kind = toks[i].upper if i < len(toks) else ""
        if kind == "TABLE":
            return self._create_table(sql, toks, i + 1)
        if kind == "VIEW":
            name = _name(toks, _skip(toks, i + 1, "IF", "NOT", "EXISTS"))
            self.views.add(name.table)
            return [self._insert_on_cluster(sql, toks[name.hi - 1].end)]
        if kind in _ACCESS_ENTITIES or _words(toks, i, "SETTINGS", "PROFILE"):
            j = i + (2 if kind == "SETTINGS" else 1)
            j = _skip(toks, _skip(toks, j, "IF", "NOT", "EXISTS"), "OR", "REPLACE")
            end = self._name_list_end(toks, j)
            return [self._insert_on_cluster(sql, toks[end - 1].end)]
        if kind in ("ROW", "POLICY"):
            return self._row_policy(sql, toks, i + (2 if kind == "ROW" else 1))
        what = " ".join(t.text for t in toks[1:i + 2])
        raise ClusterDDLError(f"CREATE {what}: not handled by the cluster transformation "
                              "(materialized views, dictionaries and the like need a design "
                              "for shards: write it for the cluster by hand)")

    def _insert_on_cluster(self, sql: str, at: int) -> str:
        return f"{sql[:at]} {self.on_cluster}{sql[at:]}"

    @staticmethod
    def _name_list_end(toks: list[_Tok], j: int) -> int:
        if j >= len(toks) or not (toks[j].ident or toks[j].kind == "str"):
            raise ClusterDDLError("expected a name")
        j += 1
        while j + 1 < len(toks) and toks[j].text == "," and (toks[j + 1].ident or
                                                               toks[j + 1].kind == "str"):
            j += 2
        return j

    def _create_table(self, sql: str, toks: list[_Tok], i: int) -> list[str]:
        if_not_exists = _words(toks, i, "IF", "NOT", "EXISTS")
        name = _name(toks, _skip(toks, i, "IF", "NOT", "EXISTS"))
        table = name.table
        j = name.hi
        if j >= len(toks) or toks[j].text != "(":
            raise ClusterDDLError(f"{table}: CREATE TABLE without a column list (AS …, AS "
                                  "SELECT) is not handled: list the columns")
        cols_end = _closing(toks, j)
        columns = sql[toks[j].end:toks[cols_end].start].strip("\n").rstrip()
        j = cols_end + 1
        if not _words(toks, j, "ENGINE"):
            raise ClusterDDLError(f"{table}: no ENGINE clause; name the *MergeTree engine")
        j = j + 2 if j + 1 < len(toks) and toks[j + 1].text == "=" else j + 1
        engine = toks[j].text if j < len(toks) else ""
        args = ""
        j += 1
        if j < len(toks) and toks[j].text == "(" and toks[j].depth == 0:
            close = _closing(toks, j)
            args = sql[toks[j].end:toks[close].start].strip()
            j = close + 1
        if engine.startswith("Replicated"):
            raise ClusterDDLError(f"{table}: engine {engine} is already replicated; write the "
                                  "single-server engine, the cluster transformation replicates it")
        if engine not in MERGE_TREE_ENGINES:
            raise ClusterDDLError(f"{table}: engine {engine or '?'} cannot be turned into a "
                                  "replicated, sharded table (only the *MergeTree family: "
                                  f"{', '.join(MERGE_TREE_ENGINES)})")
        clauses = self._clauses(sql, toks, j, table)
        order_by = self._order_by(clauses.get("ORDER BY", ""))
        where = placement(table)
        plan = TablePlan(table, where, engine, order_by,
                         sharding_key(table, order_by) if where == "sharded" else None)
        self.tables[table] = plan
        db = name.db or self.db
        if where == "sharded":
            path, replica = SHARDED_PATH + table, "{replica}"
        else:
            path, replica = EVERYWHERE_PATH + table, EVERYWHERE_REPLICA
        engine_args = ", ".join(a for a in (f"'{path}'", f"'{replica}'", args) if a)
        clauses["SETTINGS"] = _settings_for_replicated(clauses.get("SETTINGS"))
        body = "\n".join(f"{k} {v}" for k, v in clauses.items())
        ine = "IF NOT EXISTS " if if_not_exists else ""
        storage = f"{db}.{_quote(plan.storage)}"
        local = (f"CREATE TABLE {ine}{storage} {self.on_cluster}\n(\n{columns}\n)\n"
                 f"ENGINE = Replicated{engine}({engine_args})\n{body}")
        if where == "everywhere":
            return [local]
        distributed = (f"CREATE TABLE {ine}{db}.{_quote(table)} {self.on_cluster} AS {storage}\n"
                       f"ENGINE = Distributed('{self.cluster}', '{db}', '{plan.storage}', "
                       f"{plan.sharding_key})")
        return [local, distributed]

    @staticmethod
    def _clauses(sql: str, toks: list[_Tok], j: int, table: str) -> dict[str, str]:
        """The table clauses after ENGINE, in order: {"ORDER BY": "(a, b)", …}."""
        starts: list[tuple[int, str, int]] = []   # token index, clause, first token of its body
        for k in range(j, len(toks)):
            if toks[k].depth:
                continue
            for first, second in _TABLE_CLAUSES:
                if toks[k].upper == first and (not second or _words(toks, k + 1, second)):
                    starts.append((k, f"{first} {second}".strip(), k + (2 if second else 1)))
                    break
        if (starts and starts[0][0] != j) or (not starts and j < len(toks)):
            raise ClusterDDLError(f"{table}: cannot read the table clauses after ENGINE: "
                                  f"{sql[toks[j].start:toks[j].start + 40]!r}")
        clauses = {}
        for n, (_, clause, body) in enumerate(starts):
            end = starts[n + 1][0] if n + 1 < len(starts) else len(toks)
            clauses[clause] = sql[toks[body].start:toks[end - 1].end] if body < end else ""
        return clauses

    @staticmethod
    def _order_by(text: str) -> tuple[str, ...]:
        toks = _lex(text)
        if not toks:
            return ()
        if toks[0].text == "(" and _closing(toks, 0) == len(toks) - 1:
            return tuple(_split_top(text, toks, 1, len(toks) - 1))
        if toks[0].upper == "TUPLE" and len(toks) == 3:
            return ()
        return (text.strip(),)

    # ------------------------------------------------------------------ ALTER and friends

    def _known(self, name: _Name, what: str) -> TablePlan:
        plan = self.tables.get(name.table)
        if plan is None:
            raise ClusterDDLError(f"{what} {name.table}: the table was not created by a "
                                  "migration, so its cluster layout is unknown")
        return plan

    def _alter(self, sql: str, toks: list[_Tok]) -> list[str]:
        name = _name(toks, 2)
        plan = self._known(name, "ALTER TABLE")
        ops_sql = sql[toks[name.hi].start:] if name.hi < len(toks) else ""
        op_toks = _lex(ops_sql)
        ops = _split_top(ops_sql, op_toks, 0, len(op_toks))
        column_ops = []
        for op in ops:
            words = [t.upper for t in _lex(op)[:2]]
            pair = (words[0], words[1] if len(words) > 1 else "")
            if pair in _COLUMN_OPS:
                column_ops.append(op)
            elif pair == ("MODIFY", "SETTING"):
                if "non_replicated_deduplication_window" in op:
                    raise ClusterDDLError(f"ALTER TABLE {plan.name}: change "
                                          "replicated_deduplication_window on a cluster")
            elif pair not in _LOCAL_OPS and (pair[0], "") not in _LOCAL_OPS:
                raise ClusterDDLError(f"ALTER TABLE {plan.name}: operation {' '.join(pair)} is "
                                      "not handled by the cluster transformation")
        db = name.db or self.db
        out = [f"ALTER TABLE {db}.{_quote(plan.storage)} {self.on_cluster}\n    "
               + ",\n    ".join(ops)]
        if plan.placement == "sharded" and column_ops:
            out.append(f"ALTER TABLE {db}.{_quote(plan.name)} {self.on_cluster}\n    "
                       + ",\n    ".join(column_ops))
        return out

    def _to_storage(self, sql: str, toks: list[_Tok], i: int) -> list[str]:
        """TRUNCATE / OPTIMIZE / DELETE FROM: on the table holding the rows."""
        i = _skip(toks, i, "IF", "EXISTS")
        name = _name(toks, i)
        plan = self._known(name, toks[0].upper)
        db = name.db or self.db
        head = sql[:toks[name.lo].start]
        rest = sql[toks[name.hi - 1].end:]
        return [f"{head}{db}.{_quote(plan.storage)} {self.on_cluster}{rest}"]

    def _drop(self, sql: str, toks: list[_Tok]) -> list[str]:
        name = _name(toks, _skip(toks, 2, "IF", "EXISTS"))
        rest = sql[toks[name.hi - 1].end:]
        head = sql[:toks[name.lo].start]
        db = name.db or self.db
        plan = self.tables.pop(name.table, None)
        self.views.discard(name.table)
        out = [f"{head}{db}.{_quote(name.table)} {self.on_cluster}{rest}"]
        if plan is not None and plan.placement == "sharded":
            out.append(f"{head}{db}.{_quote(plan.storage)} {self.on_cluster}{rest}")
        return out

    # ------------------------------------------------------------------ access control

    def _grant(self, sql: str, toks: list[_Tok]) -> list[str]:
        """``GRANT ON CLUSTER …``; repeated for ``<table>_local`` of every sharded table."""
        head = toks[0].text
        body = sql[toks[0].end:].strip()
        out = [f"{head} {self.on_cluster} {body}"]
        local = self._with_storage_tables(sql, toks)
        if local != sql:
            lt = _lex(local)
            out.append(f"{head} {self.on_cluster} {local[lt[0].end:].strip()}")
        return out

    def _with_storage_tables(self, sql: str, toks: list[_Tok]) -> str:
        """``sql`` with every ``ON db.table`` of a sharded table pointing at its local table."""
        pieces, last = [], 0
        for i, t in enumerate(toks):
            if t.upper != "ON" or i + 1 >= len(toks) or not toks[i + 1].ident:
                continue
            name = _name(toks, i + 1)
            if self.sharded(name.table):
                db = name.db or self.db
                pieces += [sql[last:toks[name.lo].start],
                           f"{db}.{_quote(self.tables[name.table].storage)}"]
                last = toks[name.hi - 1].end
        return "".join(pieces) + sql[last:]

    def _row_policy(self, sql: str, toks: list[_Tok], i: int) -> list[str]:
        i = _skip(toks, _skip(toks, i, "IF", "NOT", "EXISTS"), "OR", "REPLACE")
        end = self._name_list_end(toks, i)
        if end - i != 1 or not _words(toks, end, "ON"):
            raise ClusterDDLError("CREATE ROW POLICY: write one policy name and ON db.table")
        table = _name(toks, end + 1)
        if table.hi < len(toks) and toks[table.hi].text == ",":
            raise ClusterDDLError("CREATE ROW POLICY: one table per statement")
        statement = self._insert_on_cluster(sql, toks[i].end)
        out = [statement]
        if self.sharded(table.table):
            st = _lex(statement)
            out.append(self._with_storage_tables(statement, st))
        elif table.table not in self.tables:
            raise ClusterDDLError(f"CREATE ROW POLICY on {table.table}: the table was not "
                                  "created by a migration")
        return out
