"""The province overview wall screen: "Toàn cảnh tỉnh" (uid ``ioc-overview``).

The screen leaders glance at: one 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling.

====  ============================================================================
rows  panels
====  ============================================================================
0–7   the situation level (1–5, large, coloured; rules in :mod:`ioc.dashboards.situation`) ·
      one headline number per subsystem, each linking to that subsystem's screen
8–18  map of the administrative units coloured by their worst active alert · active alerts
      per subsystem (critical / warning, acknowledged)
19–26 every firing alert of the province, critical first
====  ============================================================================

Every number is "as of the end of the time range" (``$__toTime``), so the screen can be
replayed. Data: ``ioc.kpi FINAL`` (headline KPIs), ``ioc.alerts FINAL``, ``ioc.ref_areas``.
Headline KPIs read only ``ioc.kpi`` — never a subsystem's raw table — so the overview works for a
deployment that runs only some subsystems (a missing subsystem shows "Không có dữ liệu").
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import geomap as geomap_builder
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.dashboards.common import (
    DATASOURCE,
    ClickHouseSql,
    add_panels,
    bar_chart,
    firing_table,
    grid,
    stat,
    thresholds,
    wall_dashboard,
)
from ioc.dashboards.situation import LEVELS, active_alerts_where, situation_sql

UID = "ioc-overview"
TITLE = "Toàn cảnh tỉnh"
TAGS = ["ioc", "toan-canh", "overview", "wall"]

DOMAIN_VI = {
    "traffic": "Giao thông",
    "security": "An ninh trật tự",
    "cyber": "Thông tin trên mạng, ATTT",
    "econ": "Kinh tế – xã hội",
    "egov": "Chính quyền điện tử",
    "health": "Y tế",
    "edu": "Giáo dục",
    "feedback": "Phản ánh kiến nghị",
}


def domain_label(column: str) -> str:
    codes = ", ".join(f"'{c}'" for c in DOMAIN_VI)
    names = ", ".join(f"'{n}'" for n in DOMAIN_VI.values())
    return f"transform({column}, [{codes}], [{names}], {column})"


def _latest_window(kpi: str, window: str) -> str:
    """Condition: rows of ``kpi`` in its newest ``window`` window that started by the end of
    the range (the current window's provisional value while it is open)."""
    return f"""kpi = '{kpi}' AND `window` = '{window}' AND window_end = (
            SELECT max(window_end) FROM ioc.kpi FINAL
            WHERE kpi = '{kpi}' AND `window` = '{window}' AND window_start <= $__toTime)"""


@dataclass(frozen=True)
class Headline:
    """One subsystem's number on the overview: a one-row query, its unit and colours, and the
    subsystem screen it links to."""

    title: str
    sql: str
    unit: str
    steps: tuple[tuple[float | None, str], ...]
    link_uid: str
    description: str
    decimals: int = 0


HEADLINES: tuple[Headline, ...] = (
    Headline(
        "Giao thông: đoạn ùn tắc",
        f"""
    -- Road segments with congestion index >= 0.6 in the newest 5-minute window.
    SELECT countIf(value >= 0.6) AS congested
    FROM ioc.kpi FINAL
    WHERE {_latest_window('traffic.congestion_index', '5m')}
""", "short", ((None, "green"), (1, "orange"), (3, "red")), "ioc-traffic",
        "Số đoạn đường có chỉ số ùn tắc ≥ 0,6 trong khung 5 phút gần nhất."),
    Headline(
        "An ninh trật tự: vụ việc hôm nay",
        f"""
    -- Public-order incidents in the newest local day (all areas and types).
    SELECT sum(value) AS incidents
    FROM ioc.kpi FINAL
    WHERE {_latest_window('security.incidents', '1d')}
""", "short", ((None, "green"), (10, "orange"), (30, "red")), "ioc-security",
        "Số vụ việc an ninh trật tự trong ngày (tính từ 0 giờ)."),
    Headline(
        "Tin tiêu cực trên mạng",
        f"""
    -- Negative share of all mentions in the newest hour (weighted by mentions).
    SELECT if(sum(sample_count) = 0, NULL, sum(value * sample_count) / sum(sample_count))
        AS negative_share
    FROM ioc.kpi FINAL
    WHERE {_latest_window('cyber.negative_share', '1h')}
""", "percentunit", ((None, "green"), (0.3, "orange"), (0.5, "red")), "ioc-cyber",
        "Tỷ lệ đề cập tiêu cực trên tổng số đề cập trong giờ gần nhất, mọi chủ đề."),
    Headline(
        "Kinh tế: chỉ tiêu chậm tiến độ",
        f"""
    -- Econ indicators behind the pro-rata plan right now (firing behind-plan alerts).
    SELECT count() AS behind
    FROM ioc.alerts FINAL
    WHERE domain = 'econ' AND rule = 'econ.behind_plan' AND {active_alerts_where('$__toTime')}
""", "short", ((None, "green"), (1, "orange")), "ioc-econ",
        "Số chỉ tiêu kinh tế – xã hội đang chậm so với tiến độ kế hoạch năm."),
    Headline(
        "Hồ sơ đúng hạn (30 ngày)",
        f"""
    -- Province on-time rate of resolved dossiers over 30 days (weighted by resolved count).
    SELECT if(sum(sample_count) = 0, NULL, sum(value * sample_count) / sum(sample_count))
        AS on_time
    FROM ioc.kpi FINAL
    WHERE {_latest_window('egov.on_time_rate', '30d')}
""", "percentunit", ((None, "red"), (0.9, "orange"), (0.95, "green")), "ioc-egov",
        "Tỷ lệ hồ sơ thủ tục hành chính giải quyết đúng hạn trong 30 ngày, toàn tỉnh.", 1),
    Headline(
        "Y tế: giường bệnh đã dùng",
        """
    -- Beds occupied / beds total over all facilities, latest status of each facility.
    SELECT if(sum(total) = 0, NULL, sum(occupied) / sum(total)) AS occupancy
    FROM (
        SELECT entity, argMax(value * sample_count, window_end) AS occupied,
               argMax(sample_count, window_end) AS total
        FROM ioc.kpi FINAL
        WHERE kpi = 'health.bed_occupancy' AND window_end <= $__toTime
        GROUP BY entity)
""", "percentunit", ((None, "green"), (0.9, "orange"), (0.95, "red")), "ioc-health",
        "Công suất sử dụng giường bệnh toàn tỉnh theo báo cáo mới nhất của từng cơ sở."),
    Headline(
        "Giáo dục: chuyên cần",
        f"""
    -- Attendance rate in the newest school day, all areas (weighted by enrolment; the
    -- per-area rows, entity '', not the per-level ones).
    SELECT if(sum(sample_count) = 0, NULL, sum(value * sample_count) / sum(sample_count))
        AS attendance
    FROM ioc.kpi FINAL
    WHERE {_latest_window('edu.attendance_rate', '1d')} AND entity = ''
""", "percentunit", ((None, "red"), (0.85, "orange"), (0.95, "green")), "ioc-edu",
        "Tỷ lệ học sinh đi học trong ngày học gần nhất, toàn tỉnh.", 1),
    Headline(
        "Phản ánh tồn đọng",
        """
    -- Open citizen reports now: the newest backlog gauge of every agency.
    SELECT sum(v) AS backlog
    FROM (
        SELECT entity, argMax(value, window_end) AS v
        FROM ioc.kpi FINAL
        WHERE kpi = 'feedback.backlog' AND window_end <= $__toTime
          AND window_end > $__toTime - INTERVAL 1 DAY
        GROUP BY entity)
""", "short", ((None, "green"), (50, "orange"), (200, "red")), "ioc-feedback",
        "Số phản ánh của người dân chưa giải quyết xong, mọi cơ quan."),
)

AREA_MAP_SQL = f"""
    -- Each administrative unit with a position, its worst active alert (0 none, 1 warning,
    -- 2 critical) and how many alerts are active there.
    SELECT r.name_vi AS area, r.lat AS lat, r.lon AS lon,
           coalesce(a.worst, 0) AS worst, coalesce(a.active, 0) AS active
    FROM ioc.ref_areas AS r FINAL
    LEFT JOIN (
        SELECT area_code, max(severity = 'critical') + 1 AS worst, count() AS active
        FROM ioc.alerts FINAL
        WHERE {active_alerts_where('$__toTime')}
        GROUP BY area_code
    ) AS a ON a.area_code = r.code
    WHERE r.lat IS NOT NULL AND r.level != 'province'
    ORDER BY worst DESC, active DESC, area
"""

BY_DOMAIN_SQL = f"""
    -- Active alerts per subsystem, by severity.
    SELECT {domain_label('domain')} AS subsystem,
           countIf(severity = 'critical') AS critical,
           countIf(severity = 'warning') AS warning
    FROM ioc.alerts FINAL
    WHERE {active_alerts_where('$__toTime')}
    GROUP BY domain
    ORDER BY critical DESC, warning DESC, subsystem
"""

FIRING_SQL = f"""
    -- Every firing alert of the province, critical first, newest first.
    SELECT
        a.severity AS severity,
        {domain_label('a.domain')} AS subsystem,
        a.summary AS summary,
        coalesce(nullIf(ar.name_vi, ''), nullIf(a.area_code, ''), 'Toàn tỉnh') AS area,
        a.starts_at AS since,
        a.acked_by AS acked_by
    FROM ioc.alerts AS a FINAL
    LEFT JOIN ioc.ref_areas AS ar FINAL ON ar.code = a.area_code
    WHERE a.status = 'firing' AND a.starts_at <= $__toTime
      AND a.severity IN ('warning', 'critical')
    ORDER BY a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 100
"""


def _situation() -> stat_builder.Panel:
    level_map = dashboard_model.ValueMap(options={
        str(lv.level): dashboard_model.ValueMappingResult(
            text=f"{lv.level} · {lv.name_vi}", color=lv.colour, index=lv.level - 1)
        for lv in LEVELS})
    panel = stat("Mức độ tình hình", situation_sql(), grid(0, 0, 4, 8), unit="none",
                 decimals=0, steps=tuple((None if lv.level == 1 else float(lv.level), lv.colour)
                                         for lv in LEVELS),
                 description="Tính từ các cảnh báo đang bật: "
                             + " ".join(f"{lv.level} – {lv.name_vi}: {lv.rule_vi}"
                                        for lv in LEVELS))
    # Only the level is shown (the counts behind it are in the query for Explore).
    panel.mappings([level_map]).reduce_options(
        common_builder.ReduceDataOptions().calcs(["lastNotNull"]).fields("/^level$/")
        .values(False))
    return panel


def _headline(h: Headline, x: int, y: int) -> stat_builder.Panel:
    panel = stat(h.title, h.sql, grid(x, y, 5, 4), unit=h.unit, decimals=h.decimals,
                 steps=h.steps, description=h.description)
    panel.links([dashboard_builder.DashboardLink(h.title)
                 .type(dashboard_model.DashboardLinkType.LINK)
                 .url(f"/d/{h.link_uid}?${{__url_time_range}}")
                 .tooltip("Mở màn hình của lĩnh vực")])
    panel.no_value("Không có dữ liệu")
    return panel


def _area_map() -> geomap_builder.Panel:
    panel = (geomap_builder.Panel()
             .title("Bản đồ cảnh báo theo địa bàn")
             .description("Mỗi địa bàn tô theo cảnh báo nặng nhất đang bật: xanh – không có, "
                          "cam – cảnh báo, đỏ – nghiêm trọng. Vị trí là tâm gần đúng của địa bàn.")
             .datasource(DATASOURCE)
             .grid_pos(grid(0, 8, 12, 11))
             .with_target(ClickHouseSql(AREA_MAP_SQL))
             .view(geomap_builder.MapViewConfig().id("coords").lat(15).lon(108).zoom(8))
             .controls(geomap_builder.ControlsOptions().show_zoom(False)
                       .mouse_wheel_zoom(False).show_attribution(True))
             .basemap(_basemap())
             .layers([_area_layer()])
             .thresholds(thresholds((None, "green"), (1, "orange"), (2, "red")))
             .color_scheme(dashboard_builder.FieldColor()
                           .mode(dashboard_model.FieldColorModeId.THRESHOLDS)))
    return panel


def _basemap() -> cogbuilder.Builder[common_model.MapLayerOptions]:
    """Grafana's default base layer needs map tiles from the internet; an offline operations
    room sets its own tile server in Grafana (``[geomap] default_baselayer_config``)."""
    return common_builder.MapLayerOptions().type("default").name("Nền bản đồ")


def _area_layer() -> cogbuilder.Builder[common_model.MapLayerOptions]:
    """One marker per unit at its centroid, coloured by ``worst``, sized by ``active``."""
    return (common_builder.MapLayerOptions()
            .type("markers")
            .name("Địa bàn")
            .location(common_builder.FrameGeometrySource()
                      .mode(common_model.FrameGeometrySourceMode.COORDS)
                      .latitude("lat").longitude("lon"))
            .config({
                "showLegend": False,
                "style": {
                    "color": {"field": "worst", "fixed": "green"},
                    "size": {"field": "active", "fixed": 14, "min": 14, "max": 36},
                    "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                    "opacity": 0.8,
                    "text": {"field": "area", "mode": "field"},
                    "textConfig": {"fontSize": 14, "offsetY": -22, "textAlign": "center",
                                   "textBaseline": "middle"},
                },
            })
            .tooltip(True))


def _by_domain() -> cogbuilder.Builder[dashboard_model.Panel]:
    return bar_chart(
        "Cảnh báo đang bật theo lĩnh vực", BY_DOMAIN_SQL, grid(12, 8, 12, 11),
        x_field="subsystem",
        labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
        overrides={
            "critical": [dashboard_model.DynamicConfigValue(
                "color", {"mode": "fixed", "fixedColor": "red"})],
            "warning": [dashboard_model.DynamicConfigValue(
                "color", {"mode": "fixed", "fixedColor": "orange"})],
        },
        description="Số cảnh báo chưa kết thúc của từng lĩnh vực, theo mức độ.")


def build() -> dashboard_model.Dashboard:
    """The overview wall dashboard model (a fresh object on every call)."""
    builder = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tổng quan cho lãnh đạo: mức độ tình hình, chỉ số chính của từng "
                    "lĩnh vực, bản đồ và danh sách cảnh báo đang bật.")
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [_situation()]
    for i, h in enumerate(HEADLINES):
        panels.append(_headline(h, 4 + 5 * (i % 4), 4 * (i // 4)))
    panels += [
        _area_map(), _by_domain(),
        firing_table("Cảnh báo đang bật trên toàn tỉnh", FIRING_SQL, grid(0, 19, 24, 8),
                     "Địa bàn", "Mọi cảnh báo chưa kết thúc; nghiêm trọng trước, mới nhất "
                     "trước.", place_column="area", place_width=200,
                     extra_labels={"subsystem": "Lĩnh vực"}),
    ]
    add_panels(builder, panels)
    return builder.build()
