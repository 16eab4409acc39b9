"""Agencies' routes end to end with the real commands: `ioc gateway` (keys made with `ioc
gateway keys add`), `ioc produce` of CSV and Excel files uploaded twice, `ioc run`, and what
ClickHouse holds afterwards — every valid event once, nothing else."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway_harness import call
from openpyxl import Workbook
from pipeline import IOC, Pipeline

FLOW = "ioc.traffic.flow.v1"
INCIDENT = "ioc.security.incident.v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    def __init__(self, pipeline: Pipeline) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([IOC, "gateway", "--port", str(self.port)],
                                     env=pipeline.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(f"{self.url}/health").status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                out = self.proc.stdout.read() if self.proc.stdout else ""
                raise AssertionError(f"gateway did not start: {out}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def add_key(pipeline: Pipeline, agency: str, *topics: str) -> str:
    args = ["gateway", "keys", "add", "--agency", agency]
    for t in topics:
        args += ["--topic", t]
    return pipeline.ioc(*args).stdout.strip()


def flow(i: int, **over: Any) -> dict[str, Any]:
    return {"event_id": f"e2e-gw-{i}", "occurred_at": f"2026-11-30T07:{i:02d}:10+07:00",
            "source": "SGTVT-QNA", "area_code": "502", "segment_id": "QL1A-TK-01",
            "vehicle_count": 10 + i, "avg_speed_kmh": 40.0, **over}


def test_gateway_and_file_uploads_store_every_valid_event_once(
        pipeline: Pipeline, tmp_path: Path) -> None:
    traffic = add_key(pipeline, "SGTVT-QNA", "ioc.traffic.*")
    police = add_key(pipeline, "CA-QNA", INCIDENT)
    listed = pipeline.ioc("gateway", "keys", "list").stdout
    assert "SGTVT-QNA" in listed and traffic not in listed
    g = GatewayProcess(pipeline)
    try:
        r = call(f"{g.url}/v1/events/{FLOW}", "POST", [flow(i) for i in range(5)], key=traffic)
        assert r.status == 200 and r.body["accepted"] == 5, r.body
        bad = call(f"{g.url}/v1/events/{FLOW}", "POST", [flow(9, vehicle_count=-1)],
                   key=traffic)
        assert bad.status == 422 and bad.body["errors"][0]["field"] == "vehicle_count"
        assert call(f"{g.url}/v1/events/{FLOW}", "POST", flow(8), key=police).status == 403
        # a retry after a "lost" answer: the gateway knows the id and does not resend it
        again = call(f"{g.url}/v1/events/{FLOW}", "POST", flow(0), key=traffic)
        assert again.body["results"][0]["status"] == "duplicate"
    finally:
        g.stop()
    # A restarted gateway has forgotten the ids: the duplicate reaches Kafka this time, and
    # ClickHouse must still show it once.
    g = GatewayProcess(pipeline)
    try:
        assert call(f"{g.url}/v1/events/{FLOW}", "POST", flow(0), key=traffic).status == 200
    finally:
        g.stop()
    assert pipeline.high_watermark(FLOW) == 6

    # CSV with a mapping and an Excel sheet, each with bad rows, each uploaded twice.
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\noccurred_at = "Thời điểm"\nsegment_id = "Mã đoạn"\n'
                       'vehicle_count = "Số xe"\navg_speed_kmh = "Tốc độ"\n'
                       '[constants]\nsource = "SGTVT-QNA"\narea_code = "503"\n'
                       '[options]\ntimezone = "Asia/Ho_Chi_Minh"\n', encoding="utf-8")
    csv_path = tmp_path / "dem-xe.csv"
    with csv_path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Thời điểm", "Mã đoạn", "Số xe", "Tốc độ"])
        w.writerow(["2026-11-30 08:00", "QL1A-HA-01", "30", "35.5"])   # 2
        w.writerow(["2026-11-30 08:01", "QL1A-HA-01", "-5", "35"])     # 3 bad
        w.writerow(["2026-11-30 08:02", "QL1A-HA-01", "31", "36"])     # 4
    wb = Workbook()
    ws = wb.active
    ws.append(["Thời điểm", "Mã đoạn", "Số xe", "Tốc độ"])
    ws.append([datetime(2026, 11, 30, 8, 5), "DT607-01", 12, 50])       # 2  # noqa: DTZ001
    ws.append([datetime(2026, 11, 30, 8, 6), "DT607-01", 13, 999])      # 3 bad  # noqa: DTZ001
    xlsx_path = tmp_path / "dem-xe.xlsx"
    wb.save(xlsx_path)
    for path in (csv_path, xlsx_path, csv_path, xlsx_path):
        proc = pipeline.ioc("produce", FLOW, "--file", str(path), "--mapping", str(mapping),
                            check=False)
        assert proc.returncode == 1, proc.stderr
        report = path.with_name(path.name + ".rejected.csv")
        rows = list(csv.DictReader(report.open(encoding="utf-8-sig")))
        assert [(r["row"], r["column"], r["field"]) for r in rows] == (
            [("3", "Số xe", "vehicle_count")] if path == csv_path
            else [("3", "Tốc độ", "avg_speed_kmh")])
    assert pipeline.high_watermark(FLOW) == 6 + 2 * 3

    pipeline.run_until_idle()
    got = pipeline.query(
        rows="SELECT event_id, area_code, vehicle_count FROM ioc.traffic_flow FINAL "
             "ORDER BY occurred_at",
        copies="SELECT count() AS n FROM ioc.traffic_flow WHERE event_id = 'e2e-gw-0'")
    ids = [r["event_id"] for r in got["rows"]]
    assert len(ids) == len(set(ids)) == 8
    assert ids[:5] == [f"e2e-gw-{i}" for i in range(5)]
    assert [r["vehicle_count"] for r in got["rows"][5:]] == [30, 31, 12]
    assert all(i.startswith("file-") for i in ids[5:])
    # the duplicate did reach the raw table twice (no dedup before the merge); FINAL shows one
    assert got["copies"][0]["n"] >= 1


def test_dead_letters_listed_shown_and_replayed(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.send_raw(FLOW, b'{"not": "avro"}', key=b"x")
    pipeline.send_raw(FLOW, b"\x00\x00\x00\x00\x07garbage", key=b"y")
    pipeline.run_until_idle()
    assert pipeline.query(dead="SELECT count() AS n FROM ioc.dead_letters FINAL")["dead"] == [
        {"n": 2}]
    listed = pipeline.ioc("dlq", "list", "--format", "json").stdout
    letters = [json.loads(line) for line in listed.splitlines()]
    assert {(d["topic"], d["error_type"]) for d in letters} == {(FLOW, "decode"),
                                                                (FLOW, "schema")}
    first = next(d for d in letters if d["error_type"] == "decode")
    shown = json.loads(pipeline.ioc("dlq", "show", first["id"]).stdout)
    assert shown["payload"]["text"] == '{"not": "avro"}'
    assert shown["reason"].startswith("not Avro") and shown["key"] == "x"
    assert shown["payload"]["decodes_now"] is False
    # replaying the original bytes would fail again: refused
    refused = pipeline.ioc("dlq", "replay", first["id"], check=False)
    assert refused.returncode == 1 and "would be dead-lettered again" in refused.stderr
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps(flow(20, vehicle_count=-1)), encoding="utf-8")
    invalid = pipeline.ioc("dlq", "replay", first["id"], "--fixed", str(fixed), check=False)
    assert invalid.returncode == 1 and "vehicle_count: must be >= 0" in invalid.stderr
    fixed.write_text(json.dumps(flow(20)), encoding="utf-8")
    before = pipeline.high_watermark(FLOW)
    pipeline.ioc("dlq", "replay", first["id"], "--fixed", str(fixed))
    assert pipeline.high_watermark(FLOW) == before + 1
    from gateway_harness import read_all

    from ioc.schemas.serde import DecodeError, Serde

    decoded = []
    for value in read_all(pipeline.bootstrap, pipeline.prefix + FLOW):
        try:
            decoded.append(Serde().decode(FLOW, value)["event_id"])
        except DecodeError:
            pass
    assert decoded == ["e2e-gw-20"]
