"""Run a dashboard's panel queries against a ClickHouse database, as Grafana would.

Used by the dashboard tests (fresh chDB database, hand-made data) and by anyone who wants to
check a dashboard against data the real pipeline produced::

    from ioc.dashboards.build import render_dict
    from ioc.dashboards.testing import run_panel_queries, problems

    board = render_dict("traffic")
    results = run_panel_queries(client, "ioc", board, time_from, time_to)
    assert not problems(board, results)

Dashboards hard-code the database ``ioc``; :func:`rewrite_database` points the SQL at another
database (a test's own) by rewriting the qualified name ``ioc.<table>`` only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ioc.dashboards.build import iter_panels, panel_queries
from ioc.dashboards.common import (
    GRID_COLUMNS,
    MIN_PANEL_SIZE,
    MIN_STAT_SIZE,
    PALETTE,
    SEVERITY_COLOURS,
    TIMEZONE,
    WALL_ROWS,
)
from ioc.dashboards.macros import expand_macros

__all__ = ["PanelResult", "layout_problems", "panel_queries", "problems", "rewrite_database",
           "run_panel_queries", "wall_problems"]

_IOC_QUALIFIER = re.compile(r"\bioc\.(?=[A-Za-z_`])")
_NUMERIC = ("Int", "UInt", "Float", "Decimal")


def rewrite_database(sql: str, database: str) -> str:
    """Replace the database qualifier ``ioc.`` of table names with ``<database>.``."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"not a plain database name: {database!r}")
    return _IOC_QUALIFIER.sub(f"{database}.", sql)


@dataclass
class PanelResult:
    """What one panel's query returned (or the error it raised)."""

    title: str
    panel_type: str
    sql: str
    columns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    error: str | None = None

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def value(self, name: str) -> Any:
        """The single value of a one-row result (stat panels)."""
        if len(self.rows) != 1:
            raise ValueError(f"{self.title}: expected one row, got {len(self.rows)}")
        return self.rows[0][self.columns.index(name)]


def run_panel_queries(client: Any, db: str, dashboard_json: dict[str, Any],
                      time_from: datetime, time_to: datetime, *, interval_s: int = 60,
                      strict: bool = True) -> dict[str, PanelResult]:
    """Expand each panel's macros for the range, run it on database ``db``; title → result.

    ``client`` is a clickhouse-connect client (``chdb://…`` or ``http://…``). With ``strict``
    the first failing query raises (naming the panel); otherwise failures are recorded in
    :attr:`PanelResult.error` so every panel can be reported at once.
    """
    results: dict[str, PanelResult] = {}
    for panel in iter_panels(dashboard_json):
        for target in panel.get("targets") or []:
            if "rawSql" not in target:
                continue
            title = panel.get("title", "")
            key = title if title not in results else f"{title} [{target.get('refId', '?')}]"
            res = PanelResult(title=title, panel_type=panel.get("type", ""), sql="")
            try:
                sql = expand_macros(target["rawSql"], time_from, time_to, interval_s)
                res.sql = rewrite_database(sql, db)
                q = client.query(res.sql)
                res.columns = list(q.column_names)
                res.types = [t.name for t in q.column_types]
                res.rows = [tuple(r) for r in q.result_rows]
                if not res.columns:
                    # An empty result carries no column metadata; ask ClickHouse for it.
                    described = client.query(f"DESCRIBE (\n{res.sql}\n)").result_rows
                    res.columns = [row[0] for row in described]
                    res.types = [row[1] for row in described]
            except Exception as exc:
                if strict:
                    raise RuntimeError(f"panel {title!r}: {exc}\n{res.sql}") from exc
                res.error = f"{type(exc).__name__}: {exc}"
            results[key] = res
    return results


def _base_type(name: str) -> str:
    for wrapper in ("Nullable(", "LowCardinality("):
        while name.startswith(wrapper):
            name = name[len(wrapper):-1]
    return name


def _is_numeric(type_name: str) -> bool:
    return _base_type(type_name).startswith(_NUMERIC)


def _is_time(type_name: str) -> bool:
    return _base_type(type_name).startswith("DateTime")


def _is_text(type_name: str) -> bool:
    return _base_type(type_name).startswith(("String", "FixedString", "Enum"))


