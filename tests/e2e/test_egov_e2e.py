"""E-government through the real broker, worker, sink and chDB: exact daily and 30-day KPIs,
the gauges, both alerts firing and resolving, and every panel of the wall screen."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from pipeline import Pipeline

from ioc.schemas.serde import Serde

PANELS = r"""
import json, sys
from datetime import datetime
from ioc.connectors.clickhouse import connect
from ioc.dashboards.build import render_dict
from ioc.dashboards.testing import problems, run_panel_queries
url, start, end = sys.argv[1:4]
client = connect(url)
board = render_dict("egov")
res = run_panel_queries(client, "ioc", board, datetime.fromisoformat(start),
                        datetime.fromisoformat(end), strict=False)
print(json.dumps({"problems": problems(board, res, require_rows=False),
                  "rows": {t: len(r.rows) for t, r in res.items()}}, ensure_ascii=False))
"""

DOSSIERS = "ioc.egov.dossier.v1"
CHECKS = "ioc.egov.portal_check.v1"
DAY0 = datetime(2026, 9, 30, 17, 0, tzinfo=UTC)  # 1 Oct 2026 00:00 in Quảng Nam
PARTITIONS = 3


def local(day: int, hour: float = 0) -> datetime:
    return DAY0 + timedelta(days=day, hours=hour)


def on_partition(p: int, prefix: str) -> str:
    """A dossier id the producer's default partitioner (CRC32 of the key) puts on ``p``."""
    return next(f"{prefix}-{i}" for i in range(1000)
                if zlib.crc32(f"{prefix}-{i}".encode()) % PARTITIONS == p)


def hoi_an(name: str) -> str:
    """Hội An's dossiers all live on partition 0, so each of its daily windows is fed by one
    partition (the STP dossiers spread over all three)."""
    return on_partition(0, f"H49.UBND-503-{name}")


def dossier(did: str, status: str, at: datetime, *, received: datetime | None = None,
            due: datetime | None = None, resolved: datetime | None = None,
            agency: str = "UBND-503", area: str = "503", channel: str = "in_person",
            fee: bool = True, paid: bool = False) -> dict[str, Any]:
    received = received or at
    if agency == "UBND-503":
        did = hoi_an(did)
    return {"event_id": f"{did}-{status}", "occurred_at": at, "source": "VP-UBND",
            "area_code": area, "dossier_id": did, "status": status, "channel": channel,
            "procedure_code": "1.003003", "agency": agency, "received_at": received,
            "due_at": due or received + timedelta(days=5),
            "resolved_at": resolved if status in ("resolved", "rejected") else None,
            "fee_required": fee, "paid_online": paid and fee, "online_level": "partial"}


def stp(did: str, at: datetime) -> dict[str, Any]:
    return dossier(did, "received", at, agency="STP", area="49")


def month() -> list[dict[str, Any]]:
    """October 2026 at the one-stop shop of Hội An (as in tests/streams/test_egov.py), every
    partition anchored on 1 Oct, then 1 Nov and 2 Nov on every partition."""
    evs = [stp(on_partition(p, "anchor"), local(0, 7 + p / 10)) for p in range(PARTITIONS)]
    evs.append(dossier("x0", "received", local(0, 8), channel="online"))
    for late in ("late1", "late2"):
        evs.append(dossier(late, "received", local(0, 9), due=local(0, 12)))
    evs.append(dossier("x0", "resolved", local(0, 10), received=local(0, 8),
                       resolved=local(0, 10), channel="online"))
    for late in ("late1", "late2"):
        evs.append(dossier(late, "resolved", local(1, 9), received=local(0, 9),
                           due=local(0, 12), resolved=local(1, 9)))
    for i in range(19):
        kw: dict[str, Any] = {"channel": "online" if i % 2 == 0 else "in_person",
                              "fee": i < 10, "paid": i < 6}
        evs.append(dossier(f"ok{i}", "received", local(4 + i, 8), **kw))
        evs.append(dossier(f"ok{i}", "resolved", local(4 + i, 14), received=local(4 + i, 8),
                           resolved=local(4 + i, 14), **kw))
    evs.append(dossier("open1", "received", local(29, 8), due=local(30, 8)))
    evs.append(dossier("wait1", "received", local(29, 9), due=local(30, 8)))
    evs.append(dossier("wait1", "supplement_requested", local(29, 10), received=local(29, 9),
                       due=local(30, 8)))
    evs.append(dossier("open1", "processing", local(31, 9), received=local(29, 8),
                       due=local(30, 8)))
    evs += [stp(on_partition(p, "nov1"), local(31, 9.5)) for p in range(PARTITIONS)]
    evs += [stp(on_partition(p, "nov2"), local(32, 8)) for p in range(PARTITIONS)]
    return sorted(evs, key=lambda e: e["occurred_at"])


