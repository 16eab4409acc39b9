"""The online-information and cyber-security wall screen: "Thông tin trên mạng và an toàn thông
tin" (uid ``ioc-cyber``).

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

====  ============================================================================
rows  panels
====  ============================================================================
0–3   mentions and negative share in the hour before the end of the range · security events
      in the last 24 hours by severity · firing cyber alerts
4–12  negative share per hour by topic (1h KPI) · mentions by topic in the newest finished hour
13–19 security events by system in the last 24 hours (1h KPIs, per severity) · latest
      security events
20–26 firing cyber alerts
====  ============================================================================

Data: ``ioc.kpi`` (``cyber.mentions``, ``cyber.negative_share``, ``cyber.security_events_*``,
all 1h), raw ``ioc.cyber_mention`` / ``ioc.cyber_security_event`` for the rolling hour and the
latest list, ``ioc.ref_cyber_topics`` / ``ioc.ref_gov_systems`` for names, ``ioc.alerts``;
always ``FINAL``. The negative share of several keys (a topic's province-wide and local
mentions) is combined exactly as Σ share·mentions / Σ mentions (``sample_count`` is the number
of mentions).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
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
    red_from,
    stat,
    table,
    timeseries,
    wall_dashboard,
    width,
)
from ioc.streams.cyber import EVENT_TYPE_VI, NEGATIVE_BELOW

UID = "ioc-cyber"
TITLE = "Thông tin trên mạng và an toàn thông tin"
TAGS = ["ioc", "an-toan-thong-tin", "cyber", "wall"]

NEGATIVE_WARNING = 0.5
TOP_TOPICS = 8

_LAST_HOUR = "m.occurred_at > $__toTime - INTERVAL 1 HOUR AND m.occurred_at <= $__toTime"
_LAST_24H = "e.occurred_at > $__toTime - INTERVAL 24 HOUR AND e.occurred_at <= $__toTime"


def _topic_name(code: str) -> str:
    return f"coalesce(nullIf(t.name_vi, ''), {code})"


def _event_type_label(column: str) -> str:
    codes = ", ".join(f"'{c}'" for c in EVENT_TYPE_VI)
    names = ", ".join(f"'{n}'" for n in EVENT_TYPE_VI.values())
    return f"transform({column}, [{codes}], [{names}], {column})"


MENTIONS_NOW_SQL = f"""
    -- Mentions in the hour before the end of the range and the share below {NEGATIVE_BELOW}
    -- (raw events, so the hour rolls with the clock).
    SELECT count() AS mentions,
           if(count() = 0, NULL, countIf(m.sentiment_score < {NEGATIVE_BELOW}) / count())
               AS negative_share
    FROM ioc.cyber_mention AS m FINAL
    WHERE {_LAST_HOUR}
"""

SECURITY_EVENTS_24H_SQL = f"""
    -- Security events on government systems in the 24 hours before the end of the range.
    SELECT count() AS events,
           countIf(e.severity IN ('high', 'critical')) AS serious
    FROM ioc.cyber_security_event AS e FINAL
    WHERE {_LAST_24H}
"""

FIRING_COUNT_SQL = firing_count_sql("cyber", "Cyber")

NEGATIVE_SERIES_SQL = f"""
    -- Negative share per finished hour for the {TOP_TOPICS} most mentioned topics of the range;
    -- a topic's province-wide and local rows are weighted by their mentions.
    SELECT
        k.window_start AS time,
        {_topic_name('k.entity')} AS topic,
        round(sum(k.value * k.sample_count) / sum(k.sample_count), 3) AS negative_share
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_cyber_topics AS t FINAL ON t.code = k.entity
    WHERE k.kpi = 'cyber.negative_share' AND k.`window` = '1h'
      AND $__timeFilter(k.window_start) AND k.window_end <= $__toTime
      AND k.entity IN
      (
          SELECT entity FROM ioc.kpi FINAL
          WHERE kpi = 'cyber.mentions' AND `window` = '1h'
            AND $__timeFilter(window_start) AND window_end <= $__toTime
          GROUP BY entity
          ORDER BY sum(value) DESC, entity
          LIMIT {TOP_TOPICS}
      )
    GROUP BY time, topic
    HAVING sum(k.sample_count) > 0
    ORDER BY time, topic
