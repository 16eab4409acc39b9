"""``ioc demo``: the whole platform on one machine, with a live summary.

Starts the local Kafka broker (unless IOC_KAFKA_BOOTSTRAP points elsewhere), runs setup, then
every subsystem's simulator, the Faust worker, the ClickHouse sink and the alert notifier
together for ``duration`` seconds, printing events/s, the latest KPIs, firing alerts and
notifications sent as they come. There is no mail server in the demo: unless the data dir has a
routing config of its own, the notifier uses ``infra/notify/routes.demo.yaml``, whose "outbox"
channel writes each email as an ``.eml`` file into ``$IOC_DATA_DIR/notify/outbox``. At the end the
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

from ioc.dashboards.overview import DOMAIN_VI
from ioc.dashboards.situation import situation_sql
from ioc.infra import reference
from ioc.infra.settings import Settings
from ioc.schemas.serde import DecodeError, Serde

DASHBOARD_DIR = Path(__file__).parent / "grafana" / "provisioning"
DEMO_ROUTES = Path(__file__).parent / "notify" / "routes.demo.yaml"
"""The demo's routing config when the data dir has none: a file "outbox" channel."""


class LiveSummary(threading.Thread):
    """Reads the KPI and alert topics and prints a short status block every few seconds."""

    def __init__(self, settings: Settings, sent: list[int], every_s: float = 10.0,
                 notifications: bool = False) -> None:
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
        self.notifications = notifications
        self.delivered = 0
        self.latest_notes: list[str] = []

    def run(self) -> None:
        consumer = Consumer(self.settings.kafka_config(**{
            "group.id": f"{self.settings.topic_prefix}ioc-demo-summary-{time.time_ns()}",
            "auto.offset.reset": "latest", "enable.auto.commit": False}))
        consumer.subscribe([self.settings.topic("ioc.kpi.v1"),
                            self.settings.topic("ioc.alert.v1")]
                           + ([self.settings.topic("ioc.alert_event.v1")]
                              if self.notifications else []))
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
            elif topic.endswith("ioc.alert_event.v1"):
                ev = self.serde.decode("ioc.alert_event.v1", value)
                if ev["kind"] == "delivery" and ev["outcome"] == "sent":
                    self.delivered += 1
                    note = f"{ev['summary']} → {ev['recipient']}"
                    self.latest_notes = [*self.latest_notes, note][-3:]
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
        by_domain: dict[str, int] = {}
        for rec in self.firing.values():
            by_domain[rec["domain"]] = by_domain.get(rec["domain"], 0) + 1
        if by_domain:
            out.append("   Cảnh báo theo lĩnh vực: " + ", ".join(
                f"{DOMAIN_VI.get(d, d)} {n}" for d, n in sorted(by_domain.items())))
        newest = sorted(self.firing.values(),
                        key=lambda r: (r["severity"] != "critical", -r["updated_at"].timestamp()))
        for rec in newest[:5]:
            out.append(f"   ⚠ [{rec['severity']}] {rec['summary']}")
        if self.notifications:
            out.append(f"   ✉ {self.delivered} thông báo đã gửi (notifications delivered)")
            out.extend(f"     {note}" for note in self.latest_notes)
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
    ("Province situation level now (rules: ioc.dashboards.situation)",
     situation_sql("now64(3)", database="{db}")),
    ("Alert episodes per subsystem and rule (fired and resolved during the replay)",
     "SELECT domain, rule, count() AS episodes, countIf(status = 'resolved') AS resolved, "
     "countIf(status = 'firing') AS still_firing FROM {db}.alerts FINAL "
     "GROUP BY domain, rule ORDER BY domain, rule"),
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
    ("Latest alerts",
     "SELECT domain, severity, status, starts_at, summary FROM {db}.alerts FINAL "
     "ORDER BY updated_at DESC LIMIT 10"),
    ("Dead letters", "SELECT count() AS dead_letters FROM {db}.dead_letters FINAL"),
    ("Notifications (deliveries by receiver, channel and outcome)",
     "SELECT receiver, channel, outcome, count() AS deliveries FROM {db}.alert_events FINAL "
     "WHERE kind = 'delivery' GROUP BY receiver, channel, outcome "
     "ORDER BY receiver, channel, outcome"),
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
             speedup: float = 25.0) -> int:
    from ioc.connectors.simulate import simulate_to_kafka
    from ioc.infra.runtime import (
        NotifierProcess,
        SetupError,
        SinkProcess,
        configure_logging,
        run_worker,
        setup,
        watch_all,
    )

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
          f"ends now, so {duration_s * speedup / 60:.0f} minutes of all eight subsystems are "
          "replayed (with some days to months of history for the slow ones)")
    try:
        setup(settings, isolate=True)
    except SetupError as exc:
        print(f"ioc demo: {exc}", file=sys.stderr)
        return 1
    from ioc.connectors.query_server import QueryUsersError, describe

    try:
        analysts = describe(settings)
    except QueryUsersError as exc:
        print(f"ioc demo: {exc}", file=sys.stderr)
        return 1
    if analysts:
        print(f"ioc demo: {analysts}")
    if settings.notify_config_path is None:
        # No routing config of its own: the demo's, whose channel writes .eml files.
        settings = settings.with_(notify_config=DEMO_ROUTES)
    from ioc.connectors.notify.config import ConfigError

    try:
        notifier = NotifierProcess.maybe(settings, print)
    except ConfigError as exc:
        print(f"ioc demo: the notification routing config is invalid:\n{exc}", file=sys.stderr)
        return 1
    sink = SinkProcess(settings)
    sink.start()
    if notifier is not None:
        notifier.start()
    sent = [0]
    input_done = threading.Event()
    stop = threading.Event()

    def kill_children() -> None:  # before the watchdog restarts this process in place
        if notifier is not None:
            notifier.kill()
        sink.kill()

    summary = LiveSummary(settings, sent, notifications=notifier is not None)

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
                          watchdog=watch_all(sink.problem,
                                             *([notifier.problem] if notifier else [])),
                          children=kill_children)
    except KeyboardInterrupt:
        code = 130
    finally:
        stop.set()
        sim_thread.join(10)
        if notifier is not None:
            print("\nioc demo: the notifier sends what is pending…", flush=True)
            if code == 0:
                code = notifier.finish()
            notifier.stop()
        print("\nioc demo: draining the sink…", flush=True)
        sink_code = sink.finish() if code == 0 else (sink.stop() or 0)
        summary.stop.set()
        summary.join(5)
    if code == 0 and sink_code == 0:
        print_final_report(settings)
    print(f"\nDashboards (Grafana provisioning): {DASHBOARD_DIR}/dashboards/ioc*/*.json and "
          f"{DASHBOARD_DIR}/datasources/*.yaml — see README 'Dashboards'.")
    print(f"A leadership briefing of today: IOC_DATA_DIR={settings.data_dir} .venv/bin/ioc "
          "report --period day")
    if notifier is not None and settings.notify_config == DEMO_ROUTES:
        print(f"Notifications (no mail server in the demo): the emails duty officers would "
              f"get are in {settings.data_dir / 'notify' / 'outbox'}/*.eml; "
              "`ioc alerts list` shows the alerts (see docs/notifications.md).")
    print(f"Query the data yourself: IOC_DATA_DIR={settings.data_dir} .venv/bin/ioc sql "
          "\"SELECT * FROM ioc.kpi FINAL ORDER BY window_start DESC LIMIT 10\"")
    if launcher is not None and not keep:
        launcher.down()
        print("Local Kafka broker stopped (its data stays under "
              f"{settings.kafka_dir}; `ioc kafka up` starts it again).")
    return code or sink_code
