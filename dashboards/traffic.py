"""The traffic wall screen: "Giao thông và trật tự đô thị" (uid ``ioc-traffic``).

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

====  ============================================================================
rows  panels
====  ============================================================================
0–3   four numbers: vehicles per minute, average speed, congested segments, firing alerts
4–12  vehicles per minute by segment (top 8) · congestion index by segment (top 10)
13–19 speed against free-flow speed by segment · incidents in the last hour by area
20–26 firing traffic alerts
====  ============================================================================

Data contract (see ``infra/clickhouse/migrations``): KPI rows in ``ioc.kpi`` — one per
(kpi, window, area_code, entity, window_start) when read with ``FINAL`` — and alert episodes in
``ioc.alerts`` (``FINAL``: latest state). "Now" panels read the latest window that has *ended* by
the end of the dashboard range, so a window still filling never shows as a dip. Names come from
the reference tables; an unknown segment or area shows its code.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart as barchart_builder
from grafana_foundation_sdk.builders import bargauge as bargauge_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.builders import table as table_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.dashboards.common import (
    ACK_JOIN,
    ACKED_BY,
    add_panels,
    bar_chart,
    bar_gauge,
    cell,
    firing_count_sql,
    firing_table,
    grid,
    stat,
    table,
    thresholds,
    timeseries,
    wall_dashboard,
    width,
)

UID = "ioc-traffic"
TITLE = "Giao thông và trật tự đô thị"
TAGS = ["ioc", "giao-thong", "traffic", "wall"]

CONGESTION_WARNING = 0.6
CONGESTION_CRITICAL = 0.8
TOP_SEGMENTS_FLOW = 8
TOP_SEGMENTS_CONGESTION = 10

CONGESTION_STEPS = ((None, "green"), (CONGESTION_WARNING, "orange"),
                    (CONGESTION_CRITICAL, "red"))


def _latest_window(kpi: str, window: str) -> str:
    """Start of the newest `window` of `kpi` that ended inside the dashboard range."""
    return (f"SELECT max(window_start) FROM ioc.kpi FINAL "
            f"WHERE kpi = '{kpi}' AND `window` = '{window}' "
            f"AND $__timeFilter(window_start) AND window_end <= $__toTime")


VEHICLES_NOW_SQL = f"""
    -- Province-wide vehicles in the newest finished 1-minute window.
    SELECT sumOrNull(value) AS vehicles_per_min
    FROM ioc.kpi FINAL
    WHERE kpi = 'traffic.vehicle_count' AND `window` = '1m'
      AND window_start = ({_latest_window('traffic.vehicle_count', '1m')})
"""

AVG_SPEED_SQL = f"""
    -- Vehicle-weighted mean of the segments' speeds in the newest finished 5-minute window;
    -- each segment weighs by the vehicles it counted in those 5 minutes (1m windows).
    WITH ({_latest_window('traffic.avg_speed_kmh', '5m')}) AS latest
    SELECT round(if(sum(v.vehicles) > 0,
                    sum(s.value * v.vehicles) / sum(v.vehicles),
                    avgOrNull(s.value)), 1) AS avg_speed_kmh
    FROM
    (
        SELECT entity, value
        FROM ioc.kpi FINAL
        WHERE kpi = 'traffic.avg_speed_kmh' AND `window` = '5m' AND window_start = latest
    ) AS s
    LEFT JOIN
    (
        SELECT entity, sum(value) AS vehicles
        FROM ioc.kpi FINAL
        WHERE kpi = 'traffic.vehicle_count' AND `window` = '1m'
          AND window_start >= latest AND window_start < latest + INTERVAL 5 MINUTE
        GROUP BY entity
    ) AS v ON v.entity = s.entity
"""

CONGESTED_SQL = f"""
    -- Segments whose congestion index is at or above {CONGESTION_WARNING} in the newest
    -- finished 5-minute window (NULL, shown as "no data", when that window has no rows).
    SELECT if(count() = 0, NULL, countIf(value >= {CONGESTION_WARNING})) AS congested_segments
    FROM ioc.kpi FINAL
    WHERE kpi = 'traffic.congestion_index' AND `window` = '5m'
      AND window_start = ({_latest_window('traffic.congestion_index', '5m')})
