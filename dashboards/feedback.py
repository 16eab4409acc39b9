"""The citizen-feedback wall screen: "Phản ánh kiến nghị" (uid ``ioc-feedback``).

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

====  ============================================================================
rows  panels
====  ============================================================================
0–3   new reports today · open reports now (and unassigned) · on-time rate (30 days, all
      agencies) · satisfaction (30 days) · firing feedback alerts
4–12  new reports today by category · open reports by agency · on-time rate by agency
13–19 new reports per hour by category (1h KPI) · results by agency over 30 days (resolved,
      on time, hours to resolve, satisfaction)
20–26 overdue reports (no personal data) · firing feedback alerts
====  ============================================================================

Data: ``ioc.kpi`` rows of ``feedback.new_reports`` (1h, 1d), ``feedback.backlog`` (1m gauge:
the newest minute up to the end of the range), ``feedback.on_time_rate``,
``feedback.resolution_hours`` and ``feedback.satisfaction`` (30d windows: the one ending at the
end of the Vietnam day that contains the end of the range); ``ioc.alerts``; the raw
``ioc.feedback_report`` only for the category, agency and due time of overdue reports; names
from ``ref_areas``, ``ref_feedback_categories`` and ``ref_feedback_agencies``. Always ``FINAL``.
Rates of several agencies combine exactly as Σ value·sample_count / Σ sample_count. No panel
reads a description, an address or a reporter pseudonym: the wall shows no personal data.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.dashboards.common import (
    SEVERITY_MAP,
    add_panels,
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
from ioc.streams.feedback import UNASSIGNED

UID = "ioc-feedback"
TITLE = "Phản ánh kiến nghị"
TAGS = ["ioc", "phan-anh-kien-nghi", "feedback", "wall"]

ON_TIME_TARGET = 0.95
ON_TIME_STEPS = ((None, "red"), (0.8, "orange"), (ON_TIME_TARGET, "green"))

_TODAY = "toStartOfDay($__toTime, 'Asia/Ho_Chi_Minh')"
_ROLLING_END = f"{_TODAY} + INTERVAL 1 DAY"
_LATEST_GAUGE = """(
          SELECT max(window_end) FROM ioc.kpi FINAL
          WHERE kpi = 'feedback.backlog' AND `window` = '1m' AND window_end <= $__toTime
      )"""


def _agency_name(code: str, name: str = "ag.name_vi") -> str:
    return (f"multiIf({code} = '{UNASSIGNED}', 'Chưa phân công', "
            f"coalesce(nullIf({name}, ''), {code}))")


NEW_TODAY_SQL = f"""
    -- Reports submitted today (from 0:00 Vietnam time of the day the range ends in).
    SELECT sum(k.value) AS reports
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'feedback.new_reports' AND k.`window` = '1d' AND k.window_start = {_TODAY}
"""

OPEN_NOW_SQL = f"""
    -- Open reports at the newest backlog minute up to the end of the range.
    SELECT sum(k.value) AS open_reports,
           sumIf(k.value, k.entity = '{UNASSIGNED}') AS unassigned
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'feedback.backlog' AND k.`window` = '1m'
      AND k.window_end = {_LATEST_GAUGE}
"""

ON_TIME_SQL = f"""
    -- On-time rate of all agencies over the 30 days ending tonight: resolved by the due time /
    -- resolved.
    SELECT sum(k.value * k.sample_count) / nullIf(sum(k.sample_count), 0) AS on_time
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'feedback.on_time_rate' AND k.`window` = '30d'
      AND k.window_end = {_ROLLING_END}
"""

SATISFACTION_SQL = f"""
    -- Mean rating (1–5) of reports resolved in the 30 days ending tonight.
    SELECT sum(k.value * k.sample_count) / nullIf(sum(k.sample_count), 0) AS satisfaction
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'feedback.satisfaction' AND k.`window` = '30d'
      AND k.window_end = {_ROLLING_END}
