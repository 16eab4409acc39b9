"""The health wall screen: "Y tế" (uid ``ioc-health``).

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

=====  ===========================================================================
rows   panels
=====  ===========================================================================
0–3    bed occupancy of the province now · facilities over 90 % / 95 % · patients
       waiting in emergency departments · cases in the last 7 days · firing alerts
4–14   occupancy per facility now · occupancy over the range of the busiest
       facilities and the emergency queues now · new cases per day by disease (8 weeks)
15–26  7-day cases and incidence per 100,000 by area (the 10 areas most hit by dengue) ·
       firing health alerts
=====  ===========================================================================

Data: ``ioc.kpi`` — ``health.bed_occupancy`` and ``health.emergency_waiting`` (each
facility's newest hourly value of the last 24 hours is "now"; occupancy of several facilities
is Σ value·beds / Σ beds, ``sample_count`` being the beds), ``health.cases`` (1d),
``health.cases_7d`` and ``health.incidence_7d_per_100k`` (the newest 7-day window of each area
and disease that ends by the end of the range plus one day, i.e. including today's provisional
value); raw ``ioc.health_facility_status`` for the occupancy curves and
``ioc.health_disease_case`` for the rolling 7 days (each ``case_id`` once); names from
``ioc.ref_health_facilities`` and ``ioc.ref_areas``; ``ioc.alerts``; always ``FINAL``. Daily
and weekly panels look back from the end of the range whatever its length, since a 6-hour wall
range holds no full day.
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
    table,
    timeseries,
    wall_dashboard,
    width,
)
from ioc.streams.health import DISEASE_VI

UID = "ioc-health"
TITLE = "Y tế"
TAGS = ["ioc", "y-te", "health", "wall"]

WARNING = 0.90
CRITICAL = 0.95
BUSIEST = 6
MAIN_DISEASES = ("dengue", "hand_foot_mouth", "measles", "influenza")


def disease_label(column: str) -> str:
    """SQL naming a disease in Vietnamese; diseases outside :data:`MAIN_DISEASES` are grouped
    as "khác" so the wall's legend stays short."""
    codes = ", ".join(f"'{c}'" for c in MAIN_DISEASES)
    names = ", ".join(f"'{DISEASE_VI[c]}'" for c in MAIN_DISEASES)
    return f"transform({column}, [{codes}], [{names}], 'bệnh khác')"


def _latest_per_facility(kpi: str) -> str:
    return f"""
        SELECT entity, argMax(value, window_start) AS v, argMax(sample_count, window_start) AS n
        FROM ioc.kpi FINAL
        WHERE kpi = '{kpi}' AND `window` = '1h'
          AND window_start <= $__toTime AND window_start > $__toTime - INTERVAL 24 HOUR
        GROUP BY entity"""


OCCUPANCY_NOW_SQL = f"""
    -- Province bed occupancy now: Σ occupied / Σ beds over each facility's newest hourly value
    -- of the last 24 hours (sample_count = beds in service).
    SELECT if(sum(o.n) = 0, NULL, sum(o.v * o.n) / sum(o.n)) AS occupancy
    FROM ({_latest_per_facility('health.bed_occupancy')}
    ) AS o
"""

OVERLOADED_SQL = f"""
    -- Facilities at or over the alert thresholds now.
    SELECT countIf(o.v >= {WARNING}) AS over_warning,
           countIf(o.v >= {CRITICAL}) AS over_critical
    FROM ({_latest_per_facility('health.bed_occupancy')}
    ) AS o
"""

WAITING_NOW_SQL = f"""
    -- Patients waiting in the emergency departments now (each facility's newest value).
    SELECT sum(w.v) AS waiting
    FROM ({_latest_per_facility('health.emergency_waiting')}
    ) AS w
"""

CASES_7D_SQL = """
    -- Notified cases in the 7 days before the end of the range (raw events, each case once).
    SELECT uniqExact(c.case_id) AS cases,
           uniqExactIf(c.case_id, c.disease = 'dengue') AS dengue,
           uniqExactIf(c.case_id, c.hospitalized) AS hospitalized
    FROM ioc.health_disease_case AS c FINAL
    WHERE c.occurred_at > $__toTime - INTERVAL 7 DAY AND c.occurred_at <= $__toTime
"""

FIRING_COUNT_SQL = firing_count_sql("health", "Health")

OCCUPANCY_BY_FACILITY_SQL = f"""
    -- Bed occupancy of each facility now, fullest first.
    SELECT coalesce(nullIf(f.name_vi, ''), o.entity) AS facility, o.v AS occupancy
    FROM ({_latest_per_facility('health.bed_occupancy')}
    ) AS o
    LEFT JOIN ioc.ref_health_facilities AS f FINAL ON f.facility_id = o.entity
    ORDER BY occupancy DESC, facility
"""

