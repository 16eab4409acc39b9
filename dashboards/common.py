"""Shared defaults and small panel factories for the IOC wall dashboards.

Every dashboard module builds its panels through these factories, so all dashboards read from
the same ClickHouse data source (``grafana-clickhouse-datasource``, uid ``ioc-clickhouse``), use
the same refresh, time range and time zone, and serialise the same way. Panels are written with
grafana-foundation-sdk builders; the SDK has no ClickHouse query type, so :class:`ClickHouseQuery`
provides the plugin's raw-SQL target model (``editorType: sql``).

The wall screens are 1920x1080 in kiosk mode: 24 grid columns and :data:`WALL_ROWS` rows of
30 px (+8 px margin) fit without scrolling.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any, Literal, Self

from grafana_foundation_sdk.builders import barchart as barchart_builder
from grafana_foundation_sdk.builders import bargauge as bargauge_builder
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.builders import table as table_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "ioc-clickhouse"
DATASOURCE = dashboard_model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

REFRESH = "30s"
TIME_FROM = "now-6h"
TIME_TO = "now"
TIMEZONE = "Asia/Ho_Chi_Minh"

GRID_COLUMNS = 24
WALL_ROWS = 27
"""Rows that fit a 1080 px kiosk screen: 27 × (30 px + 8 px margin) − 8 px = 1018 px."""

QueryType = Literal["table", "timeseries"]
# The plugin's `format` field (sqlds FormatQueryOption): 0 time series, 1 table.
_FORMAT: dict[str, int] = {"timeseries": 0, "table": 1}


class ClickHouseQuery(cogvariants.Dataquery):
    """A raw-SQL target of the ClickHouse data source plugin (v4 query model)."""

    def __init__(self, raw_sql: str = "", query_type: QueryType = "table", ref_id: str = "A",
                 datasource: dashboard_model.DataSourceRef | None = None) -> None:
        self.raw_sql = raw_sql
        self.query_type = query_type
        self.ref_id = ref_id
        self.datasource = datasource if datasource is not None else DATASOURCE

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": self.datasource,
            "editorType": "sql",
            "format": _FORMAT[self.query_type],
            "queryType": self.query_type,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(
            raw_sql=data.get("rawSql", ""),
            query_type="timeseries" if data.get("format") == 0 else "table",
            ref_id=data.get("refId", "A"),
            datasource=dashboard_model.DataSourceRef.from_json(ds) if ds else None,
        )


class ClickHouseSql(cogbuilder.Builder[ClickHouseQuery]):
    """Builder for :class:`ClickHouseQuery`; SQL is dedented and stripped for readable JSON."""

    def __init__(self, sql: str) -> None:
        self._internal = ClickHouseQuery(textwrap.dedent(sql).strip())

    def build(self) -> ClickHouseQuery:
        return self._internal

    def time_series(self) -> Self:
        self._internal.query_type = "timeseries"
        return self

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self


def grid(x: int, y: int, w: int, h: int) -> dashboard_model.GridPos:
    return dashboard_model.GridPos(x=x, y=y, w=w, h=h)


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builder.ThresholdsConfig:
    """Absolute thresholds; the first step's value is ``None`` (−∞)."""
    return (dashboard_builder.ThresholdsConfig()
            .mode(dashboard_model.ThresholdsMode.ABSOLUTE)
            .steps([dashboard_model.Threshold(value=v, color=c) for v, c in steps]))


Overrides = dict[str, list[dashboard_model.DynamicConfigValue]]


def column_overrides(panel: Any, labels: dict[str, str] | None = None,
                     overrides: Overrides | None = None) -> None:
    """One override per query column: its Vietnamese label (SQL keeps ASCII aliases) and any
    other field properties, in column-name order so the JSON stays deterministic."""
    labels = labels or {}
    overrides = overrides or {}
    for column in sorted(set(labels) | set(overrides)):
        props = []
        if column in labels:
            props.append(dashboard_model.DynamicConfigValue("displayName", labels[column]))
        props.extend(overrides.get(column, []))
        panel.override_by_name(column, props)


