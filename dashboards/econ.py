"""The socio-economic indicators wall screen: "Chỉ tiêu kinh tế – xã hội" (uid ``ioc-econ``).

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

====  ============================================================================
rows  panels
====  ============================================================================
0–3   indicators behind plan · reports overdue · reports received this month ·
      province indicators on track
4–13  province-wide progress against the annual target per indicator (bar gauge) ·
      province-wide table: year to date, target, progress, pro-rata share, year-on-year
14–20 areas furthest behind their pro-rata plan · reports not received (overdue)
21–26 firing econ alerts
====  ============================================================================

Data: ``ioc.kpi`` rows of window ``ytd`` (``econ.ytd_value``, ``econ.progress``,
``econ.elapsed_share``, ``econ.yoy_growth``; one row per KPI, area, indicator and year — see
:mod:`ioc.streams.econ`), raw ``ioc.econ_indicator_report`` for the month's reports,
``ioc.ref_econ_indicators`` / ``ioc.ref_econ_targets`` / ``ioc.ref_areas`` for names, units and
targets, ``ioc.alerts``; always ``FINAL``. Everything is "as of the end of the range": the plan
year is the one whose 1 January (local) is within the year before ``$__toTime``, so the default
range is this year so far (``now/y`` → ``now``) and moving the range end back shows an earlier
year.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.dashboards.common import (
    add_panels,
    bar_gauge,
    firing_table,
    grid,
    red_from,
    stat,
    table,
    thresholds,
    wall_dashboard,
    width,
)
from ioc.streams.econ import (
    BEHIND_FACTOR,
    BEHIND_PLAN_RULE,
    ELAPSED_SHARE_KPI,
    PROGRESS_KPI,
    REPORT_MISSING_RULE,
    YOY_GROWTH_KPI,
    YTD_VALUE_KPI,
    YTD_WINDOW,
)

UID = "ioc-econ"
TITLE = "Chỉ tiêu kinh tế – xã hội"
TAGS = ["ioc", "kinh-te-xa-hoi", "econ", "wall"]

_THIS_YEAR = (f"k.`window` = '{YTD_WINDOW}' AND k.window_start <= $__toTime "
              "AND k.window_start > $__toTime - INTERVAL 1 YEAR")
_KPIS = ", ".join(f"'{k}'" for k in (YTD_VALUE_KPI, PROGRESS_KPI, ELAPSED_SHARE_KPI,
                                     YOY_GROWTH_KPI))
_PLACE = "if(a.area_code = '', 'Toàn tỉnh', coalesce(nullIf(r.name_vi, ''), a.area_code))"

BEHIND_COUNT_SQL = f"""
    -- Indicator/area pairs behind their pro-rata plan now (firing behind-plan alerts).
    SELECT count() AS behind
    FROM ioc.alerts FINAL
    WHERE rule = '{BEHIND_PLAN_RULE}' AND status = 'firing' AND starts_at <= $__toTime
"""

MISSING_COUNT_SQL = f"""
    -- Required monthly reports past their deadline and not received (firing alerts).
    SELECT count() AS missing
    FROM ioc.alerts FINAL
    WHERE rule = '{REPORT_MISSING_RULE}' AND status = 'firing' AND starts_at <= $__toTime
"""

REPORTS_MONTH_SQL = """
    -- Reports received in the local calendar month of the end of the range: first reports and
    -- corrections (revision > 0).
    SELECT countIf(e.revision = 0) AS reports,
           countIf(e.revision > 0) AS corrections
    FROM ioc.econ_indicator_report AS e FINAL
    WHERE e.occurred_at >= toDateTime(toStartOfMonth(toTimeZone($__toTime, 'Asia/Ho_Chi_Minh')),
                                      'Asia/Ho_Chi_Minh')
      AND e.occurred_at <= $__toTime
"""

ON_TRACK_SQL = f"""
    -- Province-wide indicators with a pro-rata plan whose progress is at least the share of
    -- the year reported (on track), out of all such indicators.
    SELECT countIf(progress >= elapsed) AS on_track, count() AS tracked
    FROM
    (
        SELECT k.entity,
               maxIf(k.value, k.kpi = '{PROGRESS_KPI}') AS progress,
               maxIf(k.value, k.kpi = '{ELAPSED_SHARE_KPI}') AS elapsed
        FROM ioc.kpi AS k FINAL
        WHERE k.kpi IN ('{PROGRESS_KPI}', '{ELAPSED_SHARE_KPI}') AND k.area_code = ''
          AND {_THIS_YEAR}
        GROUP BY k.entity
        HAVING countIf(k.kpi = '{ELAPSED_SHARE_KPI}') > 0
    )
"""

PROVINCE_PROGRESS_SQL = f"""
    -- Province-wide progress against the annual target, per indicator.
    SELECT
        coalesce(nullIf(i.name_vi, ''), k.entity) AS indicator,
        k.value AS progress
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_econ_indicators AS i FINAL ON i.code = k.entity
    WHERE k.kpi = '{PROGRESS_KPI}' AND k.area_code = '' AND {_THIS_YEAR}
    ORDER BY indicator