"""

MENTIONS_BY_TOPIC_SQL = f"""
    -- Mentions by topic in the newest finished hour.
    SELECT
        {_topic_name('k.entity')} AS topic,
        sum(k.value) AS mentions
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_cyber_topics AS t FINAL ON t.code = k.entity
    WHERE k.kpi = 'cyber.mentions' AND k.`window` = '1h'
      AND k.window_start =
      (
          SELECT max(window_start) FROM ioc.kpi FINAL
          WHERE kpi = 'cyber.mentions' AND `window` = '1h'
            AND $__timeFilter(window_start) AND window_end <= $__toTime
      )
    GROUP BY topic
    ORDER BY mentions DESC, topic
"""

EVENTS_BY_SYSTEM_SQL = """
    -- Security events per system and severity in the 24 hours before the end of the range
    -- (1h KPIs whose hour started in that span).
    SELECT
        coalesce(nullIf(s.name_vi, ''), k.entity) AS system,
        sumIf(k.value, k.kpi = 'cyber.security_events_critical') AS critical,
        sumIf(k.value, k.kpi = 'cyber.security_events_high') AS high,
        sumIf(k.value, k.kpi = 'cyber.security_events_medium') AS medium,
        sumIf(k.value, k.kpi = 'cyber.security_events_low') AS low
    FROM ioc.kpi AS k FINAL
    LEFT JOIN ioc.ref_gov_systems AS s FINAL ON s.system_id = k.entity
    WHERE k.kpi IN ('cyber.security_events_critical', 'cyber.security_events_high',
                    'cyber.security_events_medium', 'cyber.security_events_low')
      AND k.`window` = '1h'
      AND k.window_start > $__toTime - INTERVAL 24 HOUR AND k.window_start <= $__toTime
    GROUP BY system
    ORDER BY critical DESC, high DESC, medium + low DESC, system
"""

LATEST_EVENTS_SQL = f"""
    -- The newest security events up to the end of the range.
    SELECT
        e.occurred_at AS time,
        coalesce(nullIf(s.name_vi, ''), e.system) AS system,
        {_event_type_label('e.event_type')} AS event_type,
        e.severity AS severity,
        e.src_ip AS src_ip
    FROM ioc.cyber_security_event AS e FINAL
    LEFT JOIN ioc.ref_gov_systems AS s FINAL ON s.system_id = e.system
    WHERE $__timeFilter(e.occurred_at)
    ORDER BY e.occurred_at DESC, e.event_id
    LIMIT 30
"""

FIRING_TABLE_SQL = f"""
    -- Firing cyber alerts, critical first, newest first; the place is the system or topic.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        coalesce(nullIf(s.name_vi, ''), nullIf(t.name_vi, ''), nullIf(a.entity, ''),
                 a.area_code) AS area,
        a.starts_at AS since,
        {ACKED_BY} AS acked_by
    FROM ioc.alerts AS a FINAL
    {ACK_JOIN}
    LEFT JOIN ioc.ref_gov_systems AS s FINAL ON s.system_id = a.entity
    LEFT JOIN ioc.ref_cyber_topics AS t FINAL ON t.code = a.entity
    WHERE a.domain = 'cyber' AND a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 50