def _common(panel: Any, title: str, sql: ClickHouseSql, pos: dashboard_model.GridPos,
            description: str | None, labels: dict[str, str] | None = None,
            overrides: Overrides | None = None) -> None:
    panel.title(title).datasource(DATASOURCE).grid_pos(pos).with_target(sql)
    if description:
        panel.description(description)
    column_overrides(panel, labels, overrides)


def stat(title: str, sql: str, pos: dashboard_model.GridPos, *, unit: str = "short",
         decimals: int | None = None,
         steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
         labels: dict[str, str] | None = None, overrides: Overrides | None = None,
         description: str | None = None) -> stat_builder.Panel:
    """One big number from a one-row table query, coloured by thresholds. With several
    numeric columns the panel shows each (name them with ``labels``)."""
    panel = (stat_builder.Panel()
             .unit(unit)
             .thresholds(thresholds(*steps))
             .color_scheme(dashboard_builder.FieldColor()
                           .mode(dashboard_model.FieldColorModeId.THRESHOLDS))
             .color_mode(common_model.BigValueColorMode.BACKGROUND)
             .graph_mode(common_model.BigValueGraphMode.NONE)
             .justify_mode(common_model.BigValueJustifyMode.CENTER)
             .text_mode(common_model.BigValueTextMode.VALUE_AND_NAME if labels
                        else common_model.BigValueTextMode.VALUE)
             .reduce_options(common_builder.ReduceDataOptions()
                             .calcs(["lastNotNull"]).fields("").values(False)))
    if decimals is not None:
        panel.decimals(decimals)
    _common(panel, title, ClickHouseSql(sql), pos, description, labels, overrides)
    return panel


def timeseries(title: str, sql: str, pos: dashboard_model.GridPos, *, unit: str = "short",
               series_label: str | None = None, min_interval: str = "1m",
               description: str | None = None) -> timeseries_builder.Panel:
    """Lines from a time-series query: a DateTime column ``time``, then values.

    With ``series_label``, the query also returns that string column; the plugin turns such a
    long result into one series per label value, and each series is named after its value.
    ``min_interval`` keeps ``$__timeInterval`` buckets no finer than the KPI windows.
    """
    panel = (timeseries_builder.Panel()
             .unit(unit)
             .min(0)
             .interval(min_interval)
             .line_width(2)
             .fill_opacity(10)
             .show_points(common_model.VisibilityMode.NEVER)
             .span_nulls(False)
             .legend(common_builder.VizLegendOptions()
                     .display_mode(common_model.LegendDisplayMode.LIST)
                     .placement(common_model.LegendPlacement.BOTTOM)
                     .show_legend(True))
             .tooltip(common_builder.VizTooltipOptions()
                      .mode(common_model.TooltipDisplayMode.MULTI)
                      .sort(common_model.SortOrder.DESCENDING)))
    if series_label:
        panel.display_name(f"${{__field.labels.{series_label}}}")
    _common(panel, title, ClickHouseSql(sql).time_series(), pos, description)
    return panel


def table(title: str, sql: str, pos: dashboard_model.GridPos, *,
          labels: dict[str, str] | None = None, overrides: Overrides | None = None,
          description: str | None = None) -> table_builder.Panel:
    """A table of the query's rows; ``labels`` renames columns for display."""
    panel = (table_builder.Panel()
             .show_header(True)
             .cell_height(common_model.TableCellHeight.SM)
             .footer(common_builder.TableFooterOptions().show(False).reducer(["sum"])))
    _common(panel, title, ClickHouseSql(sql), pos, description, labels, overrides)
    return panel


