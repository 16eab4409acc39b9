"""The alerts board ("Bảng cảnh báo"): model, layout, and every panel's SQL on real chDB, with
history made by the real dispatcher and sender records (notifications, deliveries, acks,
silences) as the sink stores them; the numbers are checked exactly."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard
from notify_helpers import CONFIG, alert

from ioc.connectors.notify.config import parse_config
from ioc.connectors.notify.deliveries import plan
from ioc.connectors.notify.engine import Dispatcher
from ioc.connectors.notify.history import ack_record
from ioc.connectors.notify.sender import delivery_record
from ioc.dashboards import alerts_board
from ioc.dashboards.build import iter_panels, panel_queries, render, render_dict
from ioc.dashboards.common import DATASOURCE_UID, GRID_COLUMNS, WALL_ROWS, serialise, to_dict
from ioc.dashboards.testing import PanelResult, layout_problems, problems, run_panel_queries
from ioc.infra.migrations import migrate
from ioc.infra.reference import load_into_clickhouse
from ioc.schemas.catalogue import Catalogue

NOW = datetime(2025, 3, 10, 13, 0, tzinfo=UTC)  # 20:00 in Quảng Nam
START = NOW - timedelta(hours=6)
H, M = timedelta(hours=1), timedelta(minutes=1)


def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]],
                        list[dict[str, Any]]]:
    """(alert records, history records, acks, silences) of six hours on the wall.

    a1 congestion (traffic, warning) firing since NOW-2h, acked after 10 min;
    a2 critical incident (security) firing since NOW-30m, not acked;
    a3 traffic critical 5h→4h ago (resolved after 1 h), acked after 10 min;
    a4 cyber warning 3h→2h30 ago (30 min); a5 traffic warning 90→80 min ago (10 min).
    """
    config = parse_config(CONFIG)
    a1 = alert("TK-HV-01", starts_at=NOW - 2 * H)
    a2 = alert("HA-01", severity="critical", rule="security.critical_incident",
               domain="security", area="503", starts_at=NOW - 30 * M)
    a3 = alert("TK-PCT-01", severity="critical", starts_at=NOW - 5 * H)
    a4 = alert("cong-dvc", domain="cyber", rule="cyber.negative_share", area="",
               starts_at=NOW - 3 * H)
    a5 = alert("QL1A-TK-01", starts_at=NOW - 90 * M)
    ends = {a3["alert_id"]: NOW - 4 * H, a4["alert_id"]: NOW - 150 * M,
            a5["alert_id"]: NOW - 80 * M}
    timeline: list[tuple[datetime, dict[str, Any]]] = []
    for a in (a1, a2, a3, a4, a5):
        timeline.append((a["starts_at"], a))
        if a["alert_id"] in ends:
            end = ends[a["alert_id"]]
            timeline.append((end, dict(a, status="resolved", ends_at=end, updated_at=end)))
    acks = [ack_record(a1["alert_id"], a1["starts_at"], "Trần Thị Bình", "Đã cử CSGT",
                       "link", a1["starts_at"] + 10 * M, None),
            ack_record(a3["alert_id"], a3["starts_at"], "Lê Văn Cường", "", "cli",
                       a3["starts_at"] + 10 * M, None)]
    silences = [{"silence_id": "s1", "matchers": ['entity="QL1A-DB-01"'],
                 "starts_at": NOW - H, "ends_at": NOW + H, "created_by": "Ngô Văn Khánh",
                 "comment": "Bảo trì camera", "created_at": NOW - H, "updated_at": NOW - H,
                 "expired_by": ""}]
    d = Dispatcher(config, START - H)
    events: list[dict[str, Any]] = []
    records = {a["alert_id"]: a for a in (a1, a2, a3, a4, a5)}
    t = START
    pending = sorted(timeline, key=lambda x: x[0])
    ack_at = {ack["acked_at"]: ack for ack in acks}
    while t <= NOW:
        while pending and pending[0][0] <= t:
            _, rec = pending.pop(0)
            records[rec["alert_id"]] = rec
            events += d.observe_alert(rec, t)
        if t in ack_at:
            events += d.observe_ack(ack_at[t])
        if t == silences[0]["created_at"]:
            events += d.observe_silence(silences[0])
        notes, suppressed = d.due(t)
        events += suppressed
        for n in notes:
            deliveries = plan(n, config)
            events.append(n.history_record(deliveries, f"Thông báo {n.reason}"))
            for dl in deliveries:
                if dl.channel == "telegram":  # Telegram fails once, then works
                    events.append(delivery_record(n, dl, 1, "failed", "HTTP 502", t, ""))
                    events.append(delivery_record(n, dl, 2, "sent", "ok", t + M, ""))
                else:
                    events.append(delivery_record(n, dl, 1, "sent", "ok", t, ""))
        t += M
    return list(records.values()), events, acks, silences


@pytest.fixture(scope="module")
def data(chdb_client: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    db = f"dash_al_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, db)
    load_into_clickhouse(chdb_client, db)
    alerts, events, acks, silences = scenario()
    cat = Catalogue()
    for topic, table, rows in (("ioc.alert.v1", "alerts", alerts),
                               ("ioc.alert_event.v1", "alert_events", events),
                               ("ioc.alert_ack.v1", "alert_acks", acks),
                               ("ioc.silence.v1", "silences", silences)):
        fields = cat.get(topic).field_names
        chdb_client.insert(f"{db}.{table}", [[r[f] for f in fields] for r in rows],
                           column_names=fields)
    try:
        yield db, {"events": events, "alerts": alerts}
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


@pytest.fixture(scope="module")
def results(chdb_client: Any, data: tuple[str, dict[str, Any]]) -> dict[str, PanelResult]:
    return run_panel_queries(chdb_client, data[0], render_dict("alerts_board"), START, NOW)


def test_identity_layout_and_deterministic_json() -> None:
    text = serialise(alerts_board.build())
    assert text == render("alerts_board")
    board = json.loads(text)
    assert (board["uid"], board["title"]) == ("ioc-alerts", "Bảng cảnh báo")
    assert "Bảng cảnh báo" in text and board["timezone"] == "Asia/Ho_Chi_Minh"
    found, covered = layout_problems(board)
    assert found == [] and covered == GRID_COLUMNS * WALL_ROWS
    panels = list(iter_panels(board))
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    for panel in panels:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
    register_default_plugins()
    assert to_dict(Dashboard.from_json(json.loads(text))) == board


def test_every_table_is_read_with_final_and_the_time_range() -> None:
    table_ref = re.compile(r"\b(FROM|JOIN)\s+(?!\()(\S+)(\s+AS\s+\w+)?(\s+FINAL)?", re.I)
    for title, raw in panel_queries(render_dict("alerts_board")):
        sql = re.sub(r"--[^\n]*", "", raw)
        for _, table, _, final in table_ref.findall(sql):
            assert table.startswith("ioc."), f"{title}: {table}"
            assert final.strip().upper() == "FINAL", f"{title}: {table} read without FINAL"
        assert "$__timeFilter(" in sql or "$__toTime" in sql, title


def test_every_panel_query_runs_and_returns_drawable_rows(
        results: dict[str, PanelResult]) -> None:
    board = render_dict("alerts_board")
    assert len(results) == len(list(iter_panels(board)))
    assert problems(board, results) == {}


def test_numbers_are_exact(results: dict[str, PanelResult],
                           data: tuple[str, dict[str, Any]]) -> None:
    firing = results["Số cảnh báo đang bật"]
    assert (firing.value("critical"), firing.value("warning")) == (1, 1)
    unacked = results["Chưa có người nhận xử lý"]
    assert (unacked.value("unacked"), unacked.value("acked")) == (1, 1)
    tta = results["Thời gian xác nhận"]
    assert (tta.value("median"), tta.value("p90")) == (600, 600)
    ttr = results["Thời gian đến khi kết thúc"]
    assert (ttr.value("median"), ttr.value("p90")) == (1800, 3600)

    table = results["Cảnh báo đang bật và người nhận xử lý"]
    rows = [dict(zip(table.columns, r, strict=True)) for r in table.rows]
    assert [(r["severity"], r["domain"], r["area"], r["acked_by"], r["time_to_ack"])
            for r in rows] == [
        ("critical", "An ninh trật tự", "Thành phố Hội An", "", None),
        ("warning", "Giao thông", "Thành phố Tam Kỳ", "Trần Thị Bình", 600)]
    assert rows[1]["ack_comment"] == "Đã cử CSGT"
    # a1: the first notification (group of TK-HV-01) and the one when QL1A-TK-01 joined and
    # left the group; a2: its own group's first notification
    assert [r["notifications"] for r in rows] == [1, 3]
    assert {r["last_outcome"] for r in rows} == {"Đã gửi"}

    deliveries = [e for e in data[1]["events"] if e["kind"] == "delivery"]
    by_channel = results["Kết quả gửi theo kênh"]
    got = {r[0]: r[1:] for r in by_channel.rows}
    for channel, (sent, failed, gave_up) in got.items():
        mine = [e for e in deliveries if e["channel"] == channel]
        assert (sent, failed, gave_up) == (
            sum(e["outcome"] == "sent" for e in mine),
            sum(e["outcome"] == "failed" for e in mine), 0)
    assert set(got) == {"email", "telegram"}
    series = results["Thông báo gửi đi theo kết quả"]
    assert sum(series.column("deliveries")) == len(deliveries)
    assert set(series.column("outcome")) == {"Đã gửi", "Lỗi, thử lại"}

    hist = results["Lịch sử cảnh báo và thông báo"]
    assert "Xác nhận" in hist.column("event") and "Tạo im lặng" in hist.column("event")
    assert "Trần Thị Bình" in hist.column("who")
    (silence,) = results["Im lặng đang hiệu lực"].rows
    assert silence[0] == 'entity="QL1A-DB-01"' and silence[2] == "Ngô Văn Khánh"
