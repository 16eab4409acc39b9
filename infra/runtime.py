"""Starting the platform's parts: setup, the stream worker, the ClickHouse sink process, the
alert notifier process.

``ioc run`` = the Faust worker in this process + the sink in a child process + the notifier in
another child process when a routing config exists (``connectors/notify``). The sink owns
the ClickHouse client (chDB allows one engine per process and blocking inserts must not stall
the worker's event loop); the worker needs no ClickHouse at all (it reads reference data from
the same versioned files), nor does the notifier (it reads and writes Kafka only; the sink
stores its history). If the parent dies, even by SIGKILL, the children notice and exit.
With the embedded store the sink process also serves the analysts' read-only ClickHouse HTTP
interface (:mod:`ioc.connectors.query_server`) from a thread, since no other process can open
the store while it runs.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from prometheus_client import CollectorRegistry

from ioc.connectors.clickhouse import ClickHouseUnavailable, connect
from ioc.connectors.schema_registry import serde_for
from ioc.infra import (
    migrations,
    reference,
    reference_cyber,
    reference_econ,
    reference_egov,
    reference_feedback,
    reference_health_edu,
    retention,
)
from ioc.infra.cluster_ddl import ClusterDDLError, cluster_insert_settings
from ioc.infra.metrics import Metrics, serve
from ioc.infra.retention import Retention
from ioc.infra.settings import Settings
from ioc.schemas.catalogue import Catalogue
from ioc.schemas.serde import DecodeError, Serde

log = logging.getLogger(__name__)


class SetupError(RuntimeError):
    pass


@dataclass
class SetupReport:
    topics_created: list[str]
    topics_existing: list[str]
    migrations_applied: list[str]
    reference_rows: dict[str, int]
    retention: list[Retention] = field(default_factory=list)


def missing_topics(settings: Settings, catalogue: Catalogue | None = None,
                   timeout: float = 15.0) -> list[str]:
    """Contract topics that do not exist on the cluster (``ioc setup`` creates them)."""
    admin = AdminClient(settings.kafka_config())
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise SetupError(f"cannot reach Kafka at {settings.bootstrap}: {exc}. Start the local "
                         "broker with `ioc kafka up` or set IOC_KAFKA_BOOTSTRAP.") from None
    wanted = [settings.topic(t) for t in (catalogue or Catalogue()).topics]
    return [name for name in wanted if name not in existing]


COMPACTED_TOPICS = ("ioc.alert.v1", "ioc.alert_ack.v1", "ioc.silence.v1")
ALERT_EVENT_TOPIC = "ioc.alert_event.v1"
ALERT_EVENT_RETENTION_MS = 30 * 24 * 3600 * 1000


def topic_configs(settings: Settings, catalogue: Catalogue) -> dict[str, dict[str, str]]:
    """Per-topic Kafka configs (by full topic name) that ``ioc setup`` creates or sets.

    * LogAppendTime everywhere: retention counts from arrival, so an agency's backfill of old
      events (whose producer may stamp them with event time) is not deleted on arrival.
    * The alert topic is compacted and never deleted: the latest record of every alert survives
      so a restarted worker resumes its firing alerts, however old. So are the notifier's
      acknowledgement and silence topics (its state is rebuilt from them at start); its
      history topic keeps 30 days (ClickHouse keeps it for good).
    * Topics whose events rules hold for long (see :class:`ioc.streams.domain.Holds`) keep them
      at least that long (``Domain.retention``).
    """
    from ioc.infra.reference import load_reference
    from ioc.streams.registry import build_domains

    configs: dict[str, dict[str, str]] = {}
    for t in catalogue.topics:
        config = {"message.timestamp.type": "LogAppendTime"}
        if t in COMPACTED_TOPICS:
            config["cleanup.policy"] = "compact"
        if t == ALERT_EVENT_TOPIC:
            config["retention.ms"] = str(ALERT_EVENT_RETENTION_MS)
        configs[settings.topic(t)] = config
    for domain in build_domains(load_reference(settings.reference_dir)):
        for t, keep in domain.retention.items():
            ms = -1 if keep is None else int(keep.total_seconds() * 1000)
            configs.setdefault(settings.topic(t), {})["retention.ms"] = str(ms)
    return configs


def ensure_topics(settings: Settings, catalogue: Catalogue | None = None,
                  timeout: float = 30.0) -> tuple[list[str], list[str]]:
    """Create the missing contract topics and set the configs of existing ones; returns
    (created, already there)."""
    catalogue = catalogue or Catalogue()
    missing = missing_topics(settings, catalogue, timeout)
    configs = topic_configs(settings, catalogue)
    new = [NewTopic(name, num_partitions=settings.topic_partitions,
                    replication_factor=settings.topic_replication_factor or -1,
                    config=configs.get(name, {})) for name in missing]
    created = []
    admin = AdminClient(settings.kafka_config())
    if new:
        for name, fut in admin.create_topics(new, request_timeout=timeout).items():
            try:
                fut.result()
                created.append(name)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise SetupError(f"cannot create topic {name}: {exc}") from None
    wanted = [settings.topic(t) for t in catalogue.topics]
    existing = sorted(set(wanted) - set(created))
    # Topics created by an older release get today's configs (idempotent SET operations).
    resources = [
        ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
            for k, v in sorted(configs[name].items()) if k != "message.timestamp.type"])
        for name in existing if set(configs.get(name, {})) - {"message.timestamp.type"}]
    if resources:
        for res, fut in admin.incremental_alter_configs(resources,
                                                        request_timeout=timeout).items():
            try:
                fut.result()
            except KafkaException as exc:
                raise SetupError(f"cannot set configs of topic {res.name}: {exc}") from None
    return created, existing


REFERENCE_LOADERS: tuple[Callable[[Any, str, Path | None], dict[str, int]], ...] = (
    reference.load_into_clickhouse,
    reference_cyber.load_into_clickhouse,
    reference_econ.load_into_clickhouse,
    reference_health_edu.load_into_clickhouse,
    reference_feedback.load_into_clickhouse,
    reference_egov.load_into_clickhouse,
)
"""Each subsystem's ``load_into_clickhouse(client, db, directory)``: ``ioc setup`` runs them
all, in order, after the migrations."""


def load_reference_tables(client: Any, db: str, directory: Path | None = None
                          ) -> dict[str, int]:
    rows: dict[str, int] = {}
    for load in REFERENCE_LOADERS:
        rows.update(load(client, db, directory))
    return rows


def setup_clickhouse(settings: Settings, client: Any | None = None
                     ) -> tuple[list[str], dict[str, int], list[Retention]]:
    """Migrations, reference data and each table's retention (TTL, :mod:`ioc.infra.retention`)."""
    try:
        retention.plan(settings)  # a typo in IOC_RETENTION stops setup before anything changes
    except retention.RetentionError as exc:
        raise SetupError(str(exc)) from None
    own = client is None
    client = client or connect(settings.clickhouse)
    try:
        applied = migrations.migrate(client, settings.database,
                                     cluster=settings.clickhouse_cluster)
        rows = load_reference_tables(client, settings.database, settings.reference_dir)
        ttls = retention.apply(client, settings)
    except ClusterDDLError as exc:
        raise SetupError(f"ClickHouse cluster {settings.clickhouse_cluster}: {exc}") from None
    finally:
        if own:
            client.close()
    return [m.path.name for m in applied], rows, ttls


