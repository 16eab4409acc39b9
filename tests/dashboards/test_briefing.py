"""Leadership briefings: periods, and a real HTML + PDF from a simulated day in chDB."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from ioc.dashboards.briefing import make_report, period_for
from ioc.dashboards.testing import simulate_into
from ioc.infra.migrations import migrate
from ioc.infra.runtime import load_reference_tables

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 09:00 on 30 Nov in Quảng Nam
DAY = date(2026, 11, 29)
DAY_START = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)  # local midnight of 29 Nov


def test_periods_are_local_and_clipped_to_now() -> None:
    day = period_for("day", DAY, NOW)
    assert (day.start, day.end, day.complete) == (DAY_START, DAY_START + timedelta(days=1),
                                                  True)
    assert day.label_vi == "ngày 29/11/2026"
    week = period_for("week", DAY, NOW)
    assert (week.start, week.first_day, week.last_day) == (
        DAY_START - timedelta(days=6), date(2026, 11, 23), DAY)
    month = period_for("month", date(2026, 11, 30), NOW)
    assert month.start == datetime(2026, 10, 31, 17, 0, tzinfo=UTC)
    assert (month.end, month.complete) == (NOW, False)  # November is not over at NOW
    assert month.label_vi == "tháng 11/2026"
    with pytest.raises(ValueError, match="has not started"):
        period_for("day", date(2026, 12, 1), NOW)
    with pytest.raises(ValueError, match="period must be one of"):
        period_for("year", DAY, NOW)


@pytest.fixture(scope="module")
def day_db(chdb_client: Any) -> Iterator[tuple[str, dict[str, int]]]:
    db = f"brief_{uuid.uuid4().hex[:10]}"
    migrate(chdb_client, db)
    load_reference_tables(chdb_client, db)
    # The subsystems with a daily rhythm; econ, health and feedback simulators add weeks or
    # months of history (their own tests cover them), which would reach into the empty day.
    counts = simulate_into(chdb_client, db, DAY_START, DAY_START + timedelta(days=1), seed=3,
                           domains=("traffic", "security", "cyber"))
    yield db, counts
    chdb_client.command(f"DROP DATABASE IF EXISTS {db} SYNC")


def test_day_briefing_renders_html_and_pdf_with_the_periods_figures(
        chdb_client: Any, day_db: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    db, _ = day_db
    expected = chdb_client.query(
        f"SELECT count(), countIf(severity = 'critical') FROM {db}.alerts FINAL "
        f"WHERE severity != 'info' AND starts_at >= '{DAY_START:%Y-%m-%d %H:%M:%S}' "
        f"AND starts_at < '{DAY_START + timedelta(days=1):%Y-%m-%d %H:%M:%S}'").result_rows[0]
    vehicles = chdb_client.query(
        f"SELECT sum(vehicle_count) FROM {db}.traffic_flow FINAL "
        f"WHERE occurred_at >= '{DAY_START:%Y-%m-%d %H:%M:%S}'").result_rows[0][0]
    assert expected[0] > 0 and vehicles > 0  # the simulated day has alerts and traffic

    html_path, pdf_path = make_report(chdb_client, db, "day", DAY, tmp_path, now=NOW)
    assert html_path.name == "bao-cao-day-2026-11-29.html"
    html = html_path.read_text(encoding="utf-8")
    assert "BÁO CÁO TÌNH HÌNH NGÀY – TỈNH QUẢNG NAM" in html
    assert html.count("data:image/png;base64,") >= 4  # real charts are embedded
    text = " ".join(page.extract_text() for page in PdfReader(pdf_path).pages)
    text = re.sub(r"\s+", " ", text)
    assert "Kỳ báo cáo: ngày 29/11/2026" in text
    for title in ("Tổng quan tình hình", "Giao thông", "An ninh trật tự",
                  "Cảnh báo trong kỳ và thời gian xử lý", "Sự việc đáng chú ý"):
        assert title in text
    # the headline numbers are the period's own
    # (the PDF's text layer may join a figure and its label without a space)
    assert re.search(rf"\b{expected[0]} ?Cảnh báo phát sinh", text)
    assert re.search(rf"\b{expected[1]} ?Trong đó nghiêm trọng", text)
    assert re.search(f"{vehicles:,}".replace(",", r"\.") + " ?Lượt xe qua các điểm đo", text)


def test_time_to_acknowledge_comes_from_the_ack_log(chdb_client: Any,
                                                   day_db: tuple[str, dict[str, int]],
                                                   tmp_path: Path) -> None:
    db, _ = day_db
    first = chdb_client.query(
        f"SELECT alert_id, starts_at FROM {db}.alerts FINAL WHERE domain = 'traffic' "
        f"AND starts_at >= '{DAY_START:%Y-%m-%d %H:%M:%S}' ORDER BY starts_at LIMIT 1"
    ).result_rows[0]
    acked_at = first[1] + timedelta(minutes=7)
    chdb_client.insert(f"{db}.alert_acks", [["ack-1", first[0], first[1], "Nguyễn Văn An",
                                             "Đã cử lực lượng", acked_at, acked_at, "cli"]],
                       column_names=["ack_id", "alert_id", "starts_at", "acked_by", "comment",
                                     "acked_at", "first_acked_at", "via"])
    html_path, _ = make_report(chdb_client, db, "day", DAY, tmp_path, now=NOW)
    html = html_path.read_text(encoding="utf-8")
    row = re.search(r"<tr><td>Giao thông</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>"
                    r"<td>([^<]*)</td>", html)
    assert row is not None
    assert (row.group(3), row.group(4)) == ("1", "7 phút")  # one acknowledged, after 7 min


def test_a_period_without_data_says_so(chdb_client: Any, day_db: tuple[str, dict[str, int]],
                                       tmp_path: Path) -> None:
    db, _ = day_db
    html_path, _ = make_report(chdb_client, db, "day", date(2026, 11, 20), tmp_path, now=NOW)
    html = html_path.read_text(encoding="utf-8")
    assert html.count("Không có dữ liệu trong kỳ.") >= 4
    assert "Mức độ tình hình cuối kỳ: 1 – Bình thường" in html
