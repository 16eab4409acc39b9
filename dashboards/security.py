"""The public-order wall screen: "An ninh trật tự" (uid ``ioc-security``).

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

====  ============================================================================
rows  panels
====  ============================================================================
0–3   four numbers (24 hours before the end of the range): incidents, critical incidents,
      casualties, firing security alerts
4–12  incidents per hour by type (1h KPI) · incidents by area in the last 24 hours
13–19 incidents by type today (1d KPI) · latest incidents
20–26 firing security alerts
====  ============================================================================

Data: ``ioc.kpi`` rows of ``security.incidents`` (1h and 1d, entity = incident type), raw
``ioc.security_incident`` for rolling 24-hour figures and the latest list, ``ioc.alerts`` for
alerts; always ``FINAL``. Type names are translated in SQL (``transform``) from the same table
the alert summaries use, so the wall and the alerts say the same words.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.dashboards.common import (
    ACK_JOIN,
    ACKED_BY,
    SEVERITY_MAP,
    add_panels,
    bar_chart,
    bar_gauge,
    cell,
    firing_count_sql,
    firing_table,
    grid,
    red_from,
    stat,
    table,
    timeseries,
    wall_dashboard,
    width,
)
from ioc.streams.security import INCIDENT_TYPE_VI

UID = "ioc-security"
TITLE = "An ninh trật tự"
TAGS = ["ioc", "an-ninh-trat-tu", "security", "wall"]


def type_label(column: str) -> str:
    """SQL turning an incident-type code into its Vietnamese name (unknown codes stay)."""
    codes = ", ".join(f"'{c}'" for c in INCIDENT_TYPE_VI)
    names = ", ".join(f"'{n}'" for n in INCIDENT_TYPE_VI.values())
    return f"transform({column}, [{codes}], [{names}], {column})"


_LAST_24H = ("i.occurred_at > $__toTime - INTERVAL 24 HOUR AND i.occurred_at <= $__toTime")

TOTALS_SQL = f"""
    -- Incidents, critical incidents and casualties in the 24 hours before the end of the range.
    SELECT count() AS incidents,
           countIf(i.severity = 'critical') AS critical,
           sum(i.casualties) AS casualties
    FROM ioc.security_incident AS i FINAL
    WHERE {_LAST_24H}
"""

FIRING_COUNT_SQL = firing_count_sql("security", "Security")

HOURLY_SQL = f"""
    -- Incidents per hour by type, from the 1h KPI (the hour still open shows its count so far).
    SELECT
        k.window_start AS time,
        {type_label('k.entity')} AS incident_type,
        sum(k.value) AS incidents
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'security.incidents' AND k.`window` = '1h' AND $__timeFilter(k.window_start)
    GROUP BY time, incident_type
    ORDER BY time, incident_type
"""

BY_AREA_SQL = f"""
    -- Incidents by area in the 24 hours before the end of the range (raw events).
    SELECT
        coalesce(nullIf(a.name_vi, ''), i.area_code) AS area,
        count() AS incidents,
        countIf(i.severity = 'critical') AS critical
    FROM ioc.security_incident AS i FINAL
    LEFT JOIN ioc.ref_areas AS a FINAL ON a.code = i.area_code
    WHERE {_LAST_24H}
    GROUP BY area
    ORDER BY incidents DESC, area
"""

TODAY_BY_TYPE_SQL = f"""
    -- Incidents by type today (Vietnam time): the newest 1d window that started by the end of
    -- the range, final or still filling.
    SELECT
        {type_label('k.entity')} AS incident_type,
        sum(k.value) AS incidents
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'security.incidents' AND k.`window` = '1d'
      AND k.window_start =
      (
          SELECT max(window_start) FROM ioc.kpi FINAL
          WHERE kpi = 'security.incidents' AND `window` = '1d' AND window_start <= $__toTime
      )
    GROUP BY incident_type
    ORDER BY incidents DESC, incident_type
