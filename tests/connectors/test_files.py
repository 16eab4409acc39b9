"""File uploads: CSV and Excel rows through a column mapping, exact rejection reports, and
event ids derived from content so that a second upload of the same file sends the same ids.

The Kafka producer here is a recording stand-in (what would be sent, with its key); the real
broker and ClickHouse are exercised by tests/e2e/test_agency_routes_e2e.py."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from ioc.connectors.files import FileError, load_mapping, upload_file
from ioc.connectors.producer import EventProducer
from ioc.schemas.serde import Serde

FLOW = "ioc.traffic.flow.v1"
SERDE = Serde()


class RecordingProducer:
    """The confluent-kafka calls EventProducer makes, recorded; deliveries always succeed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.callbacks: list[Any] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any = None,
                **_: Any) -> None:
        self.sent.append((topic, key, value))
        self.callbacks.append(on_delivery)

    def poll(self, _timeout: float = 0) -> int:
        return 0

    def flush(self, _timeout: float = 0) -> int:
        return 0

    def records(self) -> list[dict[str, Any]]:
        return [SERDE.decode(FLOW, v) for _, _, v in self.sent]


def producer() -> tuple[EventProducer, RecordingProducer]:
    fake = RecordingProducer()
    return EventProducer(fake, SERDE), fake  # type: ignore[arg-type]


MAPPING = """
[columns]
occurred_at = "Thời điểm"
segment_id = "Mã đoạn đường"
vehicle_count = "Số xe"
avg_speed_kmh = "Tốc độ TB (km/h)"
occupancy = "Độ chiếm dụng"

[constants]
source = "SGTVT-QNA"
area_code = "502"

[options]
timezone = "Asia/Ho_Chi_Minh"
datetime_format = "%d/%m/%Y %H:%M"
decimal_comma = true
ignore = ["Ghi chú"]
"""

HEADER = ["Thời điểm", "Mã đoạn đường", "Số xe", "Tốc độ TB (km/h)", "Độ chiếm dụng", "Ghi chú"]
ROWS = [
    ["30/11/2026 07:30", "QL1A-TK-01", "42", "38,5", "0,21", ""],          # 2
    ["30/11/2026 07:31", "QL1A-TK-01", "nhiều", "40", "", "đếm tay"],       # 3 bad count
    ["30/11/2026 07:32", "", "12", "41,2", "", ""],                          # 4 bad segment
    ["", "", "", "", "", ""],                                                # 5 blank
    ["2026-11-30 07:33", "QL1A-TK-01", "15", "350", "1,5", ""],              # 6 bad format,
    ["30/11/2026 07:34", "DT607-01", "9", "55", "", ""],                     #   speed, occupancy
    ["30/11/2026 07:34", "DT607-01", "9", "55", "", ""],                     # 8 identical to 7
]


