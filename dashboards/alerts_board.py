"""The alerts board: "Bảng cảnh báo" (uid ``ioc-alerts``) — who has which alert, how fast.

One 1920x1080 kiosk screen, 24 columns × 27 rows, no scrolling:

====  ============================================================================
rows  panels
====  ============================================================================
0–3   firing alerts by severity · firing and not yet acknowledged · time to acknowledge
      (median, 90th percentile) · time to resolve (median, 90th percentile)
4–13  firing alerts: severity, summary, area, since, acknowledged by, time to acknowledge,
      comment, notifications sent, last delivery outcome
14–20 deliveries per hour by outcome · deliveries by channel and outcome
21–26 recent history (state changes, notifications, deliveries, acks, silences) · active
      silences
====  ============================================================================

Data: ``ioc.alerts`` (latest state of each episode), ``ioc.alert_acks`` (latest ack of each
episode, with ``first_acked_at``), ``ioc.alert_events`` (the notifier's history: what was sent
to whom, with what outcome) and ``ioc.silences``; always ``FINAL``. Time to acknowledge counts
from the alert's start to its first acknowledgement; time to resolve from start to end.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from ioc.connectors.notify.model import DOMAIN_VI
from ioc.dashboards.common import (
    ACK_JOIN,
    NOT_ACKED,
    SEVERITY_MAP,
    add_panels,
    bar_chart,
    cell,
    grid,
    red_from,
    stat,
    table,
    timeseries,
    wall_dashboard,
    width,
)

UID = "ioc-alerts"
TITLE = "Bảng cảnh báo"
TAGS = ["ioc", "canh-bao", "alerts", "wall"]

EVENT_VI = {"alert_firing": "Kích hoạt", "alert_resolved": "Kết thúc",
            "notification": "Thông báo", "delivery": "Gửi tin", "suppressed": "Không gửi",
            "acked": "Xác nhận", "silence_created": "Tạo im lặng",
            "silence_expired": "Kết thúc im lặng"}
OUTCOME_VI = {"sent": "Đã gửi", "failed": "Lỗi, thử lại", "gave_up": "Không gửi được",
              "superseded": "Thay bằng tin mới hơn"}


def translate(column: str, names: dict[str, str]) -> str:
    """SQL turning codes into Vietnamese names (unknown codes stay as they are)."""
    codes = ", ".join(f"'{c}'" for c in names)
    values = ", ".join(f"'{n}'" for n in names.values())
    return f"transform({column}, [{codes}], [{values}], {column})"


FIRING_COUNT_SQL = """
    -- Alerts firing now (latest state of each episode), by severity.
    SELECT countIf(severity = 'critical') AS critical,
           countIf(severity != 'critical') AS warning
    FROM ioc.alerts FINAL
    WHERE status = 'firing' AND starts_at <= $__toTime
"""

UNACKED_SQL = f"""
    -- Firing alerts nobody has taken on yet, and those someone has.
    SELECT countIf(k.acked_by = '') AS unacked,
           countIf(k.acked_by != '') AS acked
    FROM ioc.alerts AS a FINAL
    {ACK_JOIN}
    WHERE a.status = 'firing' AND a.starts_at <= $__toTime
"""

TIME_TO_ACK_SQL = """
    -- From an alert's start to its first acknowledgement, for episodes first acknowledged in
    -- the range (seconds).
    SELECT quantileExact(0.5)(dateDiff('second', k.starts_at, k.first_acked_at)) AS median,
           quantileExact(0.9)(dateDiff('second', k.starts_at, k.first_acked_at)) AS p90
    FROM ioc.alert_acks AS k FINAL
    WHERE $__timeFilter(k.first_acked_at)
"""

TIME_TO_RESOLVE_SQL = """
    -- From an alert's start to its end, for episodes that ended in the range (seconds).
    SELECT quantileExact(0.5)(dateDiff('second', a.starts_at, a.ends_at)) AS median,
           quantileExact(0.9)(dateDiff('second', a.starts_at, a.ends_at)) AS p90
    FROM ioc.alerts AS a FINAL
    WHERE a.status = 'resolved' AND a.ends_at IS NOT NULL AND $__timeFilter(a.ends_at)