def bar_gauge(title: str, sql: str, pos: dashboard_model.GridPos, *, unit: str = "short",
              min_value: float = 0, max_value: float | None = None,
              steps: Sequence[tuple[float | None, str]] = ((None, "green"),),
              description: str | None = None) -> bargauge_builder.Panel:
    """One bar per row: a label column plus a numeric column, coloured by thresholds."""
    panel = (bargauge_builder.Panel()
             .unit(unit)
             .min(min_value)
             .thresholds(thresholds(*steps))
             .color_scheme(dashboard_builder.FieldColor()
                           .mode(dashboard_model.FieldColorModeId.THRESHOLDS))
             .display_mode(common_model.BarGaugeDisplayMode.GRADIENT)
             .value_mode(common_model.BarGaugeValueMode.COLOR)
             .orientation(common_model.VizOrientation.HORIZONTAL)
             .show_unfilled(True)
             .min_viz_height(16)
             .reduce_options(common_builder.ReduceDataOptions()
                             .values(True).calcs([]).fields("")))
    if max_value is not None:
        panel.max(max_value)
    _common(panel, title, ClickHouseSql(sql), pos, description)
    return panel


def bar_chart(title: str, sql: str, pos: dashboard_model.GridPos, *, x_field: str,
              unit: str = "short", labels: dict[str, str] | None = None,
              overrides: Overrides | None = None, description: str | None = None,
              ) -> barchart_builder.Panel:
    """Grouped bars: one category column (``x_field``) and one or more numeric columns."""
    panel = (barchart_builder.Panel()
             .x_field(x_field)
             .unit(unit)
             .min(0)
             .orientation(common_model.VizOrientation.HORIZONTAL)
             .show_value(common_model.VisibilityMode.AUTO)
             .stacking(common_model.StackingMode.NONE)
             .fill_opacity(80)
             .color_scheme(dashboard_builder.FieldColor()
                           .mode(dashboard_model.FieldColorModeId.PALETTE_CLASSIC))
             .legend(common_builder.VizLegendOptions()
                     .display_mode(common_model.LegendDisplayMode.LIST)
                     .placement(common_model.LegendPlacement.BOTTOM)
                     .show_legend(True))
             .tooltip(common_builder.VizTooltipOptions()
                      .mode(common_model.TooltipDisplayMode.MULTI)
                      .sort(common_model.SortOrder.NONE)))
    _common(panel, title, ClickHouseSql(sql), pos, description, labels, overrides)
    return panel


def wall_dashboard(uid: str, title: str, tags: list[str],
                   description: str | None = None) -> dashboard_builder.Dashboard:
    """A dashboard with the wall defaults: read-only, 30 s refresh, last 6 h, Vietnam time."""
    builder = (dashboard_builder.Dashboard(title)
               .uid(uid)
               .tags(tags)
               .readonly()
               .refresh(REFRESH)
               .time(TIME_FROM, TIME_TO)
               .timezone(TIMEZONE)
               .week_start("monday")
               .live_now(False)
               .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR))
    if description:
        builder.description(description)
    return builder


def add_panels(builder: dashboard_builder.Dashboard,
               panels: Sequence[cogbuilder.Builder[dashboard_model.Panel]],
               ) -> dashboard_builder.Dashboard:
    """Add panels in reading order with ids 1, 2, … (stable ids keep the JSON deterministic)."""
    for panel_id, panel in enumerate(panels, start=1):
        panel.id(panel_id)  # type: ignore[attr-defined]
        builder.with_panel(panel)
    return builder


def to_dict(obj: object) -> dict[str, Any]:
    """The SDK model as plain JSON data (what Grafana reads)."""
    data: dict[str, Any] = json.loads(json.dumps(obj, cls=JSONEncoder))
    return data


def serialise(obj: object) -> str:
    """Deterministic JSON text: sorted keys, 2-space indent, UTF-8 kept, trailing newline."""
    data = obj if isinstance(obj, dict) else to_dict(obj)
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# -- shared table cell helpers: severities and acknowledgement in every alert table ----------