CHECK_T0 = local(32, 8)  # 2 Nov 08:00
UPS = [True, True, False, False, False, False, True, True, True, True, True, True]


def checks() -> list[dict[str, Any]]:
    out = [{"event_id": f"chk-{n}", "occurred_at": CHECK_T0 + timedelta(minutes=n),
            "source": "STTTT", "area_code": "", "system_id": "cong-dvc", "up": up,
            "response_ms": 400 + 10 * n if up else None, "http_status": 200 if up else None,
            "check_location": "TTDL-QNA"} for n, up in enumerate(UPS)]
    out.append(dict(out[-1], event_id="chk-close", occurred_at=CHECK_T0 + timedelta(minutes=63)))
    return out


def partition_counts(pipeline: Pipeline, topic: str) -> list[int]:
    c = Consumer({"bootstrap.servers": pipeline.bootstrap, "group.id": "probe"})
    try:
        return [c.get_watermark_offsets(TopicPartition(pipeline.prefix + topic, p),
                                        timeout=10)[1] for p in range(PARTITIONS)]
    finally:
        c.close()


def alert_log(pipeline: Pipeline) -> list[dict[str, Any]]:
    """Every record on the alert topic, in order: the transitions, not just the latest."""
    serde = Serde()
    c = Consumer({"bootstrap.servers": pipeline.bootstrap, "group.id": pipeline.prefix + "t",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    name = pipeline.prefix + "ioc.alert.v1"
    total = sum(c.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                for p in c.list_topics(name, timeout=10).topics[name].partitions)
    out: list[dict[str, Any]] = []
    try:
        c.subscribe([name])
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while len(out) < total and datetime.now(UTC) < deadline:
            msg = c.poll(1.0)
            if msg is not None and not msg.error():
                out.append(serde.decode("ioc.alert.v1", msg.value()))
    finally:
        c.close()
    return sorted(out, key=lambda a: a["updated_at"])


def test_egov_kpis_gauges_alerts_and_panels(pipeline: Pipeline) -> None:
    dossiers = month()
    pipeline.send(DOSSIERS, dossiers)
    pipeline.send(CHECKS, checks())
    # the partition model above is the producer's: every partition has its early and late event
    per_partition = [sum(zlib.crc32(e["dossier_id"].encode()) % PARTITIONS == p
                         for e in dossiers) for p in range(PARTITIONS)]
    assert partition_counts(pipeline, DOSSIERS) == per_partition
    # idle long enough for the dossier rule's settle time (5 s) to pass before the exit
    pipeline.run_until_idle(idle_s=6)
    got = pipeline.query(
        kpi="SELECT kpi, `window`, toString(window_start) AS ws, toString(window_end) AS we, "
            "area_code, entity, "
            "value, sample_count AS n, is_final FROM ioc.kpi FINAL WHERE kpi LIKE 'egov.%'",
        alerts="SELECT rule, severity, status, entity, area_code, value, "
               "toString(starts_at) AS starts, toString(ends_at) AS ends, summary "
               "FROM ioc.alerts FINAL ORDER BY rule",
        raw="SELECT (SELECT count() FROM ioc.egov_dossier FINAL) AS dossiers, "
            "(SELECT count() FROM ioc.egov_portal_check FINAL) AS checks, "
            "(SELECT countIf(resolved_at IS NULL) FROM ioc.egov_dossier FINAL) AS open_events")
    assert got["raw"] == [{"dossiers": len(dossiers), "checks": 13,
                           "open_events": sum(e["resolved_at"] is None for e in dossiers)}]

    def ts(t: datetime) -> str:
        return f"{t.astimezone(UTC):%Y-%m-%d %H:%M:%S}.000"

    k = {(r["kpi"], r["window"], r["we"] if r["window"] == "30d" else r["ws"], r["entity"]):
         (r["value"], r["n"], r["is_final"], r["area_code"]) for r in got["kpi"]}
    # 30-day rates of Hội An, final, for 31 Oct and 1 Nov
    end31, end1 = ts(local(31)), ts(local(32))
    assert k[("egov.on_time_rate", "30d", end31, "UBND-503")] == (19 / 21, 21, 1, "503")
    assert k[("egov.online_rate", "30d", end31, "UBND-503")] == (10 / 21, 21, 1, "503")
    assert k[("egov.online_payment_rate", "30d", end31, "UBND-503")] == (6 / 12, 12, 1, "503")
    assert k[("egov.on_time_rate", "30d", end1, "UBND-503")] == (1.0, 19, 1, "503")
    assert k[("egov.online_payment_rate", "30d", end1, "UBND-503")] == (6 / 10, 10, 1, "503")
    assert not any(key[0].endswith("_rate") and key[2] < end31 for key in k)
    # daily counts (closed days)
    assert k[("egov.dossiers_resolved", "1d", ts(local(1)), "UBND-503")][:2] == (2.0, 2)
    assert k[("egov.dossiers_resolved_on_time", "1d", ts(local(1)), "UBND-503")][:2] == (0.0, 2)
    assert k[("egov.dossiers_received", "1d", ts(local(29)), "UBND-503")][:2] == (2.0, 2)
    assert k[("egov.dossiers_received_online", "1d", ts(local(4)), "UBND-503")][:2] == (1.0, 1)
    # portal uptime and response time of the 08:00 hour
    ups = [400 + 10 * n for n, up in enumerate(UPS) if up]
    assert k[("egov.uptime", "1h", ts(CHECK_T0), "cong-dvc")][:3] == (8 / 12, 12, 1)
    assert k[("egov.response_ms", "1h", ts(CHECK_T0), "cong-dvc")][:2] == (sum(ups) / 8, 8)
    # gauges: the newest values (open1 past its appointment; wait1 is with the applicant)
    newest = {r["kpi"]: r for r in sorted(got["kpi"], key=lambda r: r["ws"])
              if r["entity"] == "UBND-503" and r["window"] == "1m"}
    assert newest["egov.open_dossiers"]["value"] == 2.0
    assert newest["egov.overdue_open"]["value"] == 1.0

    alerts = {a["rule"]: a for a in got["alerts"]}
    assert set(alerts) == {"egov.on_time_rate_low", "egov.portal_down"}
    on_time = alerts["egov.on_time_rate_low"]
    assert (on_time["status"], on_time["entity"], on_time["area_code"]) == (
        "resolved", "UBND-503", "503")
    assert on_time["starts"].startswith("2026-10-31 17:00:00")
    assert on_time["ends"].startswith("2026-11-01 17:00:00")
    down = alerts["egov.portal_down"]
    assert (down["status"], down["severity"], down["entity"]) == ("resolved", "critical",
                                                                   "cong-dvc")
    assert down["starts"].startswith("2026-11-02 01:02:00")
    assert down["ends"].startswith("2026-11-02 01:06:00")
    assert "Cổng Dịch vụ công tỉnh đã hoạt động trở lại lúc 08:06 02/11/2026" in down["summary"]
    # both fired before they resolved: the alert topic holds every transition
    records = alert_log(pipeline)
    log = [(a["rule"], a["status"]) for a in records]
    assert log.index(("egov.on_time_rate_low", "firing")) < log.index(
        ("egov.on_time_rate_low", "resolved"))
    assert log.index(("egov.portal_down", "firing")) < log.index(
        ("egov.portal_down", "resolved"))
    fired = next(a for a in records if a["rule"] == "egov.on_time_rate_low")
    assert "chỉ đạt 90,5% (19/21 hồ sơ đúng hạn)" in fired["summary"]

    proc = subprocess.run([sys.executable, "-c", PANELS, pipeline.clickhouse_url,
                           (CHECK_T0 - timedelta(hours=6)).isoformat(),
                           (CHECK_T0 + timedelta(minutes=30)).isoformat()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    panels = json.loads(proc.stdout)
    assert panels["problems"] == {}

    # `ioc setup` gave the dossier topic the retention the rule's holds need
    admin = AdminClient({"bootstrap.servers": pipeline.bootstrap})
    resource = ConfigResource("topic", pipeline.prefix + DOSSIERS)
    config = admin.describe_configs([resource])[resource].result(timeout=10)
    assert int(config["retention.ms"].value) == 180 * 24 * 3600 * 1000
    # `ioc simulate egov` sends the backfill and live events
    before = sum(partition_counts(pipeline, DOSSIERS))
    sim = pipeline.ioc("simulate", "egov", "--duration", "2", "--speedup", "300")
    assert "(egov)" in sim.stdout
    assert sum(partition_counts(pipeline, DOSSIERS)) - before > 2000
    assert panels["rows"]["Tỷ lệ giải quyết đúng hạn theo cơ quan (30 ngày)"] == 1
    assert panels["rows"]["Trạng thái hệ thống"] == 6
