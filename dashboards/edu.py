"""The education wall screen: "Giáo dục" (uid ``ioc-edu``).

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

=====  ===========================================================================
rows   panels
=====  ===========================================================================
0–3    attendance rate of the province on the newest school day · pupils absent · schools
       that reported (of the reference list) · firing education alerts
4–16   attendance rate by area on the newest school day · daily attendance over the last
       14 days of the 6 areas with the lowest days
17–26  attendance by school level (province) · firing education alerts
=====  ===========================================================================

Data: ``ioc.kpi`` rows of ``edu.attendance_rate`` (1d; entity "" per area, entity = level
per area and level), ``edu.pupils_absent`` and ``edu.schools_reported`` (1d per area);
"the newest school day" is the newest daily window that started by the end of the range (the
current day while reports come in, so its figures are provisional until the day closes).
Rates of several areas or levels are combined as Σ value·pupils / Σ pupils (``sample_count`` is
the pupils enrolled). ``ioc.ref_areas``, ``ioc.ref_schools`` and ``ioc.alerts``; always
``FINAL``. The daily panels look back from the end of the range whatever its length.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.dashboards.common import (
    add_panels,
    bar_gauge,
    firing_count_sql,
    firing_table,
    grid,
    red_from,
    stat,
    timeseries,
    wall_dashboard,
)
from ioc.streams.edu import LEVEL_VI

UID = "ioc-edu"
TITLE = "Giáo dục"
TAGS = ["ioc", "giao-duc", "edu", "wall"]

THRESHOLD = 0.85
LOWEST = 6

_NEWEST_DAY = """(
          SELECT max(window_start) FROM ioc.kpi FINAL
          WHERE kpi = 'edu.attendance_rate' AND `window` = '1d' AND window_start <= $__toTime
      )"""


def level_label(column: str) -> str:
    codes = ", ".join(f"'{c}'" for c in LEVEL_VI)
    names = ", ".join(f"'{n}'" for n in LEVEL_VI.values())
    return f"transform({column}, [{codes}], [{names}], {column})"


PROVINCE_RATE_SQL = f"""
    -- Attendance of the province on the newest school day: Σ present / Σ enrolled over areas.
    SELECT if(sum(k.sample_count) = 0, NULL,
              sum(k.value * k.sample_count) / sum(k.sample_count)) AS rate
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'edu.attendance_rate' AND k.`window` = '1d' AND k.entity = ''
      AND k.window_start = {_NEWEST_DAY}
"""

ABSENT_SQL = f"""
    -- Pupils absent on the newest school day.
    SELECT sum(k.value) AS absent
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'edu.pupils_absent' AND k.`window` = '1d'
      AND k.window_start = {_NEWEST_DAY}
"""

SCHOOLS_SQL = f"""
    -- Schools that reported on the newest school day, and the schools of the reference list.
    SELECT
        (
            SELECT sum(value) FROM ioc.kpi FINAL
            WHERE kpi = 'edu.schools_reported' AND `window` = '1d'
              AND window_start = {_NEWEST_DAY}
        ) AS reported,
        (SELECT count() FROM ioc.ref_schools FINAL) AS schools
"""

FIRING_COUNT_SQL = firing_count_sql("edu", "Education")

BY_AREA_SQL = f"""
    -- Attendance by area on the newest school day, lowest first.
    SELECT coalesce(nullIf(a.name_vi, ''), k.area_code) AS area, k.value AS rate
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_areas AS a FINAL ON a.code = k.area_code
    WHERE k.kpi = 'edu.attendance_rate' AND k.`window` = '1d' AND k.entity = ''
      AND k.window_start = {_NEWEST_DAY}
    ORDER BY rate, area
"""

DAILY_SQL = f"""
    -- Daily attendance over the 14 days before the end of the range, for the {LOWEST} areas
    -- whose lowest day was lowest.
    SELECT
        k.window_start AS time,
        coalesce(nullIf(a.name_vi, ''), k.area_code) AS area,
        k.value AS rate
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_areas AS a FINAL ON a.code = k.area_code
    WHERE k.kpi = 'edu.attendance_rate' AND k.`window` = '1d' AND k.entity = ''
      AND k.window_start > $__toTime - INTERVAL 14 DAY AND k.window_start <= $__toTime
      AND k.area_code IN
      (
          SELECT area_code FROM ioc.kpi FINAL
          WHERE kpi = 'edu.attendance_rate' AND `window` = '1d' AND entity = ''
            AND window_start > $__toTime - INTERVAL 14 DAY AND window_start <= $__toTime
          GROUP BY area_code
          ORDER BY min(value), area_code
          LIMIT {LOWEST}
      )
    ORDER BY time, area
