"""The e-government wall screen: "Chính quyền điện tử" (uid ``ioc-egov``).

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

====  ============================================================================
rows  panels
====  ============================================================================
0–3   dossiers received and decided today · province-wide 30-day rates (on time, online,
      paid online) · systems down now (large, red) · firing e-government alerts
4–12  30-day on-time rate per agency · status of each portal/system (latest check, large,
      red when down) · response time and 24-hour uptime per system
13–19 dossiers received and decided per day (14 days) · per agency: received today, 30-day
      rates, open and overdue dossiers now
20–26 firing e-government alerts
====  ============================================================================

Data: ``ioc.kpi`` (``egov.dossiers_received`` / ``egov.dossiers_resolved`` 1d;
``egov.on_time_rate``, ``egov.online_rate``, ``egov.online_payment_rate`` 30d — the newest
window whose day has begun by the end of the range, final or provisional;
``egov.open_dossiers`` / ``egov.overdue_open`` gauges — the newest value; ``egov.uptime``
1h), raw ``ioc.egov_portal_check`` for the latest check of each system and the last hour's
response time, ``ioc.ref_egov_agencies`` / ``ioc.ref_egov_systems`` for names, ``ioc.alerts``;
always ``FINAL``. Province-wide rates combine the agencies exactly as
Σ rate·sample_count / Σ sample_count. "Today" is the Asia/Ho_Chi_Minh day containing the end
of the range.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.dashboards.common import (
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
    thresholds,
    wall_dashboard,
    width,
)
from ioc.streams.egov import MIN_DECIDED, ON_TIME_THRESHOLD

UID = "ioc-egov"
TITLE = "Chính quyền điện tử"
TAGS = ["ioc", "chinh-quyen-dien-tu", "egov", "wall"]

_TODAY = "toStartOfDay($__toTime, 'Asia/Ho_Chi_Minh')"
_CURRENT_30D = "`window` = '30d' AND window_end <= $__toTime + INTERVAL 1 DAY"
_RATES = "('egov.on_time_rate', 'egov.online_rate', 'egov.online_payment_rate')"
_LAST_CHECKS = ("occurred_at > $__toTime - INTERVAL 15 MINUTE AND occurred_at <= $__toTime")

TODAY_SQL = f"""
    -- Dossiers received and decided today (1d windows of the local day containing the end of
    -- the range, final or still filling), all agencies.
    SELECT sumIf(value, kpi = 'egov.dossiers_received') AS received,
           sumIf(value, kpi = 'egov.dossiers_resolved') AS resolved
    FROM ioc.kpi FINAL
    WHERE kpi IN ('egov.dossiers_received', 'egov.dossiers_resolved') AND `window` = '1d'
      AND window_start = {_TODAY}
"""

PROVINCE_RATES_SQL = f"""
    -- Province-wide 30-day rates: each agency's newest window, weighted by its sample count.
    SELECT
        sumIf(v * n, kpi = 'egov.on_time_rate')
            / nullIf(sumIf(n, kpi = 'egov.on_time_rate'), 0) AS on_time,
        sumIf(v * n, kpi = 'egov.online_rate')
            / nullIf(sumIf(n, kpi = 'egov.online_rate'), 0) AS online,
        sumIf(v * n, kpi = 'egov.online_payment_rate')
            / nullIf(sumIf(n, kpi = 'egov.online_payment_rate'), 0) AS paid_online
    FROM
    (
        SELECT kpi, entity, argMax(value, window_end) AS v, argMax(sample_count, window_end) AS n
        FROM ioc.kpi FINAL
        WHERE kpi IN {_RATES} AND {_CURRENT_30D}
        GROUP BY kpi, entity
    )
"""

SYSTEMS_DOWN_SQL = f"""
    -- Monitored systems whose latest check in the 15 minutes before the end of the range
    -- failed, and how many systems were checked.
    SELECT countIf(NOT last_up) AS down, count() AS checked
    FROM
    (
        SELECT system_id, argMax(up, occurred_at) AS last_up
        FROM ioc.egov_portal_check FINAL
        WHERE {_LAST_CHECKS}
        GROUP BY system_id
    )