def _quiet_stdout() -> None:
    """The embedded engine writes terminal control codes to stdout; child processes that own
    it send their stdout to /dev/null (their logs go to stderr)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def _setup_clickhouse_child(settings: Settings, out: Any) -> None:
    _quiet_stdout()
    try:
        out.put(("ok", setup_clickhouse(settings)))
    except Exception as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def setup(settings: Settings, client: Any | None = None,
          log_line: Callable[[str], None] = print, isolate: bool = False) -> SetupReport:
    """Topics, migrations, reference data. Idempotent.

    ``isolate`` runs the ClickHouse part in a short-lived child process, so that a process
    which later starts the sink process (``ioc demo``) never holds the embedded engine itself.
    """
    created, existing = ensure_topics(settings)
    log_line(f"topics: {len(created)} created, {len(existing)} already there")
    if isolate and client is None:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_setup_clickhouse_child, args=(settings, queue))
        proc.start()
        status, payload = queue.get(timeout=300)
        proc.join(30)
        if status != "ok":
            raise SetupError(f"ClickHouse setup failed: {payload}")
        applied, rows, ttls = payload
    else:
        applied, rows, ttls = setup_clickhouse(settings, client)
    where = (f", cluster {settings.clickhouse_cluster}" if settings.clickhouse_cluster else "")
    log_line(f"ClickHouse ({settings.clickhouse_display}): "
             f"{len(applied)} migrations applied, database {settings.database}{where}")
    log_line("reference data: " + ", ".join(f"{k} {v} rows" for k, v in rows.items()))
    log_line(retention.summary(ttls))
    return SetupReport(created, existing, applied, rows, ttls)


def read_latest_alerts(settings: Settings, serde: Serde, timeout: float = 10.0
                       ) -> list[dict[str, Any]]:
    """The latest state of every alert in the alert topic (small; read at worker start)."""
    consumer = Consumer(settings.kafka_config(**{
        "group.id": f"{settings.topic_prefix}ioc-alert-restore",
        "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    from confluent_kafka import TopicPartition

    topic = settings.topic("ioc.alert.v1")
    latest: dict[tuple[str, Any], dict[str, Any]] = {}
    try:
        md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if md is None or md.error is not None:
            return []
        tps = []
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                tps.append((TopicPartition(topic, p, low), high))
        if not tps:
            return []
        consumer.assign([tp for tp, _ in tps])
        remaining = {tp.partition: high for tp, high in tps}
        deadline = time.monotonic() + timeout * 3
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                partition, offset = msg.partition(), msg.offset()
                if msg.error() or partition is None or offset is None:
                    continue
                if offset + 1 >= remaining.get(partition, 0):
                    remaining.pop(partition, None)
                if msg.value() is None and msg.key():
                    # a tombstone (``ioc privacy forget``): the alert's earlier records are gone
                    gone = bytes(msg.key() or b"").decode("utf-8", "replace")
                    for k in [k for k in latest if k[0] == gone]:
                        del latest[k]
                    continue
                try:
                    rec = serde.decode("ioc.alert.v1", msg.value())
                except DecodeError:
                    continue
                key = (rec["alert_id"], rec["starts_at"])
                if key not in latest or rec["updated_at"] >= latest[key]["updated_at"]:
                    latest[key] = rec
    finally:
        consumer.close()
    return list(latest.values())


# -- the sink child process -------------------------------------------------------------------

def start_query_server(settings: Settings) -> Any | None:
    """The analysts' query server in this (store-owning) process, or None when it is off
    (``IOC_QUERY_PORT=0``), not needed (a ClickHouse server) or cannot start (port taken,
    bad users): the sink goes on without it."""
    if not settings.query_port or settings.chdb_path is None:
        return None
    from ioc.connectors.query_server import QueryServer, QueryUsersError

    try:
        server = QueryServer(settings)
        server.start()
    except (OSError, QueryUsersError) as exc:
        log.warning("query server not started on %s:%d: %s", settings.query_host,
                    settings.query_port, exc)
        return None
    return server


def connect_retrying(settings: Settings, stop: Callable[[], bool],
                     max_backoff_s: float = 30.0,
                     sleep: Callable[[float], None] = time.sleep) -> Any | None:
    """A client of the ClickHouse server, waiting for it with backoff (1 s, doubling, at most
    ``max_backoff_s``) and one log line per attempt; None if ``stop()`` turned true first."""
    delay = 1.0
    attempt = 0
    while not stop():
        try:
            return connect(settings.clickhouse)
        except ClickHouseUnavailable as exc:
            attempt += 1
            log.warning("ClickHouse is not reachable (attempt %d): %s; retrying in %.0fs",
                        attempt, exc, delay)
        for _ in range(int(delay * 2)):  # half-second steps: a stop is noticed at once
            if stop():
                return None
            sleep(0.5)
        delay = min(delay * 2, max_backoff_s)
    return None


def sink_main(settings: Settings, drain: Any, ready: Any, parent_pid: int) -> None:
    """Entry point of the sink process (multiprocessing, spawn)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s sink %(levelname)s %(message)s")
    # The sink logs each failed insert itself, with the reason; the HTTP client's own
    # warnings about the same failure would only repeat it.
    for noisy in ("urllib3", "clickhouse_connect"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    _quiet_stdout()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent coordinates shutdown
    from ioc.connectors.sink import (
        ClickHouseSink,
        SinkRunner,
        SinkStopped,
        default_mappings,
        sink_consumer_config,
    )

    registry = CollectorRegistry()
    metrics = Metrics(registry)
    if settings.metrics_port:
        try:
            serve(registry, settings.metrics_port + 1)
        except OSError as exc:
            log.warning("sink metrics port %d unavailable: %s", settings.metrics_port + 1, exc)
    serde = serde_for(settings)  # Confluent framing/ids when a registry is configured

    def orphaned() -> bool:
        return os.getppid() != parent_pid

    # The embedded store opens at once or not at all (another process holds it): fail fast.
    # A server may be down for a while (it restarts, the network is away): the sink process
    # starts anyway and waits for it with backoff, and the events wait in Kafka.
    client = connect(settings.clickhouse) if settings.chdb_path is not None else None
    query_server = start_query_server(settings)
    ready.set()
    if client is None:
        client = connect_retrying(settings, orphaned)
        if client is None:
            log.warning("parent process is gone; sink exits")
            os._exit(3)
    sink = ClickHouseSink(client, settings.database, metrics,
                          insert_settings=cluster_insert_settings(settings.clickhouse_cluster),
                          store=settings.clickhouse_store)
    consumer = Consumer(sink_consumer_config(settings.bootstrap, f"{settings.topic_prefix}ioc-sink",
                                             **settings.kafka_security))
    runner = SinkRunner(consumer, sink, serde, default_mappings(serde), metrics,
                        topic_name=settings.topic)
    runner.subscribe()
    quiet_rounds = 0
    try:
        while True:
            if orphaned():
                log.warning("parent process is gone; sink exits without committing more")
                os._exit(3)
            try:
                n = runner.poll_round(stop=orphaned)
            except SinkStopped:
                log.warning("parent process is gone; sink exits without committing more")
                os._exit(3)
            if drain.is_set():
                quiet_rounds = quiet_rounds + 1 if n == 0 else 0
                if quiet_rounds >= 3 and runner.lag() == 0:
                    break
    finally:
        if query_server is not None:
            query_server.stop()
        consumer.close()
        client.close()


class SinkProcess:
    def __init__(self, settings: Settings) -> None:
        ctx = mp.get_context("spawn")
        self.drain = ctx.Event()
        self.ready = ctx.Event()
        self.proc = ctx.Process(target=sink_main, name="ioc-sink",
                                args=(settings, self.drain, self.ready, os.getpid()),
                                daemon=False)

    def start(self, timeout: float = 120.0) -> None:
        self.proc.start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.5):
            if not self.proc.is_alive():
                raise RuntimeError(f"the ClickHouse sink process exited (code "
                                   f"{self.proc.exitcode}) while starting; see its log lines "
                                   "above")
            if time.monotonic() > deadline:
                raise RuntimeError("the ClickHouse sink process did not start in time")

    def problem(self) -> str | None:
        """Why the sink is not running, if it stopped without being asked to."""
        if self.proc.is_alive() or self.drain.is_set():
            return None
        return (f"the ClickHouse sink process exited (code {self.proc.exitcode}); see its "
                "log lines above")

    def finish(self, timeout: float = 300.0) -> int:
        """Let the sink drain what is on the topics, then wait for it to exit."""
        self.drain.set()
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)
            return 1
        return self.proc.exitcode or 0

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)

    def kill(self) -> None:
        """Stop at once (a restart): the sink commits only what it stored, so nothing is lost
        and its successor reads on from there."""
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)