def write_csv(path: Path, rows: list[list[str]] = ROWS, delimiter: str = ";") -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_with_mapping_sends_valid_rows_and_reports_each_bad_cell(tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    p, fake = producer()
    report = upload_file(p, FLOW, write_csv(tmp_path / "dem-xe.csv"),
                         mapping=load_mapping(mapping), progress_out=None)
    assert (report.rows, report.sent, report.rejected_rows) == (6, 3, [3, 4, 6])
    got = [(r.row, r.column, r.error.field, r.error.code) for r in report.rejected]
    assert got == [
        (3, "Số xe", "vehicle_count", "type"),
        (4, "Mã đoạn đường", "segment_id", "missing"),
        (6, "Thời điểm", "occurred_at", "timestamp"),
        (6, "Tốc độ TB (km/h)", "avg_speed_kmh", "range"),
        (6, "Độ chiếm dụng", "occupancy", "range"),
    ]
    out = tmp_path / "rejected.csv"
    report.write_rejections(out)
    lines = read_report(out)
    assert lines[0] == {"row": "3", "column": "Số xe", "field": "vehicle_count", "code": "type",
                        "reason": "expected an integer, got 'nhiều'",
                        "ly_do": "phải là số nguyên, nhận được 'nhiều'"}
    assert lines[2]["reason"].startswith("not an ISO-8601 timestamp: '2026-11-30 07:33'")
    records = fake.records()
    first = records[0]
    assert first["occurred_at"] == datetime.fromisoformat("2026-11-30T00:30:00+00:00")
    assert (first["avg_speed_kmh"], first["occupancy"], first["source"]) == (38.5, 0.21,
                                                                            "SGTVT-QNA")
    # no event_id column: ids come from the content; identical rows get -2, -3, …
    ids = [r["event_id"] for r in records]
    assert ids[0].startswith("file-") and len(ids[0]) == 37
    assert ids[2] == ids[1] + "-2"


def test_the_same_file_uploaded_twice_sends_the_same_event_ids(tmp_path: Path) -> None:
    mapping = tmp_path / "map.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    path = write_csv(tmp_path / "a.csv")
    ids = []
    for _ in range(2):
        p, fake = producer()
        upload_file(p, FLOW, path, mapping=load_mapping(mapping), progress_out=None)
        ids.append([r["event_id"] for r in fake.records()])
    assert ids[0] == ids[1]
    # the same rows in another order and another delimiter: the same ids
    p, fake = producer()
    upload_file(p, FLOW, write_csv(tmp_path / "b.csv", list(reversed(ROWS)), ","),
                mapping=load_mapping(mapping), progress_out=None)
    assert sorted(r["event_id"] for r in fake.records()) == sorted(ids[0])


def test_excel_with_mapping(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "Tổng hợp"
    sheet = wb.create_sheet("Số liệu")
    sheet.append(["Báo cáo lưu lượng xe — Sở GTVT"])  # a title row above the header
    sheet.append([*HEADER[:5], "Mã bản ghi"])
    sheet.append([datetime(2026, 11, 30, 7, 30), "QL1A-TK-01", 42, 38.5, 0.21, "x-1"])  # noqa: DTZ001
    sheet.append([datetime(2026, 11, 30, 7, 31), "QL1A-TK-01", -3, 40, None, "x-2"])  # noqa: DTZ001
    sheet.append(["hôm qua", "QL1A-TK-01", 5, 40, None, "x-3"])                         # 5
    sheet.append([None] * 6)                                                            # 6
    sheet.append([datetime(2026, 11, 30, 7, 33), "DT607-01", 7.0, 55, None, None])  # noqa: DTZ001
    path = tmp_path / "bao-cao.xlsx"
    wb.save(path)
    mapping = tmp_path / "map.json"
    mapping.write_text("""{"columns": {"occurred_at": "Thời điểm", "segment_id": "Mã đoạn đường",
      "vehicle_count": "Số xe", "avg_speed_kmh": "Tốc độ TB (km/h)",
      "occupancy": "Độ chiếm dụng", "event_id": "Mã bản ghi"},
      "constants": {"source": "SGTVT-QNA", "area_code": "502"},
      "options": {"timezone": "Asia/Ho_Chi_Minh", "sheet": "Số liệu", "header_row": 2}}""",
                       encoding="utf-8")
    p, fake = producer()
    report = upload_file(p, FLOW, path, mapping=load_mapping(mapping), progress_out=None)
    assert (report.rows, report.sent) == (4, 2)
    assert [(r.row, r.column, r.error.code) for r in report.rejected] == [
        (4, "Số xe", "range"), (5, "Thời điểm", "timestamp")]
    records = fake.records()
    assert records[0]["event_id"] == "x-1"
    assert records[0]["occurred_at"] == datetime.fromisoformat("2026-11-30T00:30:00+00:00")
    assert records[1]["event_id"].startswith("file-")  # empty id cell: derived
    assert records[1]["vehicle_count"] == 7


def test_naive_excel_times_need_a_timezone(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["event_id", "occurred_at", "source", "area_code", "segment_id",
               "vehicle_count", "avg_speed_kmh"])
    ws.append(["e1", datetime(2026, 11, 30, 7, 30), "SGTVT-QNA", "502", "S1", 1, 30])  # noqa: DTZ001
    path = tmp_path / "plain.xlsx"
    wb.save(path)
    p, _fake = producer()
    report = upload_file(p, FLOW, path, progress_out=None)
    assert report.sent == 0
    assert report.rejected[0].error.field == "occurred_at"
    assert "options.timezone" in report.rejected[0].error.en
    assert "thiếu múi giờ" in report.rejected[0].error.vi


@pytest.mark.parametrize("header,mapping,message", [
    (["event_id", "occurred_at", "source", "area_code", "segment_id", "vehicle_count",
      "avg_speed_kmh", "occupncy"], "", "columns ['occupncy'] are neither fields"),
    (["occurred_at"], "[columns]\nsegment_id = 'Mã đoạn'\n",
     "columns ['Mã đoạn'] named in the mapping are not in the file"),
    (["occurred_at", "segment_id"], "",
     "required fields ['source', 'area_code', 'vehicle_count', 'avg_speed_kmh']"),
    (["occurred_at"], "[columns]\nspeed = 'x'\n", "mapping: ['speed'] are not fields"),
])
def test_unusable_headers_stop_before_anything_is_sent(tmp_path: Path, header: list[str],
                                                       mapping: str, message: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(",".join(header) + "\n" + ",".join("1" for _ in header) + "\n",
                    encoding="utf-8")
    m = tmp_path / "m.toml"
    m.write_text(mapping, encoding="utf-8")
    p, fake = producer()
    with pytest.raises(FileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        upload_file(p, FLOW, path, mapping=load_mapping(m), progress_out=None)
    assert fake.sent == []


def test_progress_bar_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ioc.connectors.files as files

    ticks = iter(range(0, 10_000))
    monkeypatch.setattr(files.time, "monotonic", lambda: float(next(ticks)))
    path = tmp_path / "f.jsonl"
    path.write_text("".join(
        f'{{"event_id": "p{i}", "occurred_at": 1796000000000, "source": "S", '
        f'"area_code": "502", "segment_id": "S1", "vehicle_count": {i}, '
        f'"avg_speed_kmh": 30}}\n' for i in range(5)), encoding="utf-8")
    out = io.StringIO()
    p, _fake = producer()
    report = upload_file(p, FLOW, path, progress_out=out)
    assert report.sent == 5
    lines = out.getvalue().split("\r")
    assert lines[-1].startswith("  [########################] 100.0%  5 lines  0 rejected")
    assert lines[-1].endswith("\n")