"""

FIRING_COUNT_SQL = firing_count_sql("egov", "E-government")

ON_TIME_BY_AGENCY_SQL = f"""
    -- Each agency's newest 30-day on-time rate, worst first.
    SELECT coalesce(nullIf(a.name_vi, ''), k.entity) AS agency, k.v AS on_time
    FROM
    (
        SELECT entity, argMax(value, window_end) AS v
        FROM ioc.kpi FINAL
        WHERE kpi = 'egov.on_time_rate' AND {_CURRENT_30D}
        GROUP BY entity
    ) AS k
    LEFT JOIN ioc.ref_egov_agencies AS a FINAL ON a.code = k.entity
    ORDER BY on_time, agency
"""

SYSTEM_STATUS_SQL = f"""
    -- Every monitored system with its latest check in the 15 minutes before the end of the
    -- range: 1 up, 0 down, -1 no check.
    SELECT
        s.name_vi AS system,
        if(c.checks = 0, -1, toInt8(c.last_up)) AS status
    FROM ioc.ref_egov_systems AS s FINAL
    LEFT JOIN
    (
        SELECT system_id, argMax(up, occurred_at) AS last_up, count() AS checks
        FROM ioc.egov_portal_check FINAL
        WHERE {_LAST_CHECKS}
        GROUP BY system_id
    ) AS c ON c.system_id = s.system_id
    ORDER BY status, system
"""

SYSTEM_DETAILS_SQL = """
    -- Per system: mean response time of the good checks in the last hour, uptime over the
    -- last 24 hours (1h KPIs weighted by checks), time of the latest check.
    SELECT
        coalesce(nullIf(s.name_vi, ''), c.system_id) AS system,
        c.response_ms AS response_ms,
        u.uptime AS uptime_24h,
        c.last_check AS last_check
    FROM
    (
        SELECT system_id, max(occurred_at) AS last_check,
               avgIf(response_ms, up AND occurred_at > $__toTime - INTERVAL 1 HOUR)
                   AS response_ms
        FROM ioc.egov_portal_check FINAL
        WHERE occurred_at > $__toTime - INTERVAL 24 HOUR AND occurred_at <= $__toTime
        GROUP BY system_id
    ) AS c
    LEFT JOIN
    (
        SELECT entity, sum(value * sample_count) / sum(sample_count) AS uptime
        FROM ioc.kpi FINAL
        WHERE kpi = 'egov.uptime' AND `window` = '1h'
          AND window_start > $__toTime - INTERVAL 24 HOUR AND window_start <= $__toTime
        GROUP BY entity
    ) AS u ON u.entity = c.system_id
    LEFT JOIN ioc.ref_egov_systems AS s FINAL ON s.system_id = c.system_id
    ORDER BY uptime_24h, system
"""

DAILY_SQL = """
    -- Dossiers received and decided per local day, the 14 days up to the end of the range.
    SELECT
        formatDateTime(toTimeZone(window_start, 'Asia/Ho_Chi_Minh'), '%d/%m') AS day,
        sumIf(value, kpi = 'egov.dossiers_received') AS received,
        sumIf(value, kpi = 'egov.dossiers_resolved') AS resolved
    FROM ioc.kpi FINAL
    WHERE kpi IN ('egov.dossiers_received', 'egov.dossiers_resolved') AND `window` = '1d'
      AND window_start > $__toTime - INTERVAL 14 DAY AND window_start <= $__toTime
    GROUP BY window_start
    ORDER BY window_start