# -- the notifier child process ----------------------------------------------------------------

def notifier_main(settings: Settings, config_path: str, drain: Any, ready: Any,
                  parent_pid: int) -> None:
    """Entry point of the notifier process (multiprocessing, spawn)."""
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s notifier %(levelname)s %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent coordinates shutdown
    from ioc.connectors.notify.service import notify_main

    sys.exit(notify_main(settings, config_path, drain, ready, parent_pid))


class NotifierProcess:
    """The alert notifier (``connectors/notify``) as a child process of ``ioc run`` /
    ``ioc demo``, supervised like the sink. It needs no ClickHouse: it reads and writes Kafka
    only (the sink stores its history)."""

    def __init__(self, settings: Settings, config_path: Path) -> None:
        ctx = mp.get_context("spawn")
        self.drain = ctx.Event()
        self.ready = ctx.Event()
        self.proc = ctx.Process(target=notifier_main, name="ioc-notify",
                                args=(settings, str(config_path), self.drain, self.ready,
                                      os.getpid()), daemon=False)

    @classmethod
    def maybe(cls, settings: Settings, log_line: Callable[[str], None] | None = None
              ) -> NotifierProcess | None:
        """The notifier if a routing config exists (checked now, so a broken config stops
        ``ioc run`` with its file:line errors); otherwise None and one line saying so."""
        from ioc.connectors.notify.config import load_config

        say = log_line or (lambda text: print(text, file=sys.stderr))
        path = settings.notify_config_path
        if path is None:
            say("notifier: off — no routing config (set IOC_NOTIFY_CONFIG or create "
                f"{settings.data_dir / 'notify' / 'routes.yaml'}; see docs/notifications.md)")
            return None
        load_config(path)  # raises ConfigError
        say(f"notifier: routing from {path}; ack links at {settings.notify_base_url}/ack/…")
        return cls(settings, path)

    def start(self, timeout: float = 120.0) -> None:
        self.proc.start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.5):
            if not self.proc.is_alive():
                raise RuntimeError(f"notifier process exited with code {self.proc.exitcode}")
            if time.monotonic() > deadline:
                raise RuntimeError("notifier process did not start in time")

    def problem(self) -> str | None:
        if self.proc.is_alive() or self.drain.is_set():
            return None
        return (f"the notifier process exited (code {self.proc.exitcode}); see its log lines "
                "above")

    def finish(self, timeout: float = 180.0) -> int:
        """Catch up with the alert topic, send what is pending, wait for deliveries, exit."""
        self.drain.set()
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)
            return 1
        return self.proc.exitcode or 0

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(10)

    def kill(self) -> None:
        """Stop at once (before the parent restarts or re-executes itself): everything the
        notifier did is in Kafka, its successor rebuilds from there. A parent that re-executes
        itself keeps its pid, so the child would not notice: kill it first."""
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(10)