OCCUPANCY_SERIES_SQL = f"""
    -- Occupancy at every status report over the range, for the {BUSIEST} facilities that were
    -- fullest in it.
    SELECT
        s.occurred_at AS time,
        coalesce(nullIf(f.name_vi, ''), s.facility_id) AS facility,
        s.beds_occupied / s.beds_total AS occupancy
    FROM ioc.health_facility_status AS s FINAL
    LEFT JOIN ioc.ref_health_facilities AS f FINAL ON f.facility_id = s.facility_id
    WHERE $__timeFilter(s.occurred_at) AND s.beds_total > 0
      AND s.facility_id IN
      (
          SELECT facility_id FROM ioc.health_facility_status FINAL
          WHERE $__timeFilter(occurred_at) AND beds_total > 0
          GROUP BY facility_id
          ORDER BY max(beds_occupied / beds_total) DESC, facility_id
          LIMIT {BUSIEST}
      )
    ORDER BY time, facility
"""

WAITING_BY_FACILITY_SQL = f"""
    -- Emergency queue of each facility now, the 8 longest.
    SELECT coalesce(nullIf(f.name_vi, ''), w.entity) AS facility, w.v AS waiting
    FROM ({_latest_per_facility('health.emergency_waiting')}
    ) AS w
    LEFT JOIN ioc.ref_health_facilities AS f FINAL ON f.facility_id = w.entity
    ORDER BY waiting DESC, facility
    LIMIT 8
"""

CASES_DAILY_SQL = f"""
    -- New cases per local day and disease over the 8 weeks before the end of the range (1d
    -- KPI; today's value is provisional).
    SELECT
        k.window_start AS time,
        {disease_label('k.entity')} AS disease,
        sum(k.value) AS cases
    FROM ioc.kpi AS k FINAL
    WHERE k.kpi = 'health.cases' AND k.`window` = '1d'
      AND k.window_start > $__toTime - INTERVAL 56 DAY AND k.window_start <= $__toTime
    GROUP BY time, disease
    ORDER BY time, disease
"""

CASES_BY_AREA_SQL = """
    -- Per area: the newest 7-day window of each disease ending by the end of the range plus a
    -- day (today's provisional value); the 10 areas with the highest dengue incidence.
    SELECT
        coalesce(nullIf(a.name_vi, ''), c.area_code) AS area,
        sumIf(c.cases, c.disease = 'dengue') AS dengue,
        sumIf(c.incidence, c.disease = 'dengue') AS dengue_per_100k,
        sumIf(c.cases, c.disease = 'hand_foot_mouth') AS hfmd,
        sumIf(c.incidence, c.disease = 'hand_foot_mouth') AS hfmd_per_100k,
        sumIf(c.cases, c.disease = 'measles') AS measles,
        sumIf(c.cases, c.disease NOT IN ('dengue', 'hand_foot_mouth', 'measles')) AS other
    FROM
    (
        SELECT area_code, entity AS disease,
               argMaxIf(value, window_end, kpi = 'health.cases_7d') AS cases,
               argMaxIf(value, window_end, kpi = 'health.incidence_7d_per_100k') AS incidence
        FROM ioc.kpi FINAL
        WHERE kpi IN ('health.cases_7d', 'health.incidence_7d_per_100k') AND `window` = '7d'
          AND window_end > $__toTime - INTERVAL 2 DAY AND window_end <= $__toTime + INTERVAL 1 DAY
        GROUP BY area_code, disease
    ) AS c
    LEFT JOIN ioc.ref_areas AS a FINAL ON a.code = c.area_code
    GROUP BY area
    HAVING dengue + hfmd + measles + other > 0
    ORDER BY dengue_per_100k DESC, dengue DESC, area
    LIMIT 10
"""

FIRING_TABLE_SQL = """
    -- Firing health alerts: critical first, newest first; the place is the area.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        coalesce(nullIf(ar.name_vi, ''), a.area_code) AS area,
        a.starts_at AS since,
        a.acked_by AS acked_by
    FROM ioc.alerts AS a FINAL
    LEFT JOIN ioc.ref_areas AS ar FINAL ON ar.code = a.area_code
    WHERE a.domain = 'health' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 50
"""

_OCCUPANCY_STEPS = ((None, "green"), (WARNING, "orange"), (CRITICAL, "red"))


def _number(decimals: int) -> list[dashboard_model.DynamicConfigValue]:
    return [dashboard_model.DynamicConfigValue("decimals", decimals)]


