"""The traffic wall dashboard: its model, its layout, and every panel's SQL on a real chDB."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ioc.dashboards import build, traffic
from ioc.dashboards.common import (
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    GRID_COLUMNS,
    TIMEZONE,
    WALL_ROWS,
    serialise,
)
from ioc.dashboards.testing import (
    layout_problems,
    problems,
    rewrite_database,
    run_panel_queries,
)

NOW = datetime(2025, 3, 10, 3, 0, tzinfo=UTC)  # 10:00 in Quảng Nam
RANGE = (NOW - timedelta(hours=6), NOW)


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return build.render_dict("traffic")


def _has_diacritics(text: str) -> bool:
    return any(unicodedata.decomposition(ch) for ch in text if ch.isalpha() and ord(ch) > 127)


# --- the model -----------------------------------------------------------------------------


def test_two_builds_serialise_to_identical_text() -> None:
    assert serialise(traffic.build()) == serialise(traffic.build())
    assert build.render("traffic") == build.render("traffic")
    assert build.render("traffic").endswith("}\n")


def test_serialisation_is_sorted_indented_and_keeps_vietnamese() -> None:
    text = build.render("traffic")
    assert "Giao thông và trật tự đô thị" in text  # not \\u escapes
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2,
                              ensure_ascii=False) + "\n"


def test_dashboard_defaults(board: dict[str, Any]) -> None:
    assert board["uid"] == "ioc-traffic"
    assert board["title"] == "Giao thông và trật tự đô thị"
    assert board["refresh"] == "30s"
    assert board["time"] == {"from": "now-6h", "to": "now"}
    assert board["timezone"] == TIMEZONE == "Asia/Ho_Chi_Minh"
    assert board["editable"] is False
    assert "traffic" in board["tags"]
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36


def test_every_panel_and_target_reads_the_ioc_clickhouse_datasource(
        board: dict[str, Any]) -> None:
    panels = list(build.iter_panels(board))
    assert len(panels) >= 9
    for panel in panels:
        assert panel["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE_UID
            assert target["editorType"] == "sql"
            assert target["format"] == (0 if panel["type"] == "timeseries" else 1)


def test_layout_fits_one_wall_screen_without_overlap(board: dict[str, Any]) -> None:
    found, covered = layout_problems(board)
    assert found == []
    # The screen is used edge to edge: no empty cell left on the wall.
    assert covered == GRID_COLUMNS * WALL_ROWS


def test_panel_ids_are_unique_and_stable(board: dict[str, Any]) -> None:
    ids = [p["id"] for p in build.iter_panels(board)]
    assert ids == list(range(1, len(ids) + 1))


def test_titles_are_vietnamese_with_diacritics(board: dict[str, Any]) -> None:
    assert _has_diacritics(board["title"])
    titles = [p["title"] for p in build.iter_panels(board)]
    assert len(set(titles)) == len(titles)
    for title in titles:
        assert _has_diacritics(title), title


def test_every_table_is_read_from_database_ioc_with_final(board: dict[str, Any]) -> None:
    queries = build.panel_queries(board)
    assert len(queries) == len(list(build.iter_panels(board)))
    table_ref = re.compile(r"\b(FROM|JOIN)\s+(?!\()(\S+)(\s+AS\s+\w+)?(\s+FINAL)?", re.I)
    for title, raw in queries:
        sql = re.sub(r"--[^\n]*", "", raw)  # comments may say anything
        refs = table_ref.findall(sql)
        assert refs, title
        for _, table, _, final in refs:
            assert table.startswith("ioc."), f"{title}: {table}"
            assert final.strip().upper() == "FINAL", f"{title}: {table} read without FINAL"
        # `window` is a keyword-like column name: always quoted.
        assert not re.search(r"(?<!`)\bwindow\b(?!`)", sql.replace("window_", "")), title


def test_every_query_uses_the_dashboard_time_range(board: dict[str, Any]) -> None:
    for title, sql in build.panel_queries(board):
        assert "$__timeFilter(" in sql or "$__toTime" in sql, title


# --- provisioning files --------------------------------------------------------------------


def test_committed_provisioning_files_are_up_to_date() -> None:
    assert build.check() == [], "run `python -m ioc.dashboards.build` and commit the result"


def test_build_all_writes_and_check_finds_stale_missing_and_orphan_files(
        tmp_path: Path) -> None:
    assert sorted(build.check(tmp_path)) == sorted(build.generated_files())
    written = build.build_all(tmp_path)
    assert tmp_path / "dashboards/ioc/traffic.json" in written
    assert build.check(tmp_path) == []
    board_file = tmp_path / "dashboards/ioc/traffic.json"
    board_file.write_text(board_file.read_text(encoding="utf-8").replace("30s", "5s"),
                          encoding="utf-8")
    (tmp_path / "datasources/clickhouse.yaml").unlink()
    (tmp_path / "dashboards/ioc/old-board.json").write_text("{}", encoding="utf-8")
    assert build.check(tmp_path) == ["dashboards/ioc/old-board.json",
                                     "dashboards/ioc/traffic.json",
                                     "datasources/clickhouse.yaml"]
    assert build.main(["--check", "--out", str(tmp_path)]) == 1
    build.build_all(tmp_path)
    assert build.check(tmp_path) == []
    assert not (tmp_path / "dashboards/ioc/old-board.json").exists()
    assert build.main(["--check", "--out", str(tmp_path)]) == 0


def test_provisioning_yaml_points_grafana_at_the_generated_files() -> None:
    files = build.generated_files()
    provider = files["dashboards/ioc.yaml"]
    assert "type: file" in provider
    assert "folder: IOC" in provider
    assert "path: /etc/grafana/provisioning/dashboards/ioc" in provider
    ds = files["datasources/clickhouse.yaml"]
    for line in ("uid: ioc-clickhouse", "type: grafana-clickhouse-datasource",
                 "host: ${IOC_CH_HOST}", "port: ${IOC_CH_PORT}", "protocol: http",
                 "username: ${IOC_CH_USER}", "defaultDatabase: ioc",
                 "password: ${IOC_CH_PASSWORD}"):
        assert line in ds
    assert ds.index("secureJsonData:") < ds.index("password: ${IOC_CH_PASSWORD}")


# --- the SQL on a real database ------------------------------------------------------------


def test_rewrite_database_touches_only_the_ioc_qualifier() -> None:
    sql = ("SELECT 'ioc.kpi' FROM ioc.kpi AS k FINAL JOIN ioc.ref_areas AS a "
           "ON a.code = k.area_code WHERE kpi = 'traffic.incidents' AND bioc.x = 1")
    assert rewrite_database(sql, "t1") == (
        "SELECT 't1.kpi' FROM t1.kpi AS k FINAL JOIN t1.ref_areas AS a "
        "ON a.code = k.area_code WHERE kpi = 'traffic.incidents' AND bioc.x = 1")
    with pytest.raises(ValueError):
        rewrite_database(sql, "x; DROP TABLE y")


KPI_COLUMNS = ["kpi", "window", "window_start", "window_end", "area_code", "entity", "value",
               "sample_count", "computed_at", "is_final"]
ALERT_COLUMNS = ["alert_id", "rule", "severity", "status", "domain", "area_code", "entity",
                 "value", "threshold", "summary", "starts_at", "ends_at", "updated_at",
                 "acked_by", "acked_at"]
INCIDENT_COLUMNS = ["event_id", "occurred_at", "source", "area_code", "segment_id",
                    "incident_type", "severity", "description", "lat", "lon", "_topic",
                    "_partition", "_offset", "_ingested_at"]

# segment → (area, free-flow km/h, congestion index in the newest finished 5m window)
SEGMENTS = {
    "QL1A-TK-01": ("502", 50.0, 0.70),   # Quốc lộ 1A đoạn qua Tam Kỳ: congested
    "HA-HBT-01": ("503", 35.0, 0.85),    # Đường Hai Bà Trưng (Hội An): severely congested
    "QL1A-DB-01": ("507", 60.0, 0.30),
    "CT-DNQN-TK": ("518", 100.0, 0.10),
}
UNKNOWN_SEGMENT = ("XX-MOI-01", "502")  # a sensor not (yet) in the reference data


@dataclass
class Expected:
    vehicles_now: float
    avg_speed: float
    congested: int


def _kpi(kpi: str, window: str, start: datetime, size: timedelta, area: str, entity: str,
         value: float, samples: int = 12, computed: datetime | None = None,
         final: int = 1) -> list[Any]:
    end = start + size
    return [kpi, window, start, end, area, entity, value, samples,
            computed or end + timedelta(minutes=2), final]


def insert_traffic_data(client: Any, db: str) -> Expected:
    """A small, realistic hour of traffic around NOW, plus alerts and incidents."""
    one, five, hour = timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1)
    segments = {**{s: a for s, (a, _, _) in SEGMENTS.items()},
                UNKNOWN_SEGMENT[0]: UNKNOWN_SEGMENT[1]}
    base = {"QL1A-TK-01": 40, "HA-HBT-01": 25, "QL1A-DB-01": 55, "CT-DNQN-TK": 70,
            UNKNOWN_SEGMENT[0]: 10}
    rows: list[list[Any]] = []
    counts: dict[tuple[str, datetime], float] = {}
    for m in range(60, 0, -1):  # 1m windows NOW-60m … NOW-1m, all finished by NOW
        start = NOW - m * one
        for seg, area in segments.items():
            value = float(base[seg] + (m % 5))
            counts[(seg, start)] = value
            rows.append(_kpi("traffic.vehicle_count", "1m", start, one, area, seg, value))
    # A replaced value: the pipeline re-emitted the newest minute; FINAL keeps the later one.
    rows.append(_kpi("traffic.vehicle_count", "1m", NOW - one, one, "502", "QL1A-TK-01",
                     999.0, computed=NOW - timedelta(seconds=30), final=0))
    # The minute still filling at NOW: not finished, so no panel may show it yet.
    for seg, area in segments.items():
        rows.append(_kpi("traffic.vehicle_count", "1m", NOW, one, area, seg, 5.0,
                         computed=NOW, final=0))
    for seg, area in segments.items():
        rows.append(_kpi("traffic.vehicle_count", "1h", NOW - hour, hour, area, seg,
                         sum(counts[(seg, NOW - m * one)] for m in range(1, 61))))

    speeds: dict[str, float] = {}
    for k in range(6, 0, -1):  # 5m windows NOW-30m … NOW-5m
        start = NOW - k * five
        for seg, (area, free_flow, ci_now) in SEGMENTS.items():
            ci = ci_now if k == 1 else max(0.0, ci_now - 0.05 * k)
            speed = free_flow * (1 - ci)
            if k == 1:
                speeds[seg] = speed
            rows.append(_kpi("traffic.avg_speed_kmh", "5m", start, five, area, seg, speed))
            rows.append(_kpi("traffic.congestion_index", "5m", start, five, area, seg, ci))
    seg, area = UNKNOWN_SEGMENT
    speeds[seg] = 30.0
    rows.append(_kpi("traffic.avg_speed_kmh", "5m", NOW - five, five, area, seg, 30.0))
    # The 5m window still open at NOW reports a jam that must not count yet.
    rows.append(_kpi("traffic.congestion_index", "5m", NOW, five, "518", "CT-DNQN-TK", 0.95,
                     computed=NOW, final=0))
    rows.append(_kpi("traffic.incidents", "1h", NOW - hour, hour, "502", "", 2.0, samples=2))
    rows.append(_kpi("traffic.incidents", "1h", NOW - hour, hour, "503", "", 1.0, samples=1))
    rows.append(_kpi("traffic.incidents", "1h", NOW - 2 * hour, hour, "507", "", 1.0,
                     samples=1))
    client.insert(f"{db}.kpi", rows, column_names=KPI_COLUMNS)

    minutes = [NOW - m * one for m in range(5, 0, -1)]
    vehicles = {s: sum(counts[(s, t)] for t in minutes) for s in speeds}
    avg_speed = sum(speeds[s] * vehicles[s] for s in speeds) / sum(vehicles.values())

    ingested = NOW
    incidents = [
        ["inc-1", NOW - timedelta(minutes=20), "csgt-qn", "502", "QL1A-TK-01", "accident",
         "critical", "Va chạm giữa xe tải và xe máy", 15.57, 108.47],
        ["inc-2", NOW - timedelta(minutes=45), "csgt-qn", "502", "TK-HV-01", "breakdown",
         "minor", "Xe khách hỏng giữa đường", None, None],
        ["inc-3", NOW - timedelta(minutes=10), "csgt-qn", "503", "HA-HBT-01", "obstruction",
         "major", "Cây đổ chắn một làn", 15.88, 108.33],
        ["inc-4", NOW - timedelta(hours=2), "csgt-qn", "507", "QL1A-DB-01", "roadwork",
         "minor", "Thi công dải phân cách", None, None],
    ]
    client.insert(f"{db}.traffic_incident",
                  [[*r, "ioc.traffic.incident.v1", 0, i, ingested]
                   for i, r in enumerate(incidents)],
                  column_names=INCIDENT_COLUMNS)

    def alert(alert_id: str, rule: str, severity: str, status: str, area: str, entity: str,
              summary: str, starts: datetime, updated: datetime, acked_by: str = "",
              domain: str = "traffic") -> list[Any]:
        return [alert_id, rule, severity, status, domain, area, entity, 0.8, 0.6, summary,
                starts, updated if status == "resolved" else None, updated, acked_by,
                updated if acked_by else None]

    alerts = [
        alert("a-tk", "traffic.congestion", "warning", "firing", "502", "QL1A-TK-01",
              "Ùn tắc kéo dài trên Quốc lộ 1A đoạn qua Tam Kỳ", NOW - timedelta(minutes=10),
              NOW - timedelta(minutes=5)),
        alert("a-hbt", "traffic.congestion", "critical", "firing", "503", "HA-HBT-01",
              "Ùn tắc nghiêm trọng trên Đường Hai Bà Trưng (Hội An)",
              NOW - timedelta(minutes=15), NOW - timedelta(minutes=5), acked_by="trucban.ha"),
        alert("a-inc", "traffic.critical_incident", "critical", "firing", "502", "",
              "Sự cố giao thông nghiêm trọng (tai nạn giao thông) tại Thành phố Tam Kỳ",
              NOW - timedelta(minutes=20), NOW - timedelta(minutes=20)),
        # An episode that fired and then resolved: its latest state is resolved.
        alert("a-db", "traffic.congestion", "warning", "firing", "507", "QL1A-DB-01",
              "Ùn tắc kéo dài trên Quốc lộ 1A đoạn qua Điện Bàn", NOW - timedelta(minutes=55),
              NOW - timedelta(minutes=50)),
        alert("a-db", "traffic.congestion", "warning", "resolved", "507", "QL1A-DB-01",
              "Đã hết ùn tắc trên Quốc lộ 1A đoạn qua Điện Bàn", NOW - timedelta(minutes=55),
              NOW - timedelta(minutes=30)),
        # Another domain's alert never shows on the traffic wall.
        alert("a-fb", "feedback.overdue", "warning", "firing", "502", "agency-x",
              "Phản ánh quá hạn", NOW - timedelta(minutes=30), NOW - timedelta(minutes=30),
              domain="feedback"),
    ]
    client.insert(f"{db}.alerts", alerts, column_names=ALERT_COLUMNS)

    return Expected(
        vehicles_now=sum(counts[(s, NOW - one)] for s in segments),
        avg_speed=round(avg_speed, 1),
        congested=sum(1 for _, _, ci in SEGMENTS.values() if ci >= 0.6),
    )


@pytest.fixture
def traffic_db(chdb_client: Any, fresh_db: str) -> tuple[str, Expected]:
    return fresh_db, insert_traffic_data(chdb_client, fresh_db)


def _by_title(board: dict[str, Any], results: dict[str, Any], fragment: str) -> Any:
    matches = [r for t, r in results.items() if fragment in t]
    assert len(matches) == 1, (fragment, list(results))
    return matches[0]


def test_every_panel_query_runs_and_returns_what_its_panel_draws(
        chdb_client: Any, traffic_db: tuple[str, Expected], board: dict[str, Any]) -> None:
    db, _ = traffic_db
    results = run_panel_queries(chdb_client, db, board, *RANGE)
    assert set(results) == {t for t, _ in build.panel_queries(board)}
    assert problems(board, results) == {}
    series = _by_title(board, results, "theo thời gian")
    assert series.columns[:2] == ["time", "segment"]
    assert series.types[0].startswith("DateTime")


def test_stats_show_the_newest_finished_windows(
        chdb_client: Any, traffic_db: tuple[str, Expected], board: dict[str, Any]) -> None:
    db, expected = traffic_db
    results = run_panel_queries(chdb_client, db, board, *RANGE)
    assert _by_title(board, results, "Lưu lượng hiện tại").value("vehicles_per_min") == (
        expected.vehicles_now)
    assert _by_title(board, results, "Tốc độ trung bình").value("avg_speed_kmh") == (
        pytest.approx(expected.avg_speed, abs=0.051))
    assert _by_title(board, results, "Đoạn đường ùn tắc").value("congested_segments") == 2
    assert expected.congested == 2


def test_firing_alerts_stat_and_table(
        chdb_client: Any, traffic_db: tuple[str, Expected], board: dict[str, Any]) -> None:
    db, _ = traffic_db
    results = run_panel_queries(chdb_client, db, board, *RANGE)
    stat = _by_title(board, results, "Cảnh báo giao thông đang bật")
    assert (stat.value("critical"), stat.value("warning")) == (2, 1)
    table = _by_title(board, results, "Danh sách cảnh báo")
    assert table.columns == ["severity", "summary", "segment", "since", "acked_by"]
    assert table.column("severity") == ["critical", "critical", "warning"]
    assert table.column("segment") == ["Đường Hai Bà Trưng (Hội An)", "Thành phố Tam Kỳ",
                                       "Quốc lộ 1A đoạn qua Tam Kỳ"]
    assert table.column("acked_by") == ["trucban.ha", "", ""]
    assert all("Điện Bàn" not in s for s in table.column("summary"))  # resolved episode


def test_congestion_and_speed_panels_name_segments_in_vietnamese(
        chdb_client: Any, traffic_db: tuple[str, Expected], board: dict[str, Any]) -> None:
    db, _ = traffic_db
    results = run_panel_queries(chdb_client, db, board, *RANGE)
    gauge = _by_title(board, results, "Chỉ số ùn tắc")
    assert gauge.rows[:2] == [("Đường Hai Bà Trưng (Hội An)", 0.85),
                              ("Quốc lộ 1A đoạn qua Tam Kỳ", 0.7)]
    assert ("Cao tốc Đà Nẵng – Quảng Ngãi đoạn Tam Kỳ – Phú Ninh", 0.1) in gauge.rows  # not 0.95
    speed = _by_title(board, results, "Tốc độ so với tốc độ tự do")
    first = dict(zip(speed.columns, speed.rows[0], strict=True))
    assert first["segment"] == "Đường Hai Bà Trưng (Hội An)"
    assert first["area"] == "Thành phố Hội An"
    assert first["free_flow_kmh"] == 35.0
    assert first["speed_ratio"] == pytest.approx(0.15)
    unknown = dict(zip(speed.columns, speed.rows[-1], strict=True))
    assert unknown["segment"] == UNKNOWN_SEGMENT[0]  # no name: the code is shown
    assert unknown["speed_ratio"] is None


def test_incidents_panel_counts_the_last_hour_by_area(
        chdb_client: Any, traffic_db: tuple[str, Expected], board: dict[str, Any]) -> None:
    db, _ = traffic_db
    results = run_panel_queries(chdb_client, db, board, *RANGE)
    incidents = _by_title(board, results, "Sự cố trong 1 giờ qua")
    assert incidents.rows == [("Thành phố Tam Kỳ", 2, 1), ("Thành phố Hội An", 1, 0)]


def test_flow_series_has_one_point_per_segment_and_interval(
        chdb_client: Any, traffic_db: tuple[str, Expected], board: dict[str, Any]) -> None:
    db, _ = traffic_db
    results = run_panel_queries(chdb_client, db, board, *RANGE, interval_s=300)
    series = _by_title(board, results, "theo thời gian")
    segments = set(series.column("segment"))
    assert "Quốc lộ 1A đoạn qua Tam Kỳ" in segments and UNKNOWN_SEGMENT[0] in segments
    assert len(segments) == 5
    assert len(series.rows) == 5 * 12  # an hour of data in 5-minute buckets
    tk = [r for r in series.rows if r[1] == "Quốc lộ 1A đoạn qua Tam Kỳ"]
    assert all(38 <= r[2] <= 45 for r in tk)  # vehicles per minute, not per bucket


def test_queries_run_on_an_empty_database(
        chdb_client: Any, fresh_db: str, board: dict[str, Any]) -> None:
    results = run_panel_queries(chdb_client, fresh_db, board, *RANGE)
    assert problems(board, results, require_rows=False) == {}
    assert _by_title(board, results, "Lưu lượng hiện tại").value("vehicles_per_min") is None
    assert _by_title(board, results, "Đoạn đường ùn tắc").value("congested_segments") is None


def test_time_range_before_the_data_shows_nothing_current(
        chdb_client: Any, traffic_db: tuple[str, Expected], board: dict[str, Any]) -> None:
    db, _ = traffic_db
    earlier = (NOW - timedelta(days=2), NOW - timedelta(days=1))
    results = run_panel_queries(chdb_client, db, board, *earlier)
    assert _by_title(board, results, "Lưu lượng hiện tại").value("vehicles_per_min") is None
    assert _by_title(board, results, "theo thời gian").rows == []
    assert _by_title(board, results, "Danh sách cảnh báo").rows == []