"""

FIRING_COUNT_SQL = firing_count_sql("feedback", "Feedback")

TODAY_BY_CATEGORY_SQL = f"""
    -- Reports submitted today by category.
    SELECT coalesce(nullIf(c.name_vi, ''), k.entity) AS category,
           sum(k.value) AS reports
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_feedback_categories AS c FINAL ON c.code = k.entity
    WHERE k.kpi = 'feedback.new_reports' AND k.`window` = '1d' AND k.window_start = {_TODAY}
    GROUP BY category
    ORDER BY reports DESC, category
"""

BACKLOG_BY_AGENCY_SQL = f"""
    -- Open reports per agency at the newest backlog minute up to the end of the range.
    SELECT {_agency_name('k.entity')} AS agency,
           k.value AS open_reports
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_feedback_agencies AS ag FINAL ON ag.agency = k.entity
    WHERE k.kpi = 'feedback.backlog' AND k.`window` = '1m'
      AND k.window_end = {_LATEST_GAUGE}
    ORDER BY open_reports DESC, agency
"""

ON_TIME_BY_AGENCY_SQL = f"""
    -- On-time rate per agency over the 30 days ending tonight.
    SELECT {_agency_name('k.entity')} AS agency,
           k.value AS on_time
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_feedback_agencies AS ag FINAL ON ag.agency = k.entity
    WHERE k.kpi = 'feedback.on_time_rate' AND k.`window` = '30d'
      AND k.window_end = {_ROLLING_END}
    ORDER BY on_time, agency
"""

HOURLY_SQL = """
    -- New reports per hour by category, from the 1h KPI (the open hour shows its count so far).
    SELECT
        k.window_start AS time,
        coalesce(nullIf(c.name_vi, ''), k.entity) AS category,
        sum(k.value) AS reports
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_feedback_categories AS c FINAL ON c.code = k.entity
    WHERE k.kpi = 'feedback.new_reports' AND k.`window` = '1h' AND $__timeFilter(k.window_start)
    GROUP BY time, category
    ORDER BY time, category
"""

RESULTS_BY_AGENCY_SQL = f"""
    -- Reports resolved per agency in the 30 days ending tonight: how many, on time, mean
    -- hours from submission to resolution, mean rating and how many ratings.
    SELECT
        {_agency_name('r.entity')} AS agency,
        r.resolved AS resolved,
        r.on_time AS on_time,
        r.hours AS hours,
        r.satisfaction AS satisfaction,
        r.ratings AS ratings
    FROM
    (
        SELECT
            k.entity AS entity,
            maxIf(k.sample_count, k.kpi = 'feedback.on_time_rate') AS resolved,
            maxIf(k.value, k.kpi = 'feedback.on_time_rate') AS on_time,
            maxIf(k.value, k.kpi = 'feedback.resolution_hours') AS hours,
            if(countIf(k.kpi = 'feedback.satisfaction') = 0, NULL,
               maxIf(k.value, k.kpi = 'feedback.satisfaction')) AS satisfaction,
            maxIf(k.sample_count, k.kpi = 'feedback.satisfaction') AS ratings
        FROM ioc.kpi AS k FINAL
        WHERE k.`window` = '30d' AND k.window_end = {_ROLLING_END}
          AND k.kpi IN ('feedback.on_time_rate', 'feedback.resolution_hours',
                        'feedback.satisfaction')
        GROUP BY entity
    ) AS r
    LEFT JOIN ioc.ref_feedback_agencies AS ag FINAL ON ag.agency = r.entity
    ORDER BY on_time, agency