def problems(dashboard_json: dict[str, Any], results: dict[str, PanelResult],
             *, require_rows: bool = True) -> dict[str, list[str]]:
    """Shape problems per panel title: errors, no rows, columns a panel type cannot draw.

    - timeseries: a DateTime column named ``time`` first, at least one numeric column, and the
      rows sorted by time (the plugin needs that to split series);
    - stat: one row, at least one numeric column;
    - bargauge / barchart: a text column for the labels and a numeric column;
    - geomap: numeric latitude/longitude columns and the columns its marker style names;
    - table: at least one column;
    - every column named in a ``byName`` override or the bar chart's ``xField`` must exist.
    """
    found: dict[str, list[str]] = {}
    panels = {p.get("title", ""): p for p in iter_panels(dashboard_json)}
    for key, res in results.items():
        issues: list[str] = []
        panel = panels.get(res.title, {})
        if res.error:
            issues.append(f"query failed: {res.error}")
        else:
            if require_rows and not res.rows:
                issues.append("no rows")
            issues.extend(_shape_issues(res, panel))
        if issues:
            found[key] = issues
    return found


def _shape_issues(res: PanelResult, panel: dict[str, Any]) -> list[str]:
    issues: list[str] = []
    cols = dict(zip(res.columns, res.types, strict=True))
    numeric = [c for c, t in cols.items() if _is_numeric(t)]
    if res.panel_type == "timeseries":
        if not res.columns or res.columns[0] != "time" or not _is_time(cols["time"]):
            issues.append(f"timeseries needs a DateTime column 'time' first, got {cols}")
        elif res.rows:
            times = [r[0] for r in res.rows]
            if times != sorted(times):
                issues.append("timeseries rows are not sorted by time")
        if not numeric:
            issues.append("timeseries has no numeric column")
    elif res.panel_type == "stat":
        if res.rows and len(res.rows) != 1:
            issues.append(f"stat expects one row, got {len(res.rows)}")
        if not numeric:
            issues.append(f"stat has no numeric column: {cols}")
    elif res.panel_type in ("bargauge", "barchart"):
        if not any(_is_text(t) for t in cols.values()):
            issues.append(f"{res.panel_type} needs a text label column: {cols}")
        if not numeric:
            issues.append(f"{res.panel_type} has no numeric column: {cols}")
    elif res.panel_type == "geomap":
        for layer in (panel.get("options") or {}).get("layers") or []:
            loc = layer.get("location") or {}
            for key in ("latitude", "longitude"):
                if loc.get(key) and not _is_numeric(cols.get(loc[key], "")):
                    issues.append(f"geomap layer needs numeric column {loc[key]!r}: {cols}")
            style = (layer.get("config") or {}).get("style") or {}
            for prop in ("color", "size", "text"):
                name = (style.get(prop) or {}).get("field")
                if name and name not in cols:
                    issues.append(f"geomap style {prop} refers to missing column {name!r}")
    elif not res.columns:
        issues.append("no columns")
    referenced = [o["matcher"]["options"]
                  for o in panel.get("fieldConfig", {}).get("overrides", [])
                  if o.get("matcher", {}).get("id") == "byName"]
    x_field = (panel.get("options") or {}).get("xField")
    if x_field:
        referenced.append(x_field)
    for name in referenced:
        if name not in cols:
            issues.append(f"panel refers to column {name!r}, query returns {list(cols)}")
    return issues