"""

FIRING_COUNT_SQL = firing_count_sql("traffic", "Traffic")

FLOW_SERIES_SQL = f"""
    -- Vehicles per minute, averaged over each interval, for the {TOP_SEGMENTS_FLOW} busiest
    -- segments of the range; finished 1-minute windows only.
    SELECT
        $__timeInterval(k.window_start) AS time,
        coalesce(nullIf(s.name_vi, ''), k.entity) AS segment,
        round(avg(k.value), 1) AS vehicles_per_min
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_road_segments AS s FINAL ON s.segment_id = k.entity
    WHERE k.kpi = 'traffic.vehicle_count' AND k.`window` = '1m'
      AND $__timeFilter(k.window_start) AND k.window_end <= $__toTime
      AND k.entity IN
      (
          SELECT entity
          FROM ioc.kpi FINAL
          WHERE kpi = 'traffic.vehicle_count' AND `window` = '1m'
            AND $__timeFilter(window_start) AND window_end <= $__toTime
          GROUP BY entity
          ORDER BY sum(value) DESC, entity
          LIMIT {TOP_SEGMENTS_FLOW}
      )
    GROUP BY time, segment
    ORDER BY time, segment
"""

CONGESTION_BY_SEGMENT_SQL = f"""
    -- Congestion index of the {TOP_SEGMENTS_CONGESTION} most congested segments in the newest
    -- finished 5-minute window.
    SELECT
        coalesce(nullIf(s.name_vi, ''), k.entity) AS segment,
        round(k.value, 2) AS congestion_index
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_road_segments AS s FINAL ON s.segment_id = k.entity
    WHERE k.kpi = 'traffic.congestion_index' AND k.`window` = '5m'
      AND k.window_start = ({_latest_window('traffic.congestion_index', '5m')})
    ORDER BY congestion_index DESC, segment
    LIMIT {TOP_SEGMENTS_CONGESTION}
"""

SPEED_TABLE_SQL = f"""
    -- Average speed against free-flow speed in the newest finished 5-minute window, slowest
    -- relative to free flow first.
    SELECT
        coalesce(nullIf(s.name_vi, ''), k.entity) AS segment,
        coalesce(nullIf(a.name_vi, ''), k.area_code) AS area,
        round(k.value, 1) AS avg_speed_kmh,
        if(s.free_flow_kmh > 0, s.free_flow_kmh, NULL) AS free_flow_kmh,
        if(s.free_flow_kmh > 0, round(k.value / s.free_flow_kmh, 2), NULL) AS speed_ratio
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_road_segments AS s FINAL ON s.segment_id = k.entity
    LEFT JOIN ioc.ref_areas AS a FINAL ON a.code = k.area_code
    WHERE k.kpi = 'traffic.avg_speed_kmh' AND k.`window` = '5m'
      AND k.window_start = ({_latest_window('traffic.avg_speed_kmh', '5m')})
    ORDER BY speed_ratio ASC NULLS LAST, segment
    LIMIT 30
"""

INCIDENTS_BY_AREA_SQL = """
    -- Incidents reported in the hour before the end of the range, by area (raw events, so
    -- the hour rolls with the clock instead of waiting for the 1h KPI window to close).
    SELECT
        coalesce(nullIf(a.name_vi, ''), i.area_code) AS area,
        count() AS incidents,
        countIf(i.severity = 'critical') AS critical
    FROM ioc.traffic_incident AS i FINAL
    LEFT JOIN ioc.ref_areas AS a FINAL ON a.code = i.area_code
    WHERE i.occurred_at > $__toTime - INTERVAL 1 HOUR AND i.occurred_at <= $__toTime
    GROUP BY area
    ORDER BY incidents DESC, area
"""

FIRING_TABLE_SQL = f"""
    -- Firing traffic alerts, critical first, newest first.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        coalesce(nullIf(s.name_vi, ''), nullIf(a.entity, ''), nullIf(ar.name_vi, ''),
                 a.area_code) AS segment,
        a.starts_at AS since,
        {ACKED_BY} AS acked_by
    FROM ioc.alerts AS a FINAL
    {ACK_JOIN}
    LEFT JOIN ioc.ref_road_segments AS s FINAL ON s.segment_id = a.entity
    LEFT JOIN ioc.ref_areas AS ar FINAL ON ar.code = a.area_code
    WHERE a.domain = 'traffic' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 50