"""

BY_LEVEL_SQL = f"""
    -- Attendance by school level, province-wide, on the newest school day.
    SELECT {level_label('k.entity')} AS level,
           sum(k.value * k.sample_count) / sum(k.sample_count) AS rate
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'edu.attendance_rate' AND k.`window` = '1d' AND k.entity != ''
      AND k.window_start = {_NEWEST_DAY}
    GROUP BY k.entity
    HAVING sum(k.sample_count) > 0
    ORDER BY indexOf([{", ".join(f"'{c}'" for c in LEVEL_VI)}], k.entity)
"""

FIRING_TABLE_SQL = """
    -- Firing education alerts, newest first; the place is the area.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        coalesce(nullIf(ar.name_vi, ''), a.area_code) AS area,
        a.starts_at AS since,
        a.acked_by AS acked_by
    FROM ioc.alerts AS a FINAL
    LEFT JOIN ioc.ref_areas AS ar FINAL ON ar.code = a.area_code
    WHERE a.domain = 'edu' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 50
"""

_RATE_STEPS = ((None, "red"), (THRESHOLD, "orange"), (0.9, "green"))


def build() -> dashboard_model.Dashboard:
    """The education wall dashboard model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tường giáo dục: tỷ lệ học sinh đi học theo địa bàn và cấp học, "
                    "báo cáo của các trường và cảnh báo.")
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        stat("Tỷ lệ đi học toàn tỉnh", PROVINCE_RATE_SQL, grid(0, 0, 6, 4),
             unit="percentunit", decimals=1, steps=_RATE_STEPS,
             description="Số học sinh có mặt / số học sinh theo danh sách, ngày học gần nhất "
                         "(đang cập nhật khi các trường còn báo cáo)."),
        stat("Học sinh vắng mặt", ABSENT_SQL, grid(6, 0, 6, 4), decimals=0,
             steps=((None, "blue"),),
             description="Tổng số học sinh vắng mặt ngày học gần nhất."),
        stat("Trường đã báo cáo", SCHOOLS_SQL, grid(12, 0, 6, 4), decimals=0,
             steps=((None, "blue"),),
             labels={"reported": "Đã báo cáo", "schools": "Tổng số trường"},
             description="Số trường đã gửi báo cáo điểm danh ngày học gần nhất, so với danh "
                         "mục trường."),
        stat("Cảnh báo đang bật", FIRING_COUNT_SQL, grid(18, 0, 6, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
             overrides={"critical": [red_from(1)]},
             description="Cảnh báo tỷ lệ đi học thấp chưa kết thúc."),
        bar_gauge("Tỷ lệ đi học theo địa bàn", BY_AREA_SQL, grid(0, 4, 10, 13),
                  unit="percentunit", max_value=1, steps=_RATE_STEPS,
                  description=f"Ngày học gần nhất; cảnh báo khi dưới {THRESHOLD:.0%}."),
        timeseries("Tỷ lệ đi học theo ngày (14 ngày)", DAILY_SQL, grid(10, 4, 14, 13),
                   unit="percentunit", series_label="area", min_interval="1d",
                   description=f"{LOWEST} địa bàn có ngày đi học thấp nhất trong 14 ngày tính "
                               "đến cuối khoảng thời gian đang xem (không có số liệu ngày "
                               "Chủ nhật)."),
        bar_gauge("Tỷ lệ đi học theo cấp học", BY_LEVEL_SQL, grid(0, 17, 8, 10),
                  unit="percentunit", max_value=1, steps=_RATE_STEPS,
                  description="Toàn tỉnh, ngày học gần nhất."),
        firing_table("Cảnh báo giáo dục đang bật", FIRING_TABLE_SQL, grid(8, 17, 16, 10),
                     "Địa bàn", "Địa bàn có tỷ lệ học sinh đi học thấp; mới nhất trước."),
    ]
    add_panels(builder, panels)
    return builder.build()