def build() -> dashboard_model.Dashboard:
    """The health wall dashboard model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tường y tế: công suất giường bệnh, cấp cứu, ca bệnh truyền nhiễm "
                    "theo địa bàn và cảnh báo dịch.")
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        stat("Công suất giường bệnh toàn tỉnh", OCCUPANCY_NOW_SQL, grid(0, 0, 5, 4),
             unit="percentunit", decimals=1, steps=_OCCUPANCY_STEPS,
             description="Tổng số người bệnh nội trú / tổng số giường đang sử dụng, theo báo "
                         "cáo mới nhất của từng cơ sở trong 24 giờ qua."),
        stat("Cơ sở quá tải", OVERLOADED_SQL, grid(5, 0, 5, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             labels={"over_warning": "Từ 90%", "over_critical": "Từ 95%"},
             overrides={"over_critical": [red_from(1)]},
             description="Số cơ sở có công suất sử dụng giường từ 90% (cảnh báo) và từ 95% "
                         "(nghiêm trọng)."),
        stat("Người bệnh chờ cấp cứu", WAITING_NOW_SQL, grid(10, 0, 4, 4), decimals=0,
             steps=((None, "blue"),),
             description="Tổng số người bệnh đang chờ tại các khoa cấp cứu, theo báo cáo mới "
                         "nhất."),
        stat("Ca bệnh truyền nhiễm 7 ngày qua", CASES_7D_SQL, grid(14, 0, 5, 4), decimals=0,
             steps=((None, "blue"),),
             labels={"cases": "Tổng số", "dengue": "Sốt xuất huyết",
                     "hospitalized": "Nhập viện"},
             description="Ca bệnh được thông báo trong 7 ngày tính đến cuối khoảng thời gian "
                         "đang xem (mỗi ca tính một lần)."),
        stat("Cảnh báo đang bật", FIRING_COUNT_SQL, grid(19, 0, 5, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
             overrides={"critical": [red_from(1)]},
             description="Cảnh báo quá tải giường bệnh và nguy cơ bùng phát dịch chưa kết "
                         "thúc."),
        bar_gauge("Công suất giường bệnh theo cơ sở", OCCUPANCY_BY_FACILITY_SQL,
                  grid(0, 4, 8, 11), unit="percentunit", steps=_OCCUPANCY_STEPS,
                  description="Báo cáo mới nhất của từng cơ sở; cảnh báo từ 90%, nghiêm trọng "
                              "từ 95%. Có thể vượt 100% khi người bệnh nằm ghép."),
        timeseries("Công suất giường bệnh các cơ sở đông nhất", OCCUPANCY_SERIES_SQL,
                   grid(8, 4, 8, 6), unit="percentunit", series_label="facility",
                   min_interval="15m",
                   description=f"{BUSIEST} cơ sở có công suất cao nhất trong khoảng thời gian "
                               "đang xem, theo từng báo cáo (15 phút một lần)."),
        bar_gauge("Người bệnh chờ cấp cứu theo cơ sở", WAITING_BY_FACILITY_SQL,
                  grid(8, 10, 8, 5), steps=((None, "green"), (10, "orange"), (20, "red")),
                  description="8 khoa cấp cứu có nhiều người chờ nhất, theo báo cáo mới nhất."),
        timeseries("Ca bệnh mới theo ngày (8 tuần)", CASES_DAILY_SQL, grid(16, 4, 8, 11),
                   series_label="disease", min_interval="1d",
                   description="Số ca được chẩn đoán mỗi ngày theo bệnh, 8 tuần tính đến cuối "
                               "khoảng thời gian đang xem; ngày hôm nay là số tạm tính."),
        table("Ca bệnh 7 ngày và tỷ lệ mắc trên 100.000 dân theo địa bàn", CASES_BY_AREA_SQL,
              grid(0, 15, 14, 12),
              labels={"area": "Địa bàn", "dengue": "Sốt xuất huyết",
                      "dengue_per_100k": "SXH /100.000 dân", "hfmd": "Tay chân miệng",
                      "hfmd_per_100k": "TCM /100.000 dân", "measles": "Sởi",
                      "other": "Bệnh khác"},
              overrides={"area": [width(170)],
                         "dengue_per_100k": [*_number(1), red_from(20)],
                         "hfmd_per_100k": [*_number(1), red_from(10)]},
              description="10 địa bàn có tỷ lệ mắc sốt xuất huyết cao nhất: số ca trong 7 ngày "
                          "gần nhất và số ca trên 100.000 dân (dân số gần đúng theo danh mục "
                          "địa bàn)."),
        firing_table("Cảnh báo y tế đang bật", FIRING_TABLE_SQL, grid(14, 15, 10, 12),
                     "Địa bàn", "Quá tải giường bệnh và nguy cơ bùng phát dịch chưa kết "
                                "thúc; nghiêm trọng trước, mới nhất trước.",
                     place_width=150),
    ]
    add_panels(builder, panels)
    return builder.build()