"""



def _vehicles_now() -> stat_builder.Panel:
    return stat("Lưu lượng hiện tại (xe/phút)", VEHICLES_NOW_SQL, grid(0, 0, 6, 4),
                unit="short", decimals=0,
                description="Tổng số xe qua các điểm đo toàn tỉnh trong phút gần nhất đã kết thúc.")


def _avg_speed() -> stat_builder.Panel:
    return stat("Tốc độ trung bình (km/h)", AVG_SPEED_SQL, grid(6, 0, 6, 4),
                unit="velocitykmh", decimals=1,
                steps=((None, "red"), (20, "orange"), (35, "green")),
                description="Tốc độ trung bình toàn tỉnh, có trọng số theo số xe, "
                            "trong khung 5 phút gần nhất.")


def _congested() -> stat_builder.Panel:
    return stat("Đoạn đường ùn tắc", CONGESTED_SQL, grid(12, 0, 6, 4),
                unit="short", decimals=0,
                steps=((None, "green"), (1, "orange"), (3, "red")),
                description=f"Số đoạn đường có chỉ số ùn tắc ≥ {CONGESTION_WARNING} "
                            "trong khung 5 phút gần nhất.")


def _firing_count() -> stat_builder.Panel:
    return stat("Cảnh báo giao thông đang bật", FIRING_COUNT_SQL, grid(18, 0, 6, 4),
                unit="short", decimals=0, steps=((None, "green"), (1, "orange")),
                labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
                overrides={"critical": [dashboard_model.DynamicConfigValue(
                    "thresholds", thresholds((None, "green"), (1, "red")).build())]},
                description="Số cảnh báo giao thông chưa kết thúc, theo mức độ.")


def _flow_series() -> timeseries_builder.Panel:
    return timeseries("Lưu lượng xe theo thời gian (xe/phút)", FLOW_SERIES_SQL,
                      grid(0, 4, 14, 9), unit="short", series_label="segment",
                      description=f"{TOP_SEGMENTS_FLOW} đoạn đường đông xe nhất trong khoảng "
                                  "thời gian đang xem; số xe trung bình mỗi phút.")


def _congestion_by_segment() -> bargauge_builder.Panel:
    return bar_gauge("Chỉ số ùn tắc theo đoạn đường", CONGESTION_BY_SEGMENT_SQL,
                     grid(14, 4, 10, 9), unit="none", min_value=0, max_value=1,
                     steps=CONGESTION_STEPS,
                     description="Chỉ số ùn tắc = 1 − tốc độ / tốc độ tự do (khung 5 phút gần "
                                 f"nhất); cam từ {CONGESTION_WARNING}, đỏ từ "
                                 f"{CONGESTION_CRITICAL}.")


def _speed_table() -> table_builder.Panel:
    ratio_steps = ((None, "red"), (round(1 - CONGESTION_CRITICAL, 2), "orange"),
                   (round(1 - CONGESTION_WARNING, 2), "green"))
    return table(
        "Tốc độ so với tốc độ tự do", SPEED_TABLE_SQL, grid(0, 13, 14, 7),
        labels={"segment": "Đoạn đường", "area": "Địa bàn", "avg_speed_kmh": "Tốc độ TB (km/h)",
                "free_flow_kmh": "Tốc độ tự do (km/h)", "speed_ratio": "Tỷ lệ tốc độ"},
        overrides={
            "area": [width(170)],
            "avg_speed_kmh": [width(140)],
            "free_flow_kmh": [width(150)],
            "speed_ratio": [
                dashboard_model.DynamicConfigValue("unit", "percentunit"),
                dashboard_model.DynamicConfigValue("decimals", 0),
                dashboard_model.DynamicConfigValue("thresholds",
                                                   thresholds(*ratio_steps).build()),
                dashboard_model.DynamicConfigValue("color", {"mode": "thresholds"}),
                cell("color-background"),
                width(130),
            ],
        },
        description="Khung 5 phút gần nhất; đoạn chậm nhất so với tốc độ tự do đứng đầu. "
                    f"Đỏ: dưới {1 - CONGESTION_CRITICAL:.0%} tốc độ tự do "
                    f"(chỉ số ùn tắc ≥ {CONGESTION_CRITICAL}).")


def _incidents_by_area() -> barchart_builder.Panel:
    return bar_chart(
        "Sự cố trong 1 giờ qua theo địa bàn", INCIDENTS_BY_AREA_SQL, grid(14, 13, 10, 7),
        x_field="area", unit="short",
        labels={"incidents": "Tổng số sự cố", "critical": "Nghiêm trọng"},
        overrides={
            "critical": [dashboard_model.DynamicConfigValue(
                "color", {"mode": "fixed", "fixedColor": "red"})],
            "incidents": [dashboard_model.DynamicConfigValue(
                "color", {"mode": "fixed", "fixedColor": "orange"})],
        },
        description="Sự cố giao thông ghi nhận trong 60 phút tính đến cuối khoảng thời gian "
                    "đang xem.")


def build() -> dashboard_model.Dashboard:
    """The traffic wall dashboard model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tường giao thông: lưu lượng, tốc độ, ùn tắc, sự cố và cảnh báo "
                    "trên các tuyến đường của tỉnh.")
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        _vehicles_now(), _avg_speed(), _congested(), _firing_count(),
        _flow_series(), _congestion_by_segment(),
        _speed_table(), _incidents_by_area(),
        firing_table("Danh sách cảnh báo đang bật", FIRING_TABLE_SQL, grid(0, 20, 24, 7),
                     "Đoạn đường / địa bàn",
                     "Cảnh báo ùn tắc và sự cố nghiêm trọng chưa kết thúc; nghiêm trọng trước, "
                     "mới nhất trước.", place_column="segment", place_width=300),
    ]
    add_panels(builder, panels)
    return builder.build()