"""

FIRING_SQL = f"""
    -- Firing alerts with who took them on and what the notifier sent about them; not yet
    -- acknowledged and critical first.
    SELECT
        a.severity AS severity,
        a.summary AS summary,
        {translate('a.domain', DOMAIN_VI)} AS domain,
        coalesce(nullIf(ar.name_vi, ''), a.area_code) AS area,
        a.starts_at AS since,
        k.acked_by AS acked_by,
        if(k.acked_by = '', NULL,
           dateDiff('second', a.starts_at, k.first_acked_at)) AS time_to_ack,
        k.comment AS ack_comment,
        n.notifications AS notifications,
        {translate('n.last_outcome', OUTCOME_VI)} AS last_outcome
    FROM ioc.alerts AS a FINAL
    LEFT JOIN ioc.ref_areas AS ar FINAL ON ar.code = a.area_code
    {ACK_JOIN}
    LEFT JOIN
    (
        -- per episode (alert_keys: alert_id|starts_at_ms|status|severity)
        SELECT
            episode,
            countIf(kind = 'notification') AS notifications,
            argMaxIf(outcome, occurred_at, kind = 'delivery') AS last_outcome
        FROM
        (
            SELECT kind, outcome, occurred_at,
                   arrayStringConcat(arraySlice(splitByChar('|', arrayJoin(alert_keys)), 1, 2),
                                     '|') AS episode
            FROM ioc.alert_events FINAL
            WHERE kind IN ('notification', 'delivery') AND occurred_at <= $__toTime
        )
        GROUP BY episode
    ) AS n ON n.episode = concat(a.alert_id, '|', toString(toUnixTimestamp64Milli(a.starts_at)))
    WHERE a.status = 'firing' AND a.starts_at <= $__toTime
    ORDER BY k.acked_by != '', a.severity = 'critical' DESC, a.starts_at DESC
    LIMIT 100
"""

OUTCOMES_SQL = f"""
    -- Deliveries (one per recipient and channel) per hour, by outcome.
    SELECT
        $__timeInterval(e.occurred_at) AS time,
        {translate('e.outcome', OUTCOME_VI)} AS outcome,
        count() AS deliveries
    FROM ioc.alert_events AS e FINAL
    WHERE e.kind = 'delivery' AND e.outcome IN ('sent', 'failed', 'gave_up')
      AND $__timeFilter(e.occurred_at)
    GROUP BY time, outcome
    ORDER BY time, outcome
"""

CHANNELS_SQL = """
    -- Deliveries by channel in the range: sent, failed attempts, given up.
    SELECT
        e.channel AS channel,
        countIf(e.outcome = 'sent') AS sent,
        countIf(e.outcome = 'failed') AS failed,
        countIf(e.outcome = 'gave_up') AS gave_up
    FROM ioc.alert_events AS e FINAL
    WHERE e.kind = 'delivery' AND $__timeFilter(e.occurred_at)
    GROUP BY channel
    ORDER BY channel
"""

HISTORY_SQL = f"""
    -- The newest history records: state changes, notifications, deliveries, acks, silences.
    SELECT
        e.occurred_at AS time,
        {translate('e.kind', EVENT_VI)} AS event,
        e.summary AS summary,
        e.receiver AS receiver,
        e.channel AS channel,
        e.recipient AS recipient,
        {translate('e.outcome', OUTCOME_VI)} AS outcome,
        if(e.actor != '', e.actor, e.detail) AS who
    FROM ioc.alert_events AS e FINAL
    WHERE $__timeFilter(e.occurred_at)
    ORDER BY e.occurred_at DESC, e.event_id
    LIMIT 100
"""

SILENCES_SQL = """
    -- Silences in force at the end of the range.
    SELECT
        arrayStringConcat(s.matchers, ', ') AS matchers,
        s.ends_at AS until,
        s.created_by AS created_by,
        s.comment AS comment
    FROM ioc.silences AS s FINAL
    WHERE s.starts_at <= $__toTime AND s.ends_at > $__toTime
    ORDER BY s.ends_at