def watch_all(*checks: Callable[[], str | None]) -> Callable[[], str | None]:
    """One watchdog for several companion processes: the first problem found."""
    def check() -> str | None:
        for c in checks:
            problem = c()
            if problem:
                return problem
        return None
    return check


# -- the worker --------------------------------------------------------------------------------

def run_worker(settings: Settings, exit_when_idle: float | None = None,
               registry: CollectorRegistry | None = None,
               input_done: Any | None = None,
               watchdog: Callable[[], str | None] | None = None,
               children: Callable[[], None] = lambda: None) -> int:
    """Run the Faust worker in this process until stopped (or idle). Returns an exit code.

    With ``exit_when_idle``, the worker exits once it has read everything on its partitions,
    nothing new came for that many seconds and every pending window was published; if
    ``input_done`` (a ``threading.Event``) is given, idleness only counts after it is set.
    ``watchdog`` is asked every two seconds whether a companion process failed; if it returns a
    message, the worker stops and the exit code is 1. A stalled worker restarts itself in
    place (:mod:`ioc.infra.watchdog`) after ``children`` stopped the companion processes.
    """
    import asyncio

    import faust

    from ioc.infra.watchdog import maybe_inject_fault
    from ioc.streams.app import OUTPUT_PRODUCER, create_app, sleep_until_idle

    registry = registry or CollectorRegistry()
    metrics = Metrics(registry)
    if settings.metrics_port:
        try:
            serve(registry, settings.metrics_port)
        except OSError as exc:
            log.warning("metrics port %d unavailable: %s", settings.metrics_port, exc)
    serde = serde_for(settings)  # Confluent framing/ids when a registry is configured
    ref = reference.load_reference(settings.reference_dir)
    restored = read_latest_alerts(settings, serde)
    from ioc.streams import checkpoints

    checkpoints.ensure_topic(settings)
    from confluent_kafka import Producer

    from ioc.connectors.producer import producer_config

    out = Producer(producer_config(settings.bootstrap, **settings.kafka_security,
                                   **OUTPUT_PRODUCER))
    app, state = create_app(settings, reference=ref, metrics=metrics, serde=serde,
                            restored_alerts=restored, producer=out)
    stall_watch = _start_watchdog(settings, state, metrics, serde, restored, children)
    maybe_inject_fault(app)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, loop=loop,
                          override_logging=False)

    stopping: list[asyncio.Future[Any]] = []
    if exit_when_idle is not None:
        @app.task
        async def _idle_exit() -> None:
            while input_done is not None and not input_done.is_set():
                await asyncio.sleep(0.5)
            await sleep_until_idle(app, state, exit_when_idle)
            await app.ioc_flush_all()  # type: ignore[attr-defined]
            stopping.append(asyncio.ensure_future(worker.stop()))

    failed: list[str] = []
    if watchdog is not None:
        @app.timer(interval=2.0)
        async def _watch() -> None:
            problem = watchdog()
            if problem and not failed:
                failed.append(problem)
                log.error("%s; stopping the worker", problem)
                stopping.append(asyncio.ensure_future(worker.stop()))

    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        stall_watch.stop()
        if left := out.flush(10):
            # their source events were not acknowledged: the next start recomputes them
            log.warning("%d outputs not confirmed by Kafka at exit", left)
        out.close()  # no reconnect attempts (and log noise) once the worker is done
    return 1 if failed else code