"""

OVERDUE_SQL = """
    -- Reports overdue now (firing feedback.overdue alerts), oldest due time first; category,
    -- agency and due time from the report's latest steps. No description, address or reporter.
    SELECT
        a.entity AS report_id,
        coalesce(nullIf(c.name_vi, ''), r.category) AS category,
        coalesce(nullIf(ar.name_vi, ''), a.area_code) AS area,
        multiIf(r.agency = '', 'Chưa phân công', coalesce(nullIf(ag.name_vi, ''), r.agency))
            AS agency,
        r.due_at AS due_at,
        round(dateDiff('minute', r.due_at, $__toTime) / 1440, 1) AS days_overdue,
        a.severity AS severity
    FROM ioc.alerts AS a FINAL
    LEFT JOIN
    (
        SELECT
            f.report_id AS report_id,
            argMax(f.category, f.occurred_at) AS category,
            argMaxIf(f.assigned_agency, f.occurred_at, f.assigned_agency != '') AS agency,
            argMaxIf(f.due_at, f.occurred_at, isNotNull(f.due_at)) AS due_at
        FROM ioc.feedback_report AS f FINAL
        WHERE f.occurred_at <= $__toTime
          AND f.report_id IN
          (
              SELECT entity FROM ioc.alerts FINAL
              WHERE rule = 'feedback.overdue' AND status = 'firing'
          )
        GROUP BY f.report_id
    ) AS r ON r.report_id = a.entity
    LEFT JOIN ioc.ref_feedback_categories AS c FINAL ON c.code = r.category
    LEFT JOIN ioc.ref_areas AS ar FINAL ON ar.code = a.area_code
    LEFT JOIN ioc.ref_feedback_agencies AS ag FINAL ON ag.agency = r.agency
    WHERE a.rule = 'feedback.overdue' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY due_at, report_id
    LIMIT 100
"""

FIRING_TABLE_SQL = """
    -- Firing feedback alerts (overdue reports, surges), critical first, newest first.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        coalesce(nullIf(ar.name_vi, ''), a.area_code) AS area,
        a.starts_at AS since,
        a.acked_by AS acked_by
    FROM ioc.alerts AS a FINAL
    LEFT JOIN ioc.ref_areas AS ar FINAL ON ar.code = a.area_code
    WHERE a.domain = 'feedback' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 50