"""

OUTCOME_MAP = dashboard_model.ValueMap(options={
    "Đã gửi": dashboard_model.ValueMappingResult(color="green", index=0),
    "Lỗi, thử lại": dashboard_model.ValueMappingResult(color="orange", index=1),
    "Không gửi được": dashboard_model.ValueMappingResult(color="red", index=2),
})


def _unit(name: str) -> dashboard_model.DynamicConfigValue:
    return dashboard_model.DynamicConfigValue("unit", name)


def build() -> dashboard_model.Dashboard:
    """The alerts board model (a fresh object on every call)."""
    builder: dashboard_builder.Dashboard = wall_dashboard(
        UID, TITLE, TAGS,
        description="Bảng cảnh báo: cảnh báo đang bật, ai đã nhận xử lý, thời gian xác nhận "
                    "và xử lý, kết quả gửi thông báo.")
    duration_steps = ((None, "green"), (900, "orange"), (3600, "red"))
    panels: list[cogbuilder.Builder[dashboard_model.Panel]] = [
        stat("Số cảnh báo đang bật", FIRING_COUNT_SQL, grid(0, 0, 6, 4), decimals=0,
             steps=((None, "green"), (1, "orange")),
             labels={"critical": "Nghiêm trọng", "warning": "Cảnh báo"},
             overrides={"critical": [red_from(1)]},
             description="Cảnh báo chưa kết thúc của mọi lĩnh vực, theo mức độ."),
        stat("Chưa có người nhận xử lý", UNACKED_SQL, grid(6, 0, 6, 4), decimals=0,
             steps=((None, "green"),),
             labels={"unacked": "Chưa xác nhận", "acked": "Đã xác nhận"},
             overrides={"unacked": [red_from(1)]},
             description="Cảnh báo đang bật chưa được ai xác nhận xử lý, và đã được xác nhận."),
        stat("Thời gian xác nhận", TIME_TO_ACK_SQL, grid(12, 0, 6, 4), unit="s", decimals=0,
             steps=duration_steps, labels={"median": "Trung vị", "p90": "90% trong"},
             description="Từ lúc cảnh báo bắt đầu đến lần xác nhận đầu tiên, các đợt được xác "
                         "nhận trong khoảng thời gian đang xem."),
        stat("Thời gian đến khi kết thúc", TIME_TO_RESOLVE_SQL, grid(18, 0, 6, 4), unit="s",
             decimals=0, steps=duration_steps,
             labels={"median": "Trung vị", "p90": "90% trong"},
             description="Từ lúc cảnh báo bắt đầu đến lúc kết thúc, các đợt kết thúc trong "
                         "khoảng thời gian đang xem."),
        table("Cảnh báo đang bật và người nhận xử lý", FIRING_SQL, grid(0, 4, 24, 10),
              labels={"severity": "Mức độ", "summary": "Nội dung", "domain": "Lĩnh vực",
                      "area": "Địa bàn", "since": "Bắt đầu lúc", "acked_by": "Người xác nhận",
                      "time_to_ack": "Xác nhận sau", "ack_comment": "Ghi chú",
                      "notifications": "Số thông báo", "last_outcome": "Lần gửi gần nhất"},
              overrides={
                  "severity": [dashboard_model.DynamicConfigValue("mappings", [SEVERITY_MAP]),
                               cell("color-background"), width(120)],
                  "domain": [width(150)], "area": [width(170)], "since": [width(160)],
                  "acked_by": [dashboard_model.DynamicConfigValue("mappings", [NOT_ACKED]),
                               width(150)],
                  "time_to_ack": [_unit("s"), width(110)],
                  "notifications": [width(110)],
                  "last_outcome": [dashboard_model.DynamicConfigValue("mappings",
                                                                      [OUTCOME_MAP]),
                                   cell("color-text"), width(140)],
              },
              description="Chưa được xác nhận và nghiêm trọng xếp trước. Người xác nhận: qua "
                          "liên kết trong thông báo hoặc lệnh `ioc alerts ack`."),
        timeseries("Thông báo gửi đi theo kết quả", OUTCOMES_SQL, grid(0, 14, 14, 7),
                   series_label="outcome", min_interval="1h",
                   description="Số lượt gửi (mỗi người nhận, mỗi kênh) theo giờ và kết quả."),
        bar_chart("Kết quả gửi theo kênh", CHANNELS_SQL, grid(14, 14, 10, 7), x_field="channel",
                  labels={"sent": "Đã gửi", "failed": "Lỗi, thử lại",
                          "gave_up": "Không gửi được"},
                  overrides={
                      "sent": [dashboard_model.DynamicConfigValue(
                          "color", {"mode": "fixed", "fixedColor": "green"})],
                      "failed": [dashboard_model.DynamicConfigValue(
                          "color", {"mode": "fixed", "fixedColor": "orange"})],
                      "gave_up": [dashboard_model.DynamicConfigValue(
                          "color", {"mode": "fixed", "fixedColor": "red"})]},
                  description="Lượt gửi theo kênh (email, Telegram, webhook, SMS…) trong khoảng "
                              "thời gian đang xem."),
        table("Lịch sử cảnh báo và thông báo", HISTORY_SQL, grid(0, 21, 16, 6),
              labels={"time": "Thời gian", "event": "Sự kiện", "summary": "Nội dung",
                      "receiver": "Tổ trực", "channel": "Kênh", "recipient": "Người nhận",
                      "outcome": "Kết quả", "who": "Người thực hiện / chi tiết"},
              overrides={"time": [width(150)], "event": [width(110)],
                         "receiver": [width(130)], "channel": [width(90)],
                         "outcome": [dashboard_model.DynamicConfigValue("mappings",
                                                                        [OUTCOME_MAP]),
                                     cell("color-text"), width(120)]},
              description="100 bản ghi mới nhất của bộ gửi thông báo."),
        table("Im lặng đang hiệu lực", SILENCES_SQL, grid(16, 21, 8, 6),
              labels={"matchers": "Điều kiện", "until": "Đến", "created_by": "Người tạo",
                      "comment": "Lý do"},
              overrides={"until": [width(150)]},
              description="Cảnh báo khớp điều kiện không được gửi thông báo đến hết thời hạn "
                          "(`ioc alerts silence`)."),
    ]
    add_panels(builder, panels)
    return builder.build()