def _start_watchdog(settings: Settings, state: Any, metrics: Metrics, serde: Serde,
                    restored: list[dict[str, Any]], children: Callable[[], None]) -> Any:
    from confluent_kafka import Producer

    from ioc.connectors.producer import producer_config
    from ioc.infra.watchdog import Watchdog, restart_in_place, restarts_so_far
    from ioc.streams.app import ALERT_TOPIC

    alerts = Producer(producer_config(settings.bootstrap, **settings.kafka_security))

    def publish(rec: dict[str, Any]) -> None:
        alerts.produce(settings.topic(ALERT_TOPIC), key=rec["alert_id"].encode(),
                       value=serde.encode(ALERT_TOPIC, rec))
        alerts.flush(10)

    admin = AdminClient(settings.kafka_config())

    def broker_ok() -> bool:
        try:
            admin.list_topics(timeout=5)
            return True
        except KafkaException:
            return False

    dog = Watchdog(state, group=f"{settings.topic_prefix}ioc-streams", broker_ok=broker_ok,
                   stall_after=settings.stall_timeout_s, lag=lambda: state.lag_total,
                   publish=publish, on_stall=lambda _reason: restart_in_place(children),
                   stalled_gauge=metrics.stalled, restored=restored)
    metrics.watchdog_restarts.set(restarts_so_far())
    dog.start()
    return dog