"""

LATEST_SQL = f"""
    -- The newest incidents up to the end of the range.
    SELECT
        i.occurred_at AS time,
        coalesce(nullIf(a.name_vi, ''), i.area_code) AS area,
        {type_label('i.incident_type')} AS incident_type,
        i.severity AS severity,
        i.casualties AS casualties,
        i.description AS description
    FROM ioc.security_incident AS i FINAL
    LEFT JOIN ioc.ref_areas AS a FINAL ON a.code = i.area_code
    WHERE $__timeFilter(i.occurred_at)
    ORDER BY i.occurred_at DESC, i.event_id
    LIMIT 30
"""

FIRING_TABLE_SQL = f"""
    -- Firing security alerts, newest first.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        coalesce(nullIf(ar.name_vi, ''), a.area_code) AS area,
        a.starts_at AS since,
        {ACKED_BY} AS acked_by
    FROM ioc.alerts AS a FINAL
    {ACK_JOIN}
    LEFT JOIN ioc.ref_areas AS ar FINAL ON ar.code = a.area_code
    WHERE a.domain = 'security' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 50
"""



def build() -> dashboard_model.Dashboard:
    """The public-order wall dashboard model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tường an ninh trật tự: vụ việc theo loại, địa bàn, mức độ và "
                    "cảnh báo.")
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        stat("Vụ việc trong 24 giờ qua", TOTALS_SQL, grid(0, 0, 12, 4), decimals=0,
             labels={"incidents": "Tổng số", "critical": "Nghiêm trọng",
                     "casualties": "Thương vong"},
             overrides={"critical": [red_from(1)], "casualties": [red_from(1)]},
             description="Số vụ việc, số vụ nghiêm trọng và số người thương vong trong 24 giờ "
                         "tính đến cuối khoảng thời gian đang xem."),
        stat("Cảnh báo an ninh đang bật", FIRING_COUNT_SQL, grid(12, 0, 12, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
             overrides={"critical": [red_from(1)]},
             description="Số cảnh báo an ninh trật tự chưa kết thúc, theo mức độ."),
        timeseries("Vụ việc theo giờ và loại", HOURLY_SQL, grid(0, 4, 14, 9),
                   series_label="incident_type", min_interval="1h",
                   description="Số vụ việc mỗi giờ theo loại (khung 1 giờ; giờ đang diễn ra "
                               "là số tạm tính)."),
        bar_chart("Vụ việc theo địa bàn (24 giờ qua)", BY_AREA_SQL, grid(14, 4, 10, 9),
                  x_field="area",
                  labels={"incidents": "Tổng số vụ việc", "critical": "Nghiêm trọng"},
                  overrides={
                      "critical": [dashboard_model.DynamicConfigValue(
                          "color", {"mode": "fixed", "fixedColor": "red"})],
                      "incidents": [dashboard_model.DynamicConfigValue(
                          "color", {"mode": "fixed", "fixedColor": "orange"})]},
                  description="Vụ việc trong 24 giờ tính đến cuối khoảng thời gian đang xem."),
        bar_gauge("Vụ việc hôm nay theo loại", TODAY_BY_TYPE_SQL, grid(0, 13, 9, 7),
                  steps=((None, "green"), (5, "orange"), (10, "red")),
                  description="Từ 0 giờ (giờ Việt Nam) đến nay, theo loại vụ việc."),
        table("Vụ việc mới nhất", LATEST_SQL, grid(9, 13, 15, 7),
              labels={"time": "Thời gian", "area": "Địa bàn", "incident_type": "Loại",
                      "severity": "Mức độ", "casualties": "Thương vong",
                      "description": "Mô tả"},
              overrides={"time": [width(160)], "area": [width(170)],
                         "incident_type": [width(190)],
                         "severity": [dashboard_model.DynamicConfigValue("mappings",
                                                                         [SEVERITY_MAP]),
                                      cell("color-background"), width(120)],
                         "casualties": [width(100)]},
              description="30 vụ việc gần nhất trong khoảng thời gian đang xem."),
        firing_table("Cảnh báo an ninh trật tự đang bật", FIRING_TABLE_SQL, grid(0, 20, 24, 7),
                     "Địa bàn", "Vụ việc nghiêm trọng chưa kết thúc; mới nhất trước."),
    ]
    add_panels(builder, panels)
    return builder.build()