"""

PROVINCE_TABLE_SQL = f"""
    -- Province-wide year to date per indicator: through which month, value, unit, annual
    -- target, progress, pro-rata share of the year and year-on-year growth (empty where the
    -- KPI does not apply).
    SELECT
        coalesce(nullIf(any(i.name_vi), ''), k.entity) AS indicator,
        formatDateTime(max(k.window_end) - INTERVAL 1 DAY, '%m/%Y', 'Asia/Ho_Chi_Minh')
            AS through,
        maxIf(k.value, k.kpi = '{YTD_VALUE_KPI}') AS ytd_value,
        any(i.unit) AS unit,
        any(t.target) AS target,
        maxOrNullIf(k.value, k.kpi = '{PROGRESS_KPI}') AS progress,
        maxOrNullIf(k.value, k.kpi = '{ELAPSED_SHARE_KPI}') AS elapsed,
        maxOrNullIf(k.value, k.kpi = '{YOY_GROWTH_KPI}') AS yoy
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_econ_indicators AS i FINAL ON i.code = k.entity
    LEFT JOIN ioc.ref_econ_targets AS t FINAL
        ON t.indicator_code = k.entity AND t.area_code = k.area_code
       AND t.year = toYear(k.window_start, 'Asia/Ho_Chi_Minh')
    WHERE k.kpi IN ({_KPIS}) AND k.area_code = '' AND {_THIS_YEAR}
    GROUP BY k.entity
    ORDER BY indicator
"""

AREAS_BEHIND_SQL = f"""
    -- Areas furthest behind their pro-rata plan first: progress / share of the year reported.
    SELECT
        coalesce(nullIf(any(r.name_vi), ''), k.area_code) AS area,
        coalesce(nullIf(any(i.name_vi), ''), k.entity) AS indicator,
        maxIf(k.value, k.kpi = '{YTD_VALUE_KPI}') AS ytd_value,
        any(i.unit) AS unit,
        maxIf(k.value, k.kpi = '{PROGRESS_KPI}') AS progress,
        maxIf(k.value, k.kpi = '{ELAPSED_SHARE_KPI}') AS elapsed,
        progress / elapsed AS pace
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_areas AS r FINAL ON r.code = k.area_code
    LEFT JOIN ioc.ref_econ_indicators AS i FINAL ON i.code = k.entity
    WHERE k.kpi IN ({_KPIS}) AND k.area_code != '' AND {_THIS_YEAR}
    GROUP BY k.area_code, k.entity
    HAVING countIf(k.kpi = '{ELAPSED_SHARE_KPI}') > 0
    ORDER BY pace, area, indicator
    LIMIT 12
"""

MISSING_TABLE_SQL = f"""
    -- Required monthly reports not received by their deadline (firing alerts), oldest first.
    SELECT
        coalesce(nullIf(i.name_vi, ''), a.entity) AS indicator,
        {_PLACE} AS area,
        formatDateTime(a.starts_at - INTERVAL 6 DAY, '%m/%Y', 'Asia/Ho_Chi_Minh') AS period,
        intDiv(toUnixTimestamp($__toTime) - toUnixTimestamp(a.starts_at), 86400) + 1
            AS days_late,
        i.agency AS agency
    FROM ioc.alerts AS a FINAL
    LEFT JOIN ioc.ref_econ_indicators AS i FINAL ON i.code = a.entity
    LEFT JOIN ioc.ref_areas AS r FINAL ON r.code = a.area_code
    WHERE a.rule = '{REPORT_MISSING_RULE}' AND a.status = 'firing'
      AND a.starts_at <= $__toTime
    ORDER BY a.starts_at, indicator, area
    LIMIT 50
"""

FIRING_TABLE_SQL = f"""
    -- Firing econ alerts, newest first.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        {_PLACE} AS area,
        a.starts_at AS since,
        a.acked_by AS acked_by
    FROM ioc.alerts AS a FINAL
    LEFT JOIN ioc.ref_areas AS r FINAL ON r.code = a.area_code
    WHERE a.domain = 'econ' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY a.starts_at DESC
    LIMIT 50