def run(settings: Settings, exit_when_idle: float | None = None) -> int:
    """``ioc run``: sink child process + notifier child process (when a routing config
    exists) + Faust worker here. When idle-exit is asked for, the notifier finishes first (so
    its history of this run reaches the sink), then the sink drains."""
    notifier = NotifierProcess.maybe(settings)
    sink = SinkProcess(settings)
    try:
        sink.start()
        if notifier is not None:
            notifier.start()
    except RuntimeError as exc:  # a child died while starting: say so, no traceback
        print(f"ioc run: {exc}", file=sys.stderr)
        if notifier is not None:
            notifier.stop()
        sink.stop()
        return 1

    def kill_children() -> None:  # before the watchdog restarts this process in place
        if notifier is not None:
            notifier.kill()
        sink.kill()

    try:
        watchdog = watch_all(sink.problem, *([notifier.problem] if notifier else []))
        code = run_worker(settings, exit_when_idle, watchdog=watchdog,
                          children=kill_children)
    except BaseException:
        if notifier is not None:
            notifier.stop()
        sink.stop()
        raise
    if exit_when_idle is not None:
        notifier_code = notifier.finish() if notifier is not None and code == 0 else 0
        if notifier is not None:
            notifier.stop()
        sink_code = sink.finish()
        return code or notifier_code or sink_code
    if notifier is not None:
        notifier.stop()
    sink.stop()
    return code


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
