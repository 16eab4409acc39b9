"""Personal data end to end, through the real broker, worker, sink and chDB:

- citizens' reports with names and phone numbers sent with ``ioc produce``, through the Open311
  gateway, and — bypassing every producer of ours — as JSON bytes and as an invalid Avro
  record straight to Kafka (both dead-lettered): ``ioc privacy scan`` finds no phone number
  and none of the names in any column of any table nor in any dead letter, and the same scan
  of the report topic finds the raw record (so the clean result is not vacuous);
- ``ioc privacy forget --phone`` on the running platform (through its query server) removes
  one person's reports, dead letter and alert from every table, keeps the other person's, and
  leaves the KPIs as they were.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from gateway_harness import call
from helpers import find_free_port_pair
from pipeline import Pipeline
from test_agency_routes_e2e import GatewayProcess, add_key

from ioc.connectors.privacy import pseudonymize
from ioc.infra.privacy_scan import read_topic
from ioc.infra.runtime import read_latest_alerts
from ioc.infra.settings import Settings
from ioc.schemas.serde import Serde

TOPIC = "ioc.feedback.report.v1"
KEY = "e2e-privacy-key-0123456789"
T = TypeVar("T")


def step(rid: str, status: str, at: datetime, **extra: Any) -> dict[str, Any]:
    line = {"event_id": f"{rid}-{status}", "occurred_at": at.isoformat(), "source": "TTGSDH",
            "area_code": "503", "report_id": rid, "status": status, "channel": "hotline",
            "category": "waste", "assigned_agency": "URENCO-QNA" if status != "submitted"
            else ""}
    line.update(extra)
    return line


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                    encoding="utf-8")
    return path


def invalid_avro(at: datetime, phone: str) -> bytes:
    """A report an agency's own Avro client wrote: a phone number where the pseudonym belongs
    and in the text, and a rating on a submitted step (dead-lettered as ``validation``)."""
    return Serde().encode_unchecked(TOPIC, {
        "event_id": "X1-submitted", "occurred_at": at, "source": "TTGSDH", "area_code": "503",
        "report_id": "X1", "status": "submitted", "channel": "app", "category": "waste",
        "description": f"gọi lại {phone}", "address": "", "lat": None, "lon": None,
        "assigned_agency": "", "due_at": None, "rating": 5, "reporter_pseudonym": phone})


def scan(pipeline: Pipeline, names: list[str], *extra: str) -> tuple[int, dict[str, Any]]:
    args = ["privacy", "scan", "--format", "json", *extra]
    for n in names:
        args += ["--name", n]
    proc = pipeline.ioc(*args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_no_clear_text_name_or_phone_in_any_table_or_dead_letter(
        pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.env["IOC_PSEUDONYM_KEY"] = KEY
    at = datetime.now(UTC) - timedelta(hours=2)
    file_name, file_phone = "Phạm Minh Tuấn", "0905 333 444"
    web_name, web_phone = ("Võ", "Thị Hạnh"), "+84 912 555 666"
    raw_name, raw_phone = "Đỗ Quang Vinh", "0935.777.888"
    avro_phone = "0978 999 000"
    names = [file_name, " ".join(web_name), raw_name]

    source = write_lines(tmp_path / "reports.jsonl", [
        step("F1", "submitted", at, reporter_name=file_name, reporter_phone=file_phone,
             description=f"Rác tồn đọng, gọi {file_phone}"),
        step("F2", "submitted", at + timedelta(minutes=1), reporter_name=file_name)])
    assert "2 events sent" in pipeline.ioc("produce", TOPIC, "--file", str(source)).stdout

    key = add_key(pipeline, "TTGSDH-QNA", TOPIC)
    gateway = GatewayProcess(pipeline)
    try:
        form = {"api_key": key, "service_code": "flooding", "lat": "15.8801", "long": "108.338",
                "description": f"Ngập sâu, liên hệ {web_phone}", "first_name": web_name[0],
                "last_name": web_name[1], "phone": web_phone, "email": "hanh.vo@example.vn"}
        posted = call(f"{gateway.url}/open311/v2/requests.json", "POST",
                      raw=urllib.parse.urlencode(form).encode(),
                      content_type="application/x-www-form-urlencoded")
        assert posted.status == 200, posted.body
    finally:
        gateway.stop()

    raw_json = json.dumps({"event_id": "J1", "report_id": "J1", "reporter_name": raw_name,
                           "reporter_phone": raw_phone, "ho_ten": raw_name,
                           "description": f"SĐT {raw_phone}"}, ensure_ascii=False).encode()
    pipeline.send_raw(TOPIC, raw_json, key=raw_phone.encode())
    pipeline.send_raw(TOPIC, invalid_avro(at, avro_phone), key=b"503")
    pipeline.run_until_idle(3.0)

    got = pipeline.query(
        reports="SELECT count() AS n FROM ioc.feedback_report FINAL",
        letters="SELECT error_type, hex(payload) AS payload, reason FROM ioc.dead_letters "
                "FINAL ORDER BY error_type")
    assert got["reports"][0]["n"] == 3  # two from the file, one through Open311
    decode, validation = got["letters"]
    assert (decode["error_type"], validation["error_type"]) == ("decode", "validation")
    assert json.loads(bytes.fromhex(decode["payload"]))["reporter_pseudonym"] == \
        pseudonymize(raw_phone, KEY.encode())
    replayable = Serde().decode(TOPIC, bytes.fromhex(validation["payload"]), check=False)
    assert replayable["reporter_pseudonym"] == pseudonymize(avro_phone, KEY.encode())
    assert "rating" in validation["reason"]

    # Every column of every table, every dead letter: nothing in clear text.
    code, report = scan(pipeline, names)
    assert (code, report["findings"]) == (0, [])
    assert report["tables"] >= 25 and report["columns"] >= 100 and report["kafka_records"] == 2
    # The raw records themselves are still on the report topic (until its retention ends):
    # the same scan of that topic finds them, and only them.
    code, report = scan(pipeline, names, "--topic", TOPIC)
    assert code == 1 and all(f["where"].startswith(f"kafka {TOPIC}[")
                             for f in report["findings"])
    assert {s for f in report["findings"] for s in f["samples"]} == {
        "09•••••888", "09•••••000", "D. Q. V."}  # the raw JSON and the raw Avro record


def wait_for(what: str, probe: Callable[[], T], timeout: float = 60) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_forget_one_person_while_the_platform_runs(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.env.update({"IOC_PSEUDONYM_KEY": KEY,
                         "IOC_QUERY_PORT": str(find_free_port_pair())})
    t0 = datetime.now(UTC) - timedelta(hours=6)
    anh, binh = "0905 444 555", "Lê Văn Thành"
    lines = [
        # Anh: two reports, one overdue (its alert fires once Bình's later steps move the
        # timer clock past the due time)
        step("A1", "submitted", t0, reporter_phone=anh),
        step("A1", "assigned", t0 + timedelta(minutes=5), due_at=(t0 + timedelta(hours=1))
             .isoformat()),
        step("A2", "submitted", t0 + timedelta(minutes=10), reporter_phone="+84905444555"),
        # Bình: one report, due in a week
        step("B1", "submitted", t0 + timedelta(hours=3), reporter_name=binh),
        step("B1", "assigned", t0 + timedelta(hours=4), due_at=(t0 + timedelta(days=7))
             .isoformat()),
    ]
    # setup (run once by the fixture) again, with a retention for dead letters: one change
    out = pipeline.ioc("setup", env={"IOC_RETENTION": "dead_letters=30"}).stdout
    assert "retention (1 changed): dead_letters 30 days by failed_at (set); feedback_report " \
           "730 days by occurred_at (unchanged)" in out
    pipeline.ioc("produce", TOPIC, "--file", str(write_lines(tmp_path / "r.jsonl", lines)))
    # and a dead letter of Anh's (JSON straight to Kafka; stored redacted, with the pseudonym)
    pipeline.send_raw(TOPIC, json.dumps({"report_id": "A3", "reporter_phone": anh}).encode(),
                      key=b"503")

    def sql(query: str) -> list[dict[str, Any]]:
        out = pipeline.ioc("sql", query, "--format", "json").stdout
        return [json.loads(x) for x in out.splitlines() if x.strip()]

    kpi_sql = ("SELECT kpi, `window`, toString(window_start) AS ws, area_code, entity, value "
               "FROM ioc.kpi FINAL WHERE kpi = 'feedback.new_reports' ORDER BY ALL")
    run = pipeline.start_run()
    try:
        wait_for("the query server", lambda: (pipeline.data_dir / "run" /
                                              "query-server.json").exists())
        wait_for("every row stored", lambda: sql(
            "SELECT (SELECT count() FROM ioc.feedback_report FINAL) = 5 AND "
            "(SELECT count() FROM ioc.dead_letters FINAL) = 1 AND (SELECT count() FROM "
            "ioc.alerts FINAL WHERE entity = 'A1') = 1 AS ok")[0]["ok"])
        kpis = sql(kpi_sql)
        assert sum(k["value"] for k in kpis if k["window"] == "1d") == 3

        dry = json.loads(pipeline.ioc("privacy", "forget", "--phone", anh, "--dry-run",
                                      "--format", "json").stdout)
        assert dry["report_ids"] == ["A1", "A2"] and len(dry["alert_ids"]) == 1
        assert {k: min(v, 1) for k, v in dry["deleted"].items()} == {
            "feedback_report": 1, "dead_letters": 1, "alerts": 1}  # alerts: one row a change
        assert dry["deleted"]["feedback_report"] == 3
        assert sql("SELECT count() AS n FROM ioc.feedback_report")[0]["n"] == 5

        done = json.loads(pipeline.ioc("privacy", "forget", "--phone", anh,
                                       "--format", "json").stdout)
        assert done["deleted"] == dry["deleted"] and done["kafka_tombstones"] == 2
        pseudonym = pseudonymize(anh, KEY.encode())
        assert done["pseudonyms"] == [pseudonym]

        # Nothing of Anh's in any column of any table; Bình's reports stay; KPIs unchanged.
        columns = sql("SELECT table, name FROM system.columns WHERE database = 'ioc' AND "
                      "type LIKE '%String%' AND table IN (SELECT name FROM system.tables "
                      "WHERE database = 'ioc' AND engine LIKE '%MergeTree')")
        hits = " + ".join(
            f"(SELECT count() FROM ioc.`{c['table']}` WHERE positionUTF8(toString("
            f"`{c['name']}`), '{pseudonym}') > 0 OR toString(`{c['name']}`) IN ('A1', 'A2'))"
            for c in columns)
        assert sql(f"SELECT {hits} AS n")[0]["n"] == 0
        assert [r["event_id"] for r in sql("SELECT event_id FROM ioc.feedback_report FINAL "
                                           "ORDER BY event_id")] == ["B1-assigned",
                                                                     "B1-submitted"]
        after = {(k["kpi"], k["window"], k["ws"], k["area_code"], k["entity"]): k["value"]
                 for k in sql(kpi_sql)}
        assert {(k["kpi"], k["window"], k["ws"], k["area_code"], k["entity"]): k["value"]
                for k in kpis} == after
    finally:
        pipeline.kill(run)
    # The alert's records on the compacted alert topic end with a tombstone.
    alert_id = done["alert_ids"][0].encode()
    records = [(o, v) for _p, o, k, v in read_topic(Settings(kafka_bootstrap=pipeline.bootstrap),
                                                    pipeline.prefix + "ioc.alert.v1")
               if k == alert_id]
    assert any(v is not None for _o, v in records)  # it was there (firing)
    assert max(records, key=lambda r: r[0])[1] is None
    # ... and a restarting worker does not restore it
    restored = read_latest_alerts(Settings(kafka_bootstrap=pipeline.bootstrap,
                                           topic_prefix=pipeline.prefix), Serde())
    assert alert_id.decode() not in {a["alert_id"] for a in restored}
    # Stopped, forget opens the store itself: nothing is left to delete.
    def forget_stopped() -> str | None:
        proc = pipeline.ioc("privacy", "forget", pseudonym, "--format", "json", check=False)
        return proc.stdout if proc.returncode == 0 else None

    again = wait_for("forget on the stopped platform", forget_stopped, timeout=30)
    assert json.loads(again)["deleted"] == {}
