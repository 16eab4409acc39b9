"""``ioc demo``: the whole platform on one machine, with a live summary.

Starts the local Kafka broker (unless IOC_KAFKA_BOOTSTRAP points elsewhere), runs setup, then
the traffic simulator, the Faust worker and the ClickHouse sink together for ``duration``
seconds, printing events/s, the latest KPIs and firing alerts as they come. At the end the
worker and sink drain everything, and the demo prints a few query results from ClickHouse and
where the dashboards are.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from ioc.infra import reference
from ioc.infra.settings import Settings
from ioc.schemas.serde import DecodeError, Serde

DASHBOARD_DIR = Path(__file__).parent / "grafana" / "provisioning"


class LiveSummary(threading.Thread):
    """Reads the KPI and alert topics and prints a short status block every few seconds."""

    def __init__(self, settings: Settings, sent: list[int], every_s: float = 10.0) -> None:
        super().__init__(name="ioc-demo-summary", daemon=True)
        self.settings = settings
        self.sent = sent
        self.every_s = every_s
        self.stop = threading.Event()
        self.serde = Serde()
        self.segments = reference.load_segments(settings.reference_dir)
        self.congestion: dict[str, tuple[datetime, float]] = {}
        self.vehicles_1m: dict[str, tuple[datetime, float]] = {}
        self.firing: dict[str, dict[str, Any]] = {}
        self.kpi_records = 0

    def run(self) -> None:
        consumer = Consumer(self.settings.kafka_config(**{
            "group.id": f"{self.settings.topic_prefix}ioc-demo-summary-{time.time_ns()}",
            "auto.offset.reset": "latest", "enable.auto.commit": False}))
        consumer.subscribe([self.settings.topic("ioc.kpi.v1"),
                            self.settings.topic("ioc.alert.v1")])
        started = time.monotonic()
        last = started
        last_sent = 0
        try:
            while not self.stop.is_set():
                for msg in consumer.consume(500, timeout=0.5):
                    topic, value = msg.topic(), msg.value()
                    if msg.error() or topic is None or value is None:
                        continue
                    self._take(topic, value)
                now = time.monotonic()
                if now - last >= self.every_s:
                    rate = (self.sent[0] - last_sent) / (now - last)
                    last, last_sent = now, self.sent[0]
                    self._print(now - started, rate)
        finally:
            consumer.close()

    def _take(self, topic: str, value: bytes) -> None:
        try:
            if topic.endswith("ioc.kpi.v1"):
                rec = self.serde.decode("ioc.kpi.v1", value)
                self.kpi_records += 1
                target = {"traffic.congestion_index": self.congestion,
                          "traffic.vehicle_count": self.vehicles_1m if rec["window"] == "1m"
                          else None}.get(rec["kpi"])
                if target is not None:
                    prev = target.get(rec["entity"])
                    if prev is None or rec["window_start"] >= prev[0]:
                        target[rec["entity"]] = (rec["window_start"], rec["value"])
            else:
                rec = self.serde.decode("ioc.alert.v1", value)
                if rec["status"] == "firing":
                    self.firing[rec["alert_id"]] = rec
                else:
                    self.firing.pop(rec["alert_id"], None)
        except DecodeError:
            pass

    def _segment_name(self, seg: str) -> str:
        s = self.segments.get(seg)
        return s.name_vi if s else seg

    def _print(self, elapsed: float, rate: float) -> None:
        out = [f"\n── {elapsed:4.0f}s │ {rate:6.1f} sự kiện/s (events/s) │ "
               f"{self.sent[0]} sent │ {self.kpi_records} KPI records │ "
               f"{len(self.firing)} cảnh báo đang kích hoạt (firing alerts)"]
        starts = sorted({v[0] for v in self.vehicles_1m.values()})
        if len(starts) >= 2:
            minute = starts[-2]  # the newest minute is still filling; show the last full one
            total = sum(v[1] for v in self.vehicles_1m.values() if v[0] == minute)
            out.append(f"   Lưu lượng phút {minute.astimezone(reference_tz()):%H:%M}: "
                       f"{total:,.0f} xe trên toàn tỉnh")
        top = sorted(self.congestion.items(), key=lambda kv: -kv[1][1])[:3]
        for seg, (_start, value) in top:
            out.append(f"   Chỉ số ùn tắc {value:4.2f}  {self._segment_name(seg)}")
        for rec in list(self.firing.values())[:5]:
            out.append(f"   ⚠ [{rec['severity']}] {rec['summary']}")
        print("\n".join(out), flush=True)


def reference_tz() -> Any:
    from ioc.streams.windows import LOCAL_TZ

    return LOCAL_TZ


def _raw_tables_query() -> str:
    from ioc.connectors.sink import raw_table
    from ioc.schemas.catalogue import Catalogue

    parts = [f"SELECT '{raw_table(t)}' AS table, count() AS rows, uniqExact(event_id) AS "
             f"unique_ids FROM {{db}}.{raw_table(t)} FINAL" for t in Catalogue().event_topics]
    return "SELECT * FROM (" + " UNION ALL ".join(parts) + ") ORDER BY table"


FINAL_QUERIES = [
    ("Events stored per raw table", _raw_tables_query()),
    ("Most congested segments (latest final 5m window each)",
     "SELECT s.name_vi AS segment, round(argMax(k.value, k.window_start), 2) AS congestion, "
     "max(k.window_start) AS window_start FROM {db}.kpi AS k FINAL "
     "JOIN {db}.ref_road_segments AS s FINAL ON s.segment_id = k.entity "
     "WHERE k.kpi = 'traffic.congestion_index' AND k.is_final = 1 "
     "GROUP BY segment ORDER BY congestion DESC LIMIT 5"),
    ("Vehicles counted per area",
     "SELECT a.name_vi AS area, sum(k.value) AS vehicles FROM {db}.kpi AS k FINAL "
     "JOIN {db}.ref_areas AS a FINAL ON a.code = k.area_code "
     "WHERE k.kpi = 'traffic.vehicle_count' AND k.`window` = '1m' "
     "GROUP BY area ORDER BY vehicles DESC LIMIT 5"),
    ("KPI rows per subsystem",
     "SELECT splitByChar('.', kpi)[1] AS domain, count() AS kpi_rows, "
     "uniqExact(kpi) AS kpis FROM {db}.kpi FINAL GROUP BY domain ORDER BY domain"),
    ("Alerts",
     "SELECT domain, severity, status, starts_at, summary FROM {db}.alerts FINAL "
     "ORDER BY starts_at DESC LIMIT 10"),
    ("Dead letters", "SELECT count() AS dead_letters FROM {db}.dead_letters FINAL"),
]


def print_final_report(settings: Settings) -> None:
    from ioc.connectors.clickhouse import connect
    from ioc.infra.cli import format_result

    client = connect(settings.clickhouse)
    try:
        for title, sql in FINAL_QUERIES:
            result = client.query(sql.format(db=settings.database))
            print(f"\n## {title}")
            print(format_result(result.column_names, result.result_rows, "table"))
    finally:
        client.close()


def run_demo(settings: Settings, *, duration_s: float, rate: float, keep: bool = False,
             speedup: float = 10.0) -> int:
    from ioc.connectors.simulate import simulate_to_kafka
    from ioc.infra.runtime import SetupError, SinkProcess, configure_logging, run_worker, setup

    configure_logging()
    launcher = None
    if settings.uses_local_kafka:
        from ioc.infra.local_kafka import KafkaLauncherError, LocalKafka

        launcher = LocalKafka(settings)
        try:
            launcher.up()
        except KafkaLauncherError as exc:
            print(f"ioc demo: {exc}", file=sys.stderr)
            return 1
    print(f"ioc demo: Kafka {settings.bootstrap}, ClickHouse {settings.clickhouse_display}, "
          f"{duration_s:g}s at {rate:g} events/s; simulated time runs {speedup:g}x faster and "
          f"ends now, so {duration_s * speedup / 60:.0f} minutes of traffic are replayed")
    try:
        setup(settings, isolate=True)
    except SetupError as exc:
        print(f"ioc demo: {exc}", file=sys.stderr)
        return 1
    sink = SinkProcess(settings)
    sink.start()
    sent = [0]
    input_done = threading.Event()
    stop = threading.Event()
    summary = LiveSummary(settings, sent)

    def simulate() -> None:
        try:
            simulate_to_kafka(settings, "all", rate=rate, duration_s=duration_s,
                              speedup=speedup, stop=stop,
                              on_sent=lambda n: sent.__setitem__(0, n), progress=False)
        finally:
            input_done.set()

    sim_thread = threading.Thread(target=simulate, name="ioc-demo-simulator", daemon=True)
    summary.start()
    sim_thread.start()
    code = 0
    try:
        code = run_worker(settings, exit_when_idle=3.0, input_done=input_done,
                          watchdog=sink.problem)
    except KeyboardInterrupt:
        code = 130
    finally:
        stop.set()
        sim_thread.join(10)
        print("\nioc demo: draining the sink…", flush=True)
        sink_code = sink.finish() if code == 0 else (sink.stop() or 0)
        summary.stop.set()
        summary.join(5)
    if code == 0 and sink_code == 0:
        print_final_report(settings)
    print(f"\nDashboards (Grafana provisioning): {DASHBOARD_DIR}/dashboards/ioc/*.json and "
          f"{DASHBOARD_DIR}/datasources/clickhouse.yaml — see README 'Dashboards'.")
    print(f"Query the data yourself: IOC_DATA_DIR={settings.data_dir} .venv/bin/ioc sql "
          "\"SELECT * FROM ioc.kpi FINAL ORDER BY window_start DESC LIMIT 10\"")
    if launcher is not None and not keep:
        launcher.down()
        print("Local Kafka broker stopped (its data stays under "
              f"{settings.kafka_dir}; `ioc kafka up` starts it again).")
    return code or sink_code