"""


def _percent_steps() -> dashboard_model.DynamicConfigValue:
    return dashboard_model.DynamicConfigValue("thresholds",
                                              thresholds(*ON_TIME_STEPS).build())


def build() -> dashboard_model.Dashboard:
    """The citizen-feedback wall dashboard model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tường phản ánh kiến nghị của người dân: phản ánh mới, tồn đọng, "
                    "tỷ lệ giải quyết đúng hạn, mức hài lòng và phản ánh quá hạn.")
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        stat("Phản ánh mới hôm nay", NEW_TODAY_SQL, grid(0, 0, 5, 4), decimals=0,
             description="Số phản ánh tiếp nhận từ 0 giờ (giờ Việt Nam) đến nay."),
        stat("Phản ánh đang tồn đọng", OPEN_NOW_SQL, grid(5, 0, 5, 4), decimals=0,
             steps=((None, "blue"),),
             labels={"open_reports": "Đang xử lý", "unassigned": "Chưa phân công"},
             description="Phản ánh chưa giải quyết xong ở phút gần nhất; trong đó số chưa "
                         "giao cho đơn vị nào."),
        stat("Tỷ lệ đúng hạn (30 ngày)", ON_TIME_SQL, grid(10, 0, 5, 4), unit="percentunit",
             decimals=1, steps=ON_TIME_STEPS,
             description="Phản ánh đã giải quyết trong 30 ngày: tỷ lệ giải quyết trước hạn, "
                         f"mục tiêu {ON_TIME_TARGET:.0%}."),
        stat("Mức hài lòng (30 ngày)", SATISFACTION_SQL, grid(15, 0, 4, 4), decimals=2,
             steps=((None, "red"), (3, "orange"), (4, "green")),
             description="Điểm đánh giá trung bình của người dân (1–5) cho phản ánh đã giải "
                         "quyết trong 30 ngày."),
        stat("Cảnh báo phản ánh đang bật", FIRING_COUNT_SQL, grid(19, 0, 5, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
             overrides={"critical": [dashboard_model.DynamicConfigValue(
                 "thresholds", thresholds((None, "green"), (1, "red")).build())]},
             description="Cảnh báo quá hạn và tăng đột biến chưa kết thúc, theo mức độ."),
        bar_gauge("Phản ánh mới hôm nay theo lĩnh vực", TODAY_BY_CATEGORY_SQL,
                  grid(0, 4, 8, 9), steps=((None, "blue"),),
                  description="Từ 0 giờ (giờ Việt Nam) đến nay, theo lĩnh vực."),
        bar_gauge("Tồn đọng theo đơn vị", BACKLOG_BY_AGENCY_SQL, grid(8, 4, 8, 9),
                  steps=((None, "green"), (20, "orange"), (50, "red")),
                  description="Phản ánh đang mở theo đơn vị được giao ở phút gần nhất; "
                              "\"Chưa phân công\": chưa giao cho đơn vị nào."),
        bar_gauge("Tỷ lệ đúng hạn theo đơn vị (30 ngày)", ON_TIME_BY_AGENCY_SQL,
                  grid(16, 4, 8, 9), unit="percentunit", max_value=1, steps=ON_TIME_STEPS,
                  description="Phản ánh giải quyết trước hạn / phản ánh đã giải quyết trong "
                              "30 ngày, theo đơn vị."),
        timeseries("Phản ánh mới theo giờ và lĩnh vực", HOURLY_SQL, grid(0, 13, 12, 7),
                   series_label="category", min_interval="1h",
                   description="Số phản ánh tiếp nhận mỗi giờ theo lĩnh vực (giờ đang diễn ra "
                               "là số tạm tính)."),
        table("Kết quả giải quyết theo đơn vị (30 ngày)", RESULTS_BY_AGENCY_SQL,
              grid(12, 13, 12, 7),
              labels={"agency": "Đơn vị", "resolved": "Đã giải quyết",
                      "on_time": "Đúng hạn", "hours": "Thời gian TB (giờ)",
                      "satisfaction": "Hài lòng (1–5)", "ratings": "Lượt đánh giá"},
              overrides={"on_time": [dashboard_model.DynamicConfigValue("unit",
                                                                         "percentunit"),
                                     dashboard_model.DynamicConfigValue("decimals", 1),
                                     _percent_steps(), cell("color-text"), width(110)],
                         "hours": [dashboard_model.DynamicConfigValue("decimals", 1),
                                   width(150)],
                         "satisfaction": [dashboard_model.DynamicConfigValue("decimals", 2),
                                          width(130)],
                         "resolved": [width(120)], "ratings": [width(120)]},
              description="Phản ánh đã giải quyết (không tính phản ánh bị từ chối) trong 30 "
                          "ngày đến hết hôm nay."),
        table("Phản ánh quá hạn", OVERDUE_SQL, grid(0, 20, 14, 7),
              labels={"report_id": "Mã phản ánh", "category": "Lĩnh vực", "area": "Địa bàn",
                      "agency": "Đơn vị xử lý", "due_at": "Hạn xử lý",
                      "days_overdue": "Quá hạn (ngày)", "severity": "Mức độ"},
              overrides={"severity": [dashboard_model.DynamicConfigValue("mappings",
                                                                         [SEVERITY_MAP]),
                                      cell("color-background"), width(120)],
                         "report_id": [width(170)], "due_at": [width(160)],
                         "days_overdue": [width(120)]},
              description="Phản ánh chưa giải quyết đã quá hạn, hạn sớm nhất trước; không "
                          "hiển thị thông tin cá nhân của người phản ánh."),
        firing_table("Cảnh báo phản ánh kiến nghị đang bật", FIRING_TABLE_SQL,
                     grid(14, 20, 10, 7), "Địa bàn",
                     "Phản ánh quá hạn và phản ánh tăng đột biến chưa kết thúc; nghiêm trọng "
                     "trước.", place_width=170),
    ]
    add_panels(builder, panels)
    return builder.build()