def layout_problems(dashboard_json: dict[str, Any]) -> tuple[list[str], int]:
    """Check a wall screen's grid: every panel has a size, lies inside the
    ``GRID_COLUMNS`` × ``WALL_ROWS`` screen and overlaps no other panel. Returns the problems
    and the number of grid cells covered (a full screen covers every cell)."""
    found: list[str] = []
    cells: dict[tuple[int, int], str] = {}
    for panel in iter_panels(dashboard_json):
        g, title = panel["gridPos"], panel["title"]
        if g["w"] <= 0 or g["h"] <= 0:
            found.append(f"{title}: empty size {g}")
        if not (0 <= g["x"] and g["x"] + g["w"] <= GRID_COLUMNS):
            found.append(f"{title}: outside the {GRID_COLUMNS} columns {g}")
        if not (0 <= g["y"] and g["y"] + g["h"] <= WALL_ROWS):
            found.append(f"{title}: below the {WALL_ROWS} rows of one screen {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    found.append(f"{title} overlaps {cells[(x, y)]} at {(x, y)}")
                cells[(x, y)] = title
    return found, len(cells)


# -- data for dashboard and briefing tests ---------------------------------------------------


def simulate_into(client: Any, db: str, start: datetime, end: datetime, *,
                  domains: Iterable[str] | None = None, seed: int = 0,
                  traffic_rate: float = 22 / 60, step_s: float = 60.0,
                  reference_dir: Path | None = None) -> dict[str, int]:
    """Fill database ``db`` as the pipeline would for simulated time ``[start, end)``.

    The subsystems' simulators (``ioc simulate``'s own) produce the events; the real
    :class:`~ioc.streams.processor.Processor` of every registered domain turns them into KPI
    and alert records (handled in time order, ticked every ``step_s`` of event time, open
    windows flushed at the end as the worker does); raw events, KPIs and alerts are inserted as
    the sink would, with the latest record per key. No Kafka: the e2e tests prove that part.
    Returns row counts per table.
    """
    from ioc.connectors.simulate import INTERVAL_SIMULATORS
    from ioc.connectors.simulator import SimEvent, TrafficSimulator
    from ioc.infra.reference import load_reference
    from ioc.schemas.catalogue import Catalogue
    from ioc.streams.processor import Processor
    from ioc.streams.registry import build_domains

    ref = load_reference(reference_dir)
    wanted = set(domains) if domains is not None else {"traffic", *INTERVAL_SIMULATORS}
    events: list[SimEvent] = []
    if "traffic" in wanted:
        sim = TrafficSimulator(ref.segments, seed=seed)
        events.extend(sim.stream(start, rate=traffic_rate,
                                 duration_s=(end - start).total_seconds()))
    sims = [make(ref, seed) for name, make in INTERVAL_SIMULATORS.items() if name in wanted]
    t = start
    while t < end:
        t = min(t + timedelta(seconds=step_s), end)
        for s in sims:
            events.extend(s.events_at(t, step_s))
    events = [e for e in events if e.occurred_at < end]
    events.sort(key=lambda e: e.occurred_at)
    clock = [start]
    proc = Processor(build_domains(ref), timedelta(minutes=2), lambda: clock[0])
    kpis: dict[tuple[Any, ...], dict[str, Any]] = {}
    alerts: dict[tuple[str, datetime], dict[str, Any]] = {}

    def take(step: Any) -> None:
        for a in step.alerts:
            alerts[(a["alert_id"], a["starts_at"])] = a
        for r in step.kpis:
            kpis[(r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])] = r

    next_tick = start + timedelta(seconds=step_s)
    for offset, ev in enumerate(events):
        while ev.occurred_at >= next_tick:
            clock[0] = next_tick
            take(proc.tick())
            next_tick += timedelta(seconds=step_s)
        take(proc.handle(ev.topic, ev.value, (ev.topic, 0), offset))
    clock[0] = end
    take(proc.tick())
    for r in proc.flush():
        kpis[(r["kpi"], r["window"], r["area_code"], r["entity"], r["window_start"])] = r
    cat = Catalogue()
    counts: dict[str, int] = {}
    for topic in sorted({e.topic for e in events}):
        fields = cat.get(topic).field_names
        rows = [[e.value[f] for f in fields] + [topic, 0, i, end]
                for i, e in enumerate(events) if e.topic == topic]
        table = topic.removeprefix("ioc.").rsplit(".", 1)[0].replace(".", "_")
        client.insert(f"{db}.{table}", rows,
                      column_names=[*fields, "_topic", "_partition", "_offset", "_ingested_at"])
        counts[table] = len(rows)
    kpi_fields = cat.get("ioc.kpi.v1").field_names
    if kpis:
        client.insert(f"{db}.kpi", [[int(r[f]) if f == "is_final" else r[f] for f in kpi_fields]
                                    for r in kpis.values()], column_names=kpi_fields)
    alert_fields = cat.get("ioc.alert.v1").field_names
    if alerts:
        client.insert(f"{db}.alerts", [[a[f] for f in alert_fields] for a in alerts.values()],
                      column_names=alert_fields)
    counts["kpi"], counts["alerts"] = len(kpis), len(alerts)
    return counts
def _has_diacritics(text: str) -> bool:
    return any(unicodedata.decomposition(ch) for ch in text if ch.isalpha() and ord(ch) > 127)