"""

BY_AGENCY_SQL = f"""
    -- Per agency: received today, the newest 30-day rates, open and overdue dossiers now
    -- (newest gauge values); most overdue first.
    SELECT
        coalesce(nullIf(a.name_vi, ''), k.entity) AS agency,
        k.received_today AS received_today,
        k.on_time AS on_time,
        k.online AS online,
        k.paid_online AS paid_online,
        k.open_now AS open_now,
        k.overdue_now AS overdue_now
    FROM
    (
        SELECT
            entity,
            sumIf(value, kpi = 'egov.dossiers_received' AND `window` = '1d'
                         AND window_start = {_TODAY}) AS received_today,
            argMaxIf(toNullable(value), window_end,
                     kpi = 'egov.on_time_rate' AND {_CURRENT_30D}) AS on_time,
            argMaxIf(toNullable(value), window_end,
                     kpi = 'egov.online_rate' AND {_CURRENT_30D}) AS online,
            argMaxIf(toNullable(value), window_end,
                     kpi = 'egov.online_payment_rate' AND {_CURRENT_30D}) AS paid_online,
            argMaxIf(toNullable(value), window_start,
                     kpi = 'egov.open_dossiers' AND window_start <= $__toTime) AS open_now,
            argMaxIf(toNullable(value), window_start,
                     kpi = 'egov.overdue_open' AND window_start <= $__toTime) AS overdue_now
        FROM ioc.kpi FINAL
        WHERE kpi IN ('egov.dossiers_received', 'egov.on_time_rate', 'egov.online_rate',
                      'egov.online_payment_rate', 'egov.open_dossiers', 'egov.overdue_open')
        GROUP BY entity
    ) AS k
    LEFT JOIN ioc.ref_egov_agencies AS a FINAL ON a.code = k.entity
    ORDER BY overdue_now DESC, on_time, agency
"""

FIRING_TABLE_SQL = """
    -- Firing e-government alerts, critical first, newest first; the place is the system or
    -- the agency.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        coalesce(nullIf(s.name_vi, ''), nullIf(g.name_vi, ''), nullIf(a.entity, ''),
                 a.area_code) AS place,
        a.starts_at AS since,
        a.acked_by AS acked_by
    FROM ioc.alerts AS a FINAL
    LEFT JOIN ioc.ref_egov_systems AS s FINAL ON s.system_id = a.entity
    LEFT JOIN ioc.ref_egov_agencies AS g FINAL ON g.code = a.entity
    WHERE a.domain = 'egov' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 50
