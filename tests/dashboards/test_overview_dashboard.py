"""The province overview wall screen: layout, links, and every panel's SQL with exact values
on hand-made KPI and alert rows in chDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.dashboards import overview
from ioc.dashboards.build import iter_panels
from ioc.dashboards.common import GRID_COLUMNS, WALL_ROWS, to_dict
from ioc.dashboards.testing import layout_problems, problems, run_panel_queries

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 10:00 in Quảng Nam
DAY = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)  # local midnight of 30 Nov

KPI_COLUMNS = ["kpi", "window", "window_start", "window_end", "area_code", "entity", "value",
               "sample_count", "computed_at", "is_final"]
ALERT_COLUMNS = ["alert_id", "rule", "severity", "status", "domain", "area_code", "entity",
                 "value", "threshold", "summary", "starts_at", "ends_at", "updated_at",
                 "acked_by", "acked_at"]


def kpi(code: str, window: str, start: datetime, end: datetime, entity: str, value: float,
        n: int, area: str = "503") -> list[Any]:
    return [code, window, start, end, area, entity, value, n, NOW, 1]


def alert(i: int, domain: str, severity: str, area: str, status: str = "firing",
          ends: datetime | None = None, acked_by: str = "", rule: str = "") -> list[Any]:
    start = NOW - timedelta(minutes=30 + i)
    return [f"a{i}", rule or f"{domain}.rule{i}", severity, status, domain, area, "", 1.0, 1.0,
            f"Cảnh báo {i}", start, ends, ends or start, acked_by, None]


def seed(client: Any, db: str) -> None:
    w5 = NOW - timedelta(minutes=5)
    old5 = NOW - timedelta(minutes=10)
    hour = NOW - timedelta(hours=1)
    rows = [
        # newest 5m window: two congested segments of three; an older window does not count
        kpi("traffic.congestion_index", "5m", w5, NOW, "S1", 0.7, 10),
        kpi("traffic.congestion_index", "5m", w5, NOW, "S2", 0.6, 10),
        kpi("traffic.congestion_index", "5m", w5, NOW, "S3", 0.1, 10),
        kpi("traffic.congestion_index", "5m", old5 - timedelta(minutes=5), old5, "S3", 0.9, 9),
        # today's incidents: 3 + 4; yesterday's 50 do not count
        kpi("security.incidents", "1d", DAY, DAY + timedelta(days=1), "fire", 3, 3),
        kpi("security.incidents", "1d", DAY, DAY + timedelta(days=1), "theft", 4, 4, "502"),
        kpi("security.incidents", "1d", DAY - timedelta(days=1), DAY, "theft", 50, 50),
        # negative share weighted by mentions: (0.5·20 + 0.25·60) / 80 = 0.3125
        kpi("cyber.negative_share", "1h", hour, NOW, "dat_dai", 0.5, 20, ""),
        kpi("cyber.negative_share", "1h", hour, NOW, "y_te", 0.25, 60, ""),
        # on-time rate over 30 days: (0.9·100 + 1.0·300) / 400 = 0.975
        kpi("egov.on_time_rate", "30d", DAY + timedelta(days=1) - timedelta(days=30),
            DAY + timedelta(days=1), "SO-TNMT", 0.9, 100, ""),
        kpi("egov.on_time_rate", "30d", DAY + timedelta(days=1) - timedelta(days=30),
            DAY + timedelta(days=1), "SO-KHDT", 1.0, 300, ""),
        # beds: latest status per facility: 90/100 and 45/50 → 135/150 = 0.9
        kpi("health.bed_occupancy", "1m", NOW - timedelta(hours=2), NOW - timedelta(hours=2),
            "BV1", 0.5, 100),
        kpi("health.bed_occupancy", "1m", NOW - timedelta(hours=1), NOW - timedelta(hours=1),
            "BV1", 0.9, 100),
        kpi("health.bed_occupancy", "1m", NOW - timedelta(hours=1), NOW - timedelta(hours=1),
            "BV2", 0.9, 50),
        # attendance today weighted by enrolment: (0.8·1000 + 0.95·3000) / 4000 = 0.9125
        kpi("edu.attendance_rate", "1d", DAY, DAY + timedelta(days=1), "", 0.8, 1000, "504"),
        kpi("edu.attendance_rate", "1d", DAY, DAY + timedelta(days=1), "", 0.95, 3000, "502"),
        # backlog: the newest gauge per agency: 12 + 30
        kpi("feedback.backlog", "1m", NOW - timedelta(minutes=3), NOW - timedelta(minutes=2),
            "UBND-503", 10, 10),
        kpi("feedback.backlog", "1m", NOW - timedelta(minutes=2), NOW - timedelta(minutes=1),
            "UBND-503", 12, 12),
        kpi("feedback.backlog", "1m", NOW - timedelta(minutes=2), NOW - timedelta(minutes=1),
            "UBND-502", 30, 30),
    ]
    client.insert(f"{db}.kpi", rows, column_names=KPI_COLUMNS)
    alerts = [
        alert(1, "traffic", "critical", "503", acked_by="Nguyễn Văn An"),
        alert(2, "health", "critical", "503"),
        alert(3, "econ", "warning", "502", rule="econ.behind_plan"),
        alert(4, "econ", "warning", ""),
        # resolved an hour ago: not active
        alert(5, "cyber", "critical", "504", status="resolved", ends=NOW - timedelta(hours=1)),
    ]
    client.insert(f"{db}.alerts", alerts, column_names=ALERT_COLUMNS)


def test_overview_fits_one_screen_and_links_every_headline_to_its_subsystem() -> None:
    board = to_dict(overview.build())
    found, covered = layout_problems(board)
    assert found == []
    assert covered == GRID_COLUMNS * WALL_ROWS
    links = {p["title"]: p["links"][0]["url"] for p in iter_panels(board) if p.get("links")}
    assert len(links) == len(overview.HEADLINES) == 8
    assert all(url.startswith("/d/ioc-") and "__url_time_range" in url for url in links.values())


def test_every_overview_panel_returns_the_exact_numbers(chdb_client: Any,
                                                        fresh_db: str) -> None:
    seed(chdb_client, fresh_db)
    board = to_dict(overview.build())
    res = run_panel_queries(chdb_client, fresh_db, board, NOW - timedelta(hours=6), NOW)
    assert problems(board, res) == {}
    # two critical situations in two subsystems → level 4
    assert res["Mức độ tình hình"].value("level") == 4
    assert res["Mức độ tình hình"].value("name") == "Báo động"
    assert res["Giao thông: đoạn ùn tắc"].value("congested") == 2
    assert res["An ninh trật tự: vụ việc hôm nay"].value("incidents") == 7
    assert res["Tin tiêu cực trên mạng"].value("negative_share") == 0.3125
    assert res["Kinh tế: chỉ tiêu chậm tiến độ"].value("behind") == 1
    assert res["Hồ sơ đúng hạn (30 ngày)"].value("on_time") == 0.975
    assert res["Y tế: giường bệnh đã dùng"].value("occupancy") == 0.9
    assert res["Giáo dục: chuyên cần"].value("attendance") == 0.9125
    assert res["Phản ánh tồn đọng"].value("backlog") == 42
    areas = {r[0]: r[3:] for r in res["Bản đồ cảnh báo theo địa bàn"].rows}
    assert len(areas) == 18
    assert areas["Thành phố Hội An"] == (2, 2)
    assert areas["Thành phố Tam Kỳ"] == (1, 1)
    assert areas["Huyện Tây Giang"] == (0, 0)
    by_domain = {r[0]: r[1:] for r in res["Cảnh báo đang bật theo lĩnh vực"].rows}
    assert by_domain == {"Giao thông": (1, 0), "Y tế": (1, 0), "Kinh tế – xã hội": (0, 2)}
    firing = res["Cảnh báo đang bật trên toàn tỉnh"]
    assert firing.column("severity")[:2] == ["critical", "critical"]
    assert sorted(firing.column("area")) == ["Thành phố Hội An", "Thành phố Hội An",
                                             "Thành phố Tam Kỳ", "Toàn tỉnh"]
    assert "Nguyễn Văn An" in firing.column("acked_by")