def _colours(config: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, colour) of every colour a field config (defaults or one override) sets."""
    found: list[tuple[str, str]] = []
    steps = ((config.get("thresholds") or {}).get("steps")) or []
    found += [("threshold", s.get("color", "")) for s in steps]
    for mapping in config.get("mappings") or []:
        options = mapping.get("options") or {}
        results = ([options["result"]] if "result" in options
                   else [r for r in options.values() if isinstance(r, dict)])
        found += [("mapping", r["color"]) for r in results if r.get("color")]
    colour = config.get("color") or {}
    if colour.get("fixedColor"):
        found.append(("fixed colour", colour["fixedColor"]))
    return found


def _override_config(override: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for prop in override.get("properties") or []:
        config[prop.get("id")] = prop.get("value")
    return config


def wall_problems(dashboard_json: dict[str, Any]) -> list[str]:
    """Break the wall conventions? (:mod:`ioc.dashboards.common`: one kiosk screen, sizes,
    palette, severity colours; Vietnamese titles; self-refreshing.) Returns the problems.

    - the grid fits one 1920x1080 kiosk screen without overlap (:func:`layout_problems`);
    - stat panels at least :data:`MIN_STAT_SIZE`, other panels :data:`MIN_PANEL_SIZE`;
    - the dashboard's and every panel's title carries Vietnamese diacritics;
    - ``refresh`` is set (5 s to 5 min), the time zone is Asia/Ho_Chi_Minh, it is read-only;
    - every colour (thresholds, value mappings, fixed colours, map markers) is in
      :data:`PALETTE`; a value or series named after a severity has that severity's colour
      (:data:`SEVERITY_COLOURS`); threshold steps start at −∞ and increase.
    """
    found, _ = layout_problems(dashboard_json)
    title = dashboard_json.get("title", "")
    if not _has_diacritics(title):
        found.append(f"dashboard title {title!r} has no Vietnamese diacritics")
    refresh = dashboard_json.get("refresh") or ""
    m = re.fullmatch(r"([1-9][0-9]*)([smh])", refresh)
    seconds = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)] if m else 0
    if not 5 <= seconds <= 300:
        found.append(f"refresh {refresh!r} is not between 5s and 5m")
    if dashboard_json.get("timezone") != TIMEZONE:
        found.append(f"time zone {dashboard_json.get('timezone')!r} is not {TIMEZONE}")
    if dashboard_json.get("editable") is not False:
        found.append("dashboard is editable (wall dashboards are code: read-only)")
    for panel in iter_panels(dashboard_json):
        name = panel.get("title", "")
        if not _has_diacritics(name):
            found.append(f"panel title {name!r} has no Vietnamese diacritics")
        g = panel["gridPos"]
        min_w, min_h = MIN_STAT_SIZE if panel.get("type") == "stat" else MIN_PANEL_SIZE
        if g["w"] < min_w or g["h"] < min_h:
            found.append(f"{name}: {panel.get('type')} panel {g['w']}×{g['h']} is smaller than "
                         f"{min_w}×{min_h}")
        field_config = panel.get("fieldConfig") or {}
        configs = [("defaults", field_config.get("defaults") or {})]
        configs += [(f"override {o.get('matcher', {}).get('options')!r}", _override_config(o))
                    for o in field_config.get("overrides") or []]
        for where, config in configs:
            steps = ((config.get("thresholds") or {}).get("steps")) or []
            values = [s.get("value") for s in steps]
            if values and (values[0] is not None or any(
                    v is None for v in values[1:]) or values[1:] != sorted(set(values[1:]))):
                found.append(f"{name} ({where}): threshold steps {values} must start at "
                             "null (−∞) and increase")
            for kind, colour in _colours(config):
                if colour not in PALETTE:
                    found.append(f"{name} ({where}): {kind} colour {colour!r} is not in the "
                                 f"palette {PALETTE}")
        found += _severity_colour_problems(panel, configs, SEVERITY_COLOURS)
        for layer in (panel.get("options") or {}).get("layers") or []:
            style = ((layer.get("config") or {}).get("style") or {})
            fixed = (style.get("color") or {}).get("fixed")
            if fixed and fixed not in PALETTE:
                found.append(f"{name}: map marker colour {fixed!r} is not in the palette")
    return found


def _severity_colour_problems(panel: dict[str, Any], configs: list[tuple[str, dict[str, Any]]],
                              severity_colours: dict[str, str]) -> list[str]:
    found = []
    name = panel.get("title", "")
    for where, config in configs:
        for mapping in config.get("mappings") or []:
            for key, result in (mapping.get("options") or {}).items():
                want = severity_colours.get(key)
                if want and isinstance(result, dict) and result.get("color") != want:
                    found.append(f"{name} ({where}): severity {key!r} shown in "
                                 f"{result.get('color')!r}, not {want!r}")
    for override in (panel.get("fieldConfig") or {}).get("overrides") or []:
        key = (override.get("matcher") or {}).get("options")
        want = severity_colours.get(key) if isinstance(key, str) else None
        fixed = (_override_config(override).get("color") or {}).get("fixedColor")
        if want and fixed and fixed != want:
            found.append(f"{name}: series {key!r} drawn in {fixed!r}, not {want!r}")
    return found