SEVERITY_MAP = dashboard_model.ValueMap(options={
    "critical": dashboard_model.ValueMappingResult(text="Nghiêm trọng", color="red", index=0),
    "moderate": dashboard_model.ValueMappingResult(text="Trung bình", color="orange", index=1),
    "warning": dashboard_model.ValueMappingResult(text="Cảnh báo", color="orange", index=2),
    "minor": dashboard_model.ValueMappingResult(text="Nhẹ", color="green", index=3),
    "info": dashboard_model.ValueMappingResult(text="Thông tin", color="blue", index=4),
})
NOT_ACKED = dashboard_model.SpecialValueMap(
    options=dashboard_model.DashboardSpecialValueMapOptions(
        match=dashboard_model.SpecialValueMatch.EMPTY,
        result=dashboard_model.ValueMappingResult(text="Chưa xác nhận", color="text", index=0)))


ACK_JOIN = ("LEFT JOIN ioc.alert_acks AS k FINAL "
            "ON k.alert_id = a.alert_id AND k.starts_at = a.starts_at")
"""Join for a query on ``ioc.alerts AS a``: the latest acknowledgement of each episode
(``ioc alerts ack`` or an ack link; migration 0007). Use with :data:`ACKED_BY`."""
ACKED_BY = "if(k.acked_by != '', k.acked_by, a.acked_by)"
"""Who took the alert on (empty: nobody yet)."""


def cell(kind: str) -> dashboard_model.DynamicConfigValue:
    return dashboard_model.DynamicConfigValue("custom.cellOptions", {"type": kind})


def width(px: int) -> dashboard_model.DynamicConfigValue:
    return dashboard_model.DynamicConfigValue("custom.width", px)


def firing_count_sql(domain: str, what: str) -> str:
    """A stat query: the domain's alerts firing now (latest state of each episode), by
    severity."""
    return f"""
    -- {what} alerts firing now (latest state of each episode), by severity.
    SELECT countIf(severity = 'critical') AS critical,
           countIf(severity != 'critical') AS warning
    FROM ioc.alerts FINAL
    WHERE domain = '{domain}' AND status = 'firing' AND starts_at <= $__toTime
"""


def red_from(value: float) -> dashboard_model.DynamicConfigValue:
    """A per-column override: green below ``value``, red from it."""
    return dashboard_model.DynamicConfigValue(
        "thresholds", thresholds((None, "green"), (value, "red")).build())


def firing_table(title: str, sql: str, pos: dashboard_model.GridPos, place_label: str,
                 description: str, *, place_column: str = "area",
                 place_width: int = 260, extra_labels: dict[str, str] | None = None
                 ) -> table_builder.Panel:
    """The list of firing alerts every wall screen ends with: severity, summary, the place
    (``place_column``), since when, and who acknowledged it."""
    return table(
        title, sql, pos,
        labels={"severity": "Mức độ", "summary": "Nội dung", place_column: place_label,
                "since": "Bắt đầu lúc", "acked_by": "Người xác nhận", **(extra_labels or {})},
        overrides={
            "severity": [dashboard_model.DynamicConfigValue("mappings", [SEVERITY_MAP]),
                         cell("color-background"), width(130)],
            place_column: [width(place_width)],
            "since": [width(170)],
            "acked_by": [dashboard_model.DynamicConfigValue("mappings", [NOT_ACKED]),
                         width(160)],
        },
        description=description)


# -- wall conventions every dashboard is tested against (tests/dashboards/test_wall_rules.py) --

PALETTE = ("green", "yellow", "orange", "red", "blue", "text")
"""The only colours a wall dashboard uses (Grafana's named colours, so the theme decides the
exact shade): green good, yellow/orange attention, red bad, blue neutral counts."""

SEVERITY_COLOURS = {"critical": "red", "warning": "orange", "info": "blue"}
"""One colour per alert severity on every screen (tables, bars, maps, stats)."""

MIN_STAT_SIZE = (4, 4)
"""Smallest stat panel, (columns, rows): 320 × 144 px on a 1920×1080 kiosk screen, so its number
is readable from the back of the operations room."""

MIN_PANEL_SIZE = (6, 5)
"""Smallest chart, table or map, (columns, rows): 480 × 182 px."""