"""


def _percent(decimals: int = 0) -> list[dashboard_model.DynamicConfigValue]:
    return [dashboard_model.DynamicConfigValue("unit", "percentunit"),
            dashboard_model.DynamicConfigValue("decimals", decimals)]


def _pace_colours() -> dashboard_model.DynamicConfigValue:
    """Red below the alert threshold (0.8 × pro-rata), orange below pro-rata, green from it."""
    return dashboard_model.DynamicConfigValue(
        "thresholds", thresholds((None, "red"), (BEHIND_FACTOR, "orange"),
                                 (1.0, "green")).build())


def _coloured_cell() -> dashboard_model.DynamicConfigValue:
    return dashboard_model.DynamicConfigValue("custom.cellOptions",
                                              {"type": "color-background"})


def build() -> dashboard_model.Dashboard:
    """The econ wall dashboard model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tường chỉ tiêu kinh tế – xã hội: lũy kế từ đầu năm so với kế "
                    "hoạch năm, tăng trưởng so với cùng kỳ, báo cáo quá hạn và cảnh báo.")
    builder.time("now/y", "now")
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        stat("Chỉ tiêu chậm tiến độ", BEHIND_COUNT_SQL, grid(0, 0, 6, 4), decimals=0,
             steps=((None, "green"), (1, "red")),
             description=f"Số cặp chỉ tiêu – địa bàn có tiến độ dưới {BEHIND_FACTOR:.0%} "
                         "tiến độ tính theo số tháng đã báo cáo."),
        stat("Báo cáo quá hạn", MISSING_COUNT_SQL, grid(6, 0, 6, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             description="Báo cáo tháng bắt buộc chưa nhận được sau ngày 5 của tháng sau."),
        stat("Báo cáo nhận trong tháng", REPORTS_MONTH_SQL, grid(12, 0, 6, 4), decimals=0,
             labels={"reports": "Báo cáo", "corrections": "Điều chỉnh"},
             description="Báo cáo nhận từ đầu tháng (giờ Việt Nam) đến cuối khoảng thời gian "
                         "đang xem; điều chỉnh: báo cáo sửa số liệu đã gửi."),
        stat("Chỉ tiêu toàn tỉnh đạt tiến độ", ON_TRACK_SQL, grid(18, 0, 6, 4), decimals=0,
             labels={"on_track": "Đạt tiến độ", "tracked": "Số chỉ tiêu"},
             description="Chỉ tiêu toàn tỉnh có lũy kế đạt ít nhất tỷ lệ thời gian đã qua "
                         "(số tháng đã báo cáo / 12) của kế hoạch năm."),
        bar_gauge("Tiến độ thực hiện kế hoạch năm – toàn tỉnh", PROVINCE_PROGRESS_SQL,
                  grid(0, 4, 10, 10), unit="percentunit", max_value=1.0,
                  steps=((None, "blue"),),
                  description="Lũy kế từ đầu năm / kế hoạch năm. Với CPI, kế hoạch là mức "
                              "trần: tỷ lệ càng thấp càng tốt."),
        table("Chỉ tiêu toàn tỉnh lũy kế từ đầu năm", PROVINCE_TABLE_SQL, grid(10, 4, 14, 10),
              labels={"indicator": "Chỉ tiêu", "through": "Đến tháng", "ytd_value": "Lũy kế",
                      "unit": "Đơn vị", "target": "Kế hoạch năm", "progress": "Đạt",
                      "elapsed": "Tiến độ thời gian", "yoy": "So với cùng kỳ"},
              overrides={"indicator": [width(300)], "through": [width(90)],
                         "unit": [width(110)], "progress": _percent(),
                         "elapsed": _percent(), "yoy": _percent(1)},
              description="Lũy kế: tổng các tháng (bình quân với CPI, kỳ gần nhất với tăng "
                          "trưởng GRDP). Tiến độ thời gian: số tháng đã báo cáo / 12. So với "
                          "cùng kỳ: lũy kế / cùng các tháng năm trước − 1."),
        table("Địa bàn chậm tiến độ nhất", AREAS_BEHIND_SQL, grid(0, 14, 14, 7),
              labels={"area": "Địa bàn", "indicator": "Chỉ tiêu", "ytd_value": "Lũy kế",
                      "unit": "Đơn vị", "progress": "Đạt kế hoạch",
                      "elapsed": "Tiến độ thời gian", "pace": "So với tiến độ"},
              overrides={"area": [width(170)], "unit": [width(90)], "progress": _percent(),
                         "elapsed": _percent(),
                         "pace": [*_percent(), _pace_colours(), _coloured_cell()]},
              description=f"Đạt kế hoạch / tiến độ thời gian, thấp nhất trước; dưới "
                          f"{BEHIND_FACTOR:.0%} là chậm tiến độ (có cảnh báo)."),
        table("Báo cáo chưa nhận", MISSING_TABLE_SQL, grid(14, 14, 10, 7),
              labels={"indicator": "Chỉ tiêu", "area": "Địa bàn", "period": "Kỳ báo cáo",
                      "days_late": "Số ngày quá hạn", "agency": "Đơn vị chủ trì"},
              overrides={"period": [width(90)], "days_late": [width(110), red_from(1)]},
              description="Báo cáo tháng bắt buộc chưa nhận được sau hạn (ngày 5 tháng sau)."),
        firing_table("Cảnh báo kinh tế – xã hội đang bật", FIRING_TABLE_SQL, grid(0, 21, 24, 6),
                     "Địa bàn", "Chỉ tiêu chậm tiến độ và báo cáo quá hạn chưa kết thúc; mới "
                                "nhất trước."),
    ]
    add_panels(builder, panels)
    return builder.build()