"""

STATUS_MAP = dashboard_model.ValueMap(options={
    "1": dashboard_model.ValueMappingResult(text="Hoạt động", color="green", index=0),
    "0": dashboard_model.ValueMappingResult(text="NGỪNG HOẠT ĐỘNG", color="red", index=1),
    "-1": dashboard_model.ValueMappingResult(text="Không có số liệu", color="text", index=2),
})


def _prop(name: str, value: object) -> dashboard_model.DynamicConfigValue:
    return dashboard_model.DynamicConfigValue(name, value)


def _rate(*, red_below: float | None = None) -> list[dashboard_model.DynamicConfigValue]:
    props = [_prop("unit", "percentunit"), _prop("decimals", 1)]
    if red_below is not None:
        props.append(_prop("thresholds",
                           thresholds((None, "red"), (red_below, "green")).build()))
    return props


def build() -> dashboard_model.Dashboard:
    """The e-government wall dashboard model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tường chính quyền điện tử: hồ sơ thủ tục hành chính tiếp nhận, "
                    "giải quyết, đúng hạn, trực tuyến theo cơ quan; tình trạng các cổng và hệ "
                    "thống thông tin của tỉnh.")
    on_time_text = (f"Hồ sơ giải quyết đúng hạn / hồ sơ đã giải quyết trong 30 ngày; cảnh báo "
                    f"khi dưới {ON_TIME_THRESHOLD:.0%} với ít nhất {MIN_DECIDED} hồ sơ.")
    status = bar_gauge("Trạng thái hệ thống", SYSTEM_STATUS_SQL, grid(12, 4, 6, 9),
                       min_value=-1, max_value=1,
                       steps=((None, "text"), (0, "red"), (1, "green")),
                       description="Lần kiểm tra gần nhất trong 15 phút qua của từng cổng, hệ "
                                   "thống thông tin; đỏ: không truy cập được.")
    status.mappings([STATUS_MAP])
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        stat("Hồ sơ hôm nay", TODAY_SQL, grid(0, 0, 6, 4), decimals=0,
             labels={"received": "Tiếp nhận", "resolved": "Đã giải quyết"},
             description="Hồ sơ tiếp nhận và giải quyết trong ngày (giờ Việt Nam), toàn tỉnh."),
        stat("Tỷ lệ 30 ngày toàn tỉnh", PROVINCE_RATES_SQL, grid(6, 0, 6, 4), unit="percentunit",
             decimals=1,
             labels={"on_time": "Đúng hạn", "online": "Trực tuyến",
                     "paid_online": "Thanh toán trực tuyến"},
             overrides={"on_time": _rate(red_below=ON_TIME_THRESHOLD)},
             description="Tỷ lệ giải quyết đúng hạn, tỷ lệ hồ sơ nộp trực tuyến và tỷ lệ thanh "
                         "toán trực tuyến (hồ sơ có phí, lệ phí) trong 30 ngày, mọi cơ quan."),
        stat("Hệ thống đang ngừng hoạt động", SYSTEMS_DOWN_SQL, grid(12, 0, 6, 4), decimals=0,
             steps=((None, "green"), (1, "red")),
             labels={"down": "Đang ngừng", "checked": "Được giám sát"},
             overrides={"checked": [_prop("thresholds", thresholds((None, "blue")).build())]},
             description="Số hệ thống có lần kiểm tra gần nhất (15 phút qua) không đạt."),
        stat("Cảnh báo đang bật", FIRING_COUNT_SQL, grid(18, 0, 6, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
             overrides={"critical": [red_from(1)]},
             description="Cảnh báo hệ thống ngừng hoạt động và tỷ lệ đúng hạn thấp chưa kết "
                         "thúc."),
        bar_gauge("Tỷ lệ giải quyết đúng hạn theo cơ quan (30 ngày)", ON_TIME_BY_AGENCY_SQL,
                  grid(0, 4, 12, 9), unit="percentunit", min_value=0.8, max_value=1,
                  steps=((None, "red"), (ON_TIME_THRESHOLD, "green")),
                  description=on_time_text),
        status,
        table("Hệ thống: phản hồi và tỷ lệ hoạt động", SYSTEM_DETAILS_SQL, grid(18, 4, 6, 9),
              labels={"system": "Hệ thống", "response_ms": "Phản hồi (ms)",
                      "uptime_24h": "Hoạt động 24 giờ", "last_check": "Kiểm tra lúc"},
              overrides={"response_ms": [_prop("decimals", 0), width(90)],
                         "uptime_24h": [*_rate(red_below=0.99), cell("color-text"),
                                        width(100)],
                         "last_check": [width(150)]},
              description="Thời gian phản hồi trung bình trong giờ qua; tỷ lệ lần kiểm tra đạt "
                          "trong 24 giờ (đỏ dưới 99%)."),
        bar_chart("Hồ sơ tiếp nhận và giải quyết 14 ngày qua", DAILY_SQL, grid(0, 13, 12, 7),
                  x_field="day", labels={"received": "Tiếp nhận", "resolved": "Đã giải quyết"},
                  description="Theo ngày (giờ Việt Nam), mọi cơ quan."),
        table("Chỉ số theo cơ quan", BY_AGENCY_SQL, grid(12, 13, 12, 7),
              labels={"agency": "Cơ quan", "received_today": "Tiếp nhận hôm nay",
                      "on_time": "Đúng hạn 30 ngày", "online": "Trực tuyến",
                      "paid_online": "TT trực tuyến", "open_now": "Đang giải quyết",
                      "overdue_now": "Quá hạn"},
              overrides={"on_time": [*_rate(red_below=ON_TIME_THRESHOLD), cell("color-text")],
                         "online": _rate(), "paid_online": _rate(),
                         "overdue_now": [red_from(1), cell("color-text")]},
              description="Tỷ lệ 30 ngày mới nhất; hồ sơ đang giải quyết và quá hạn (không "
                          "tính hồ sơ chờ công dân bổ sung) tại thời điểm gần nhất."),
        firing_table("Cảnh báo chính quyền điện tử đang bật", FIRING_TABLE_SQL,
                     grid(0, 20, 24, 7), "Hệ thống / cơ quan",
                     "Hệ thống ngừng hoạt động và tỷ lệ giải quyết đúng hạn thấp chưa kết "
                     "thúc; nghiêm trọng trước, mới nhất trước.", place_column="place",
                     place_width=300),
    ]
    add_panels(builder, panels)
    return builder.build()