"""

_CYBER_SEVERITY_MAP = dashboard_model.ValueMap(options={
    "critical": dashboard_model.ValueMappingResult(text="Nghiêm trọng", color="red", index=0),
    "high": dashboard_model.ValueMappingResult(text="Cao", color="orange", index=1),
    "medium": dashboard_model.ValueMappingResult(text="Trung bình", color="yellow", index=2),
    "low": dashboard_model.ValueMappingResult(text="Thấp", color="green", index=3),
})

_FIXED = {"critical": "red", "high": "orange", "medium": "yellow", "low": "green"}


def build() -> dashboard_model.Dashboard:
    """The cyber wall dashboard model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Màn hình tường thông tin trên mạng và an toàn thông tin: lượt đề cập, dư "
                    "luận tiêu cực theo chủ đề, sự cố trên các hệ thống thông tin của tỉnh.")
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        stat("Đề cập trong giờ qua", MENTIONS_NOW_SQL, grid(0, 0, 8, 4),
             labels={"mentions": "Lượt đề cập", "negative_share": "Tỷ lệ tiêu cực"},
             overrides={"negative_share": [
                 dashboard_model.DynamicConfigValue("unit", "percentunit"),
                 dashboard_model.DynamicConfigValue("decimals", 0),
                 red_from(NEGATIVE_WARNING)]},
             description="Lượt đề cập trong 60 phút tính đến cuối khoảng thời gian đang xem; "
                         f"tiêu cực: điểm cảm xúc dưới {NEGATIVE_BELOW}."),
        stat("Sự cố an toàn thông tin 24 giờ qua", SECURITY_EVENTS_24H_SQL, grid(8, 0, 8, 4),
             decimals=0, labels={"events": "Tổng số", "serious": "Mức cao trở lên"},
             overrides={"serious": [red_from(1)]},
             description="Sự kiện an toàn thông tin trên các hệ thống của tỉnh trong 24 giờ."),
        stat("Cảnh báo đang bật", FIRING_COUNT_SQL, grid(16, 0, 8, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
             overrides={"critical": [red_from(1)]},
             description="Cảnh báo dư luận tiêu cực và sự cố an toàn thông tin chưa kết thúc."),
        timeseries("Tỷ lệ tiêu cực theo chủ đề (theo giờ)", NEGATIVE_SERIES_SQL,
                   grid(0, 4, 14, 9), unit="percentunit", series_label="topic",
                   min_interval="1h",
                   description=f"{TOP_TOPICS} chủ đề được nhắc đến nhiều nhất; cảnh báo khi "
                               f"tỷ lệ tiêu cực ≥ {NEGATIVE_WARNING:.0%} với ít nhất 20 lượt "
                               "đề cập trong một giờ."),
        bar_gauge("Lượt đề cập theo chủ đề (giờ gần nhất)", MENTIONS_BY_TOPIC_SQL,
                  grid(14, 4, 10, 9), steps=((None, "blue"),),
                  description="Khung 1 giờ gần nhất đã kết thúc, toàn tỉnh và các địa bàn."),
        bar_chart("Sự cố theo hệ thống (24 giờ qua)", EVENTS_BY_SYSTEM_SQL, grid(0, 13, 12, 7),
                  x_field="system",
                  labels={"critical": "Nghiêm trọng", "high": "Cao", "medium": "Trung bình",
                          "low": "Thấp"},
                  overrides={sev: [dashboard_model.DynamicConfigValue(
                      "color", {"mode": "fixed", "fixedColor": color})]
                      for sev, color in _FIXED.items()},
                  description="Số sự kiện an toàn thông tin theo hệ thống và mức độ."),
        table("Sự kiện an toàn thông tin mới nhất", LATEST_EVENTS_SQL, grid(12, 13, 12, 7),
              labels={"time": "Thời gian", "system": "Hệ thống", "event_type": "Loại",
                      "severity": "Mức độ", "src_ip": "Địa chỉ nguồn"},
              overrides={"time": [width(160)],
                         "severity": [dashboard_model.DynamicConfigValue(
                             "mappings", [_CYBER_SEVERITY_MAP]), cell("color-background"),
                             width(120)],
                         "src_ip": [width(130)]},
              description="30 sự kiện gần nhất trong khoảng thời gian đang xem."),
        firing_table("Cảnh báo thông tin và an toàn thông tin đang bật", FIRING_TABLE_SQL,
                     grid(0, 20, 24, 7), "Hệ thống / chủ đề",
                     "Dư luận tiêu cực và sự cố nghiêm trọng chưa kết thúc; nghiêm trọng trước, "
                     "mới nhất trước."),
    ]
    add_panels(builder, panels)
    return builder.build()

