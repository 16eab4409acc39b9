"""End-to-end throughput: Kafka → KPI worker + ClickHouse sink, against a plain-loop ceiling.

One run, one data set, three phases (see bench/README.md for what each figure means):

1. **Ceiling** — a plain confluent-kafka loop in a child process: consume, decode with ``Serde``,
   build the sink's rows (same columns), ``client.insert`` in batches of ~20k into its own chDB.
   No KPIs, no offsets committed, no framework: what this machine can do at most.
2. **E2E** — ``ioc run --exit-when-idle 2`` (the Faust KPI worker + the sink child process, as
   deployed) on a full backlog of the *same bytes* under another topic prefix. The bench watches
   the broker (consumer-group states and the sink's committed offsets; the sink commits only after
   its insert) to time it from "both consumer groups have their partitions" to "every raw row and
   every KPI row is committed in ClickHouse". Afterwards it checks in ClickHouse that all N events
   are there once and that the 1m/1h vehicle-count KPIs add up to the raw vehicle counts.
3. **Latency** — ``ioc run`` on fresh topics, a producer at a steady rate with ``occurred_at`` =
   send time, and the p99 of event time → row stored in ClickHouse.

It ends with one line::

    e2e_events_per_s=… ceiling_events_per_s=… ratio=… p99_latency_ms=…

Usage: ``.venv/bin/python bench/e2e_throughput.py [--events N] [--data-dir D] [--keep]``
(``make bench``; ``BENCH_ARGS=...`` passes options). It starts its own local Kafka broker unless
``IOC_KAFKA_BOOTSTRAP`` is set. ``--profile`` adds cProfile runs of the worker and of the sink.
"""

from __future__ import annotations

import argparse
import bisect
import cProfile
import io
import json
import multiprocessing as mp
import os
import pstats
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from ioc.connectors.producer import EventProducer, make_producer, producer_config
from ioc.connectors.sim_mix import domain_of, mixed_events, stride_sample, weekday_window
from ioc.connectors.simulator import FLOW_TOPIC, TrafficSimulator
from ioc.connectors.sink import raw_table
from ioc.infra import reference
from ioc.infra.runtime import ensure_topics
from ioc.infra.settings import Settings
from ioc.schemas.serde import Serde

KPI_TOPIC = "ioc.kpi.v1"
ALERT_TOPIC = "ioc.alert.v1"
IDLE_S = 2.0                 # --exit-when-idle of the e2e run
CEILING_BATCH = 20_000       # rows per insert in the ceiling loop (the sink's max_batch)
WATCH_INTERVAL_S = 0.1       # broker polling while timing the e2e run (~4 % of a core)
LATENCY_WATCH_INTERVAL_S = 0.05  # resolution of the latency figures (~10 % of a core)
IOC = Path(sys.executable).with_name("ioc")


class BenchError(RuntimeError):
    pass


def say(line: str) -> None:
    print(line, flush=True)


# -- the data set -------------------------------------------------------------------------------

@dataclass
class DataSet:
    """Events encoded once (single-object Avro), in the order they are produced: the same key and
    bytes go to every topic set of a run."""

    mix: str
    topics: list[str]            # logical topic of each event
    keys: list[bytes]
    values: list[bytes]
    records: list[dict[str, Any]]
    vehicles: int                # vehicle total of the flow readings
    first: datetime
    last: datetime

    @property
    def counts(self) -> dict[str, int]:
        """Events per logical topic, largest first."""
        return dict(Counter(self.topics).most_common())

    @property
    def flow_events(self) -> int:
        return self.counts.get(FLOW_TOPIC, 0)

    def by_domain(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for topic, count in self.counts.items():
            out[domain_of(topic)] = out.get(domain_of(topic), 0) + count
        return out


def generate(n: int, interval_s: float, seed: int) -> DataSet:
    """N flow readings of the reference segments, each segment every ``interval_s`` seconds,
    ending a few minutes ago; encoded once (single-object Avro) so both topic sets get the same
    bytes."""
    segments = reference.load_segments()
    sim = TrafficSimulator(segments, seed=seed)
    rate = len(segments) / interval_s
    span = n / rate
    start = datetime.now(UTC) - timedelta(seconds=span + 300)
    serde = Serde()
    keys: list[bytes] = []
    values: list[bytes] = []
    records: list[dict[str, Any]] = []
    for ev in sim.stream(start, rate=rate, duration_s=span * 1.1 + 60):
        if ev.topic != FLOW_TOPIC:
            continue  # incidents have their own topic; the benchmark counts flow readings only
        keys.append(ev.key.encode())
        values.append(serde.encode(FLOW_TOPIC, ev.value))
        records.append(ev.value)
        if len(values) == n:
            break
    if len(values) < n:
        raise BenchError(f"simulator produced only {len(values)} flow events")
    return DataSet("traffic", [FLOW_TOPIC] * n, keys, values, records,
                   sum(r["vehicle_count"] for r in records),
                   records[0]["occurred_at"], records[-1]["occurred_at"])


def generate_mix(hours: float, interval_s: float, seed: int,
                 now: datetime | None = None) -> DataSet:
    """Every subsystem's events over ``hours`` of the latest complete working day, at the
    simulators' own rates (traffic: each segment every ``interval_s``); see
    :mod:`ioc.connectors.sim_mix` for the model and the proportions of a whole day."""
    start, end = weekday_window(now or datetime.now(UTC), hours)
    events = mixed_events(reference.load_reference(), start, end, seed=seed,
                          interval_s=interval_s)
    if not events:
        raise BenchError("the simulators produced no events")
    serde = Serde()
    values = [serde.encode(ev.topic, ev.value) for ev in events]
    records = [ev.value for ev in events]
    ids = {(ev.topic, ev.value["event_id"]) for ev in events}
    if len(ids) != len(events):
        raise BenchError(f"the mix repeats {len(events) - len(ids)} event ids")
    vehicles = sum(ev.value["vehicle_count"] for ev in events if ev.topic == FLOW_TOPIC)
    return DataSet("all", [ev.topic for ev in events], [ev.key for ev in events], values,
                   records, vehicles, records[0]["occurred_at"], records[-1]["occurred_at"])


def produce_backlog(bootstrap: str, topic_name: Callable[[str], str], data: DataSet) -> float:
    """Send the pre-encoded events (same key, same bytes) with the platform's producer config."""
    producer = Producer(producer_config(bootstrap))
    failed: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    names = {t: topic_name(t) for t in set(data.topics)}
    started = time.perf_counter()
    for topic, key, value in zip(data.topics, data.keys, data.values, strict=True):
        while True:
            try:
                producer.produce(names[topic], key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120):
        raise BenchError("not every event was confirmed by the broker")
    if failed:
        raise BenchError(f"{len(failed)} events failed, e.g. {failed[0]}")
    return time.perf_counter() - started


def end_offsets(admin: AdminClient, topic: str, partitions: int) -> dict[int, int]:
    req = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}
    out = {}
    for tp, fut in admin.list_offsets(req, request_timeout=30).items():
        out[tp.partition] = fut.result().offset
    return out


# -- the ceiling: a plain consume → decode → bulk-insert loop (child process) --------------------

def ceiling_child(bootstrap: str, prefix: str, topics: list[str], partitions: int,
                  clickhouse_url: str, n: int, out: Any) -> None:
    try:
        out.put(("ok", _ceiling(bootstrap, prefix, topics, partitions, clickhouse_url, n)))
    except Exception as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def _ceiling(bootstrap: str, prefix: str, topics: list[str], partitions: int,
             clickhouse_url: str, n: int) -> dict[str, Any]:
    """Consume every raw topic of the data set, decode, build the sink's rows (same columns, in
    the sink's order), insert each table's rows in batches of ~``CEILING_BATCH``."""
    from ioc.connectors.clickhouse import connect
    from ioc.connectors.sink import _META, default_mappings
    from ioc.infra.runtime import setup_clickhouse

    settings = Settings(clickhouse_url=clickhouse_url, topic_prefix=prefix)
    setup_clickhouse(settings)
    client = connect(settings.clickhouse)
    serde = Serde()
    mappings = {m.topic: m for m in default_mappings(serde) if m.topic in topics}
    logical = {settings.topic(t): t for t in topics}
    consumer = Consumer({"bootstrap.servers": bootstrap,
                         "group.id": f"bench-ceiling-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         "auto.offset.reset": "earliest", "fetch.min.bytes": 1})
    consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING)
                     for name in logical for p in range(partitions)])
    t_consume = t_decode = t_insert = 0.0
    pending: dict[str, list[list[Any]]] = {t: [] for t in topics}
    read = done = inserts = 0
    started = time.perf_counter()

    def insert(topic: str) -> None:
        nonlocal done, inserts
        rows, m = pending[topic], mappings[topic]
        first, last = rows[0], rows[-1]
        token = f"ceiling:{topic}:{first[-3]}:{first[-2]}-{last[-3]}:{last[-2]}"
        client.insert(f"{settings.database}.{m.table}", rows, column_names=m.columns + _META,
                      settings={"insert_deduplication_token": token})
        done += len(rows)
        inserts += 1
        pending[topic] = []

    try:
        while done < n:
            t = time.perf_counter()
            msgs = consumer.consume(num_messages=5000, timeout=1.0)
            t2 = time.perf_counter()
            t_consume += t2 - t
            now = datetime.now(UTC)  # as the sink: one _ingested_at per poll
            for msg in msgs:
                if msg.error():
                    continue
                topic = logical[msg.topic()]
                m = mappings[topic]
                record = serde.decode(topic, msg.value())
                pending[topic].append([record.get(c) for c in m.columns]
                                      + [topic, msg.partition(), msg.offset(), now])
                read += 1
            t3 = time.perf_counter()
            t_decode += t3 - t2
            for topic, rows in pending.items():
                if rows and (len(rows) >= CEILING_BATCH or read >= n):
                    insert(topic)
            t_insert += time.perf_counter() - t3
            if time.perf_counter() - started > 600:
                raise BenchError(f"ceiling: only {done} of {n} rows after 600 s")
        elapsed = time.perf_counter() - started
        stored = {t: int(client.query(f"SELECT count() FROM {settings.database}."
                                      f"{m.table}").result_rows[0][0])
                  for t, m in mappings.items()}
        vehicles = 0
        if FLOW_TOPIC in mappings:
            vehicles = int(client.query(f"SELECT sum(vehicle_count) FROM {settings.database}."
                                        "traffic_flow").result_rows[0][0])
    finally:
        consumer.close()
        client.close()
    return {"seconds": elapsed, "rows": sum(stored.values()), "stored": stored,
            "vehicles": vehicles, "consume_s": t_consume, "decode_s": t_decode,
            "insert_s": t_insert, "inserts": inserts}


def run_ceiling(bootstrap: str, prefix: str, topics: list[str], partitions: int, ch_dir: Path,
                n: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=ceiling_child, name="bench-ceiling",
                       args=(bootstrap, prefix, topics, partitions, f"chdb://{ch_dir}", n, queue))
    proc.start()
    try:
        status, payload = queue.get(timeout=900)
    finally:
        proc.join(60)
        if proc.is_alive():
            proc.kill()
            proc.join(10)
    if status != "ok":
        raise BenchError(f"ceiling failed: {payload}")
    return dict(payload)


# -- watching the platform from the broker's side -----------------------------------------------

class GroupWatch(threading.Thread):
    """Polls the broker: when each consumer group is STABLE with members, and every change of the
    sink group's committed offsets (wall time of the answer, so an upper bound of the commit)."""

    def __init__(self, bootstrap: str, sink_group: str, groups: Sequence[str],
                 interval: float, members: dict[str, int] | None = None) -> None:
        super().__init__(name="bench-watch", daemon=True)
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.sink_group = sink_group
        self.groups = list(groups)
        self.members = dict(members or {})  # a group is ready with at least this many members
        self.interval = interval
        self.ready: dict[str, float] = {}
        self.commits: dict[tuple[str, int], list[tuple[float, int]]] = {}
        self.others: dict[str, dict[tuple[str, int], int]] = {
            g: {} for g in self.groups if g != sink_group}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.poll()
            self.halt.wait(self.interval)

    def stop(self) -> None:
        self.halt.set()
        self.join(10)
        self.poll()

    def poll(self) -> None:
        pending = [g for g in self.groups if g not in self.ready]
        if pending:
            try:
                for group, fut in self.admin.describe_consumer_groups(
                        pending, request_timeout=5).items():
                    desc = fut.result()
                    wanted = self.members.get(group, 1)
                    if desc.state == ConsumerGroupState.STABLE and len(desc.members) >= wanted:
                        self.ready[group] = time.time()
            except KafkaException:
                pass
        if self.sink_group not in self.ready:
            return  # nothing committed yet, and see _offsets
        result = self._offsets(self.sink_group)
        now = time.time()
        for tp in result:
            hist = self.commits.setdefault((tp.topic, tp.partition), [])
            if not hist or hist[-1][1] != tp.offset:
                hist.append((now, tp.offset))
        for group, latest in self.others.items():
            if group not in self.ready:
                continue
            for tp in self._offsets(group):
                latest[(tp.topic, tp.partition)] = tp.offset

    def _offsets(self, group: str) -> list[TopicPartition]:
        # Only for groups seen STABLE: librdkafka 2.x can crash the process (SIGSEGV) when an
        # OffsetFetch gets NOT_COORDINATOR, e.g. before __consumer_offsets exists
        # (confluent-kafka-python#1982, confluent-kafka-javascript#374).
        try:
            futs = self.admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group)], request_timeout=5)
            result = futs[group].result()
        except KafkaException:
            return []
        return [tp for tp in result.topic_partitions or [] if tp.offset >= 0]

    def other_committed(self, group: str, *topics: str) -> int:
        """What another group (the worker) has committed on ``topics`` (progress display)."""
        return sum(off for (t, _p), off in self.others.get(group, {}).items() if t in topics)

    def all_ready(self) -> bool:
        return all(g in self.ready for g in self.groups)

    def committed(self, *topics: str) -> int:
        return sum(h[-1][1] for (t, _p), h in self.commits.items() if t in topics and h)

    def reached(self, topic: str, targets: dict[int, int]) -> float | None:
        """Wall time at which the sink had committed up to ``targets`` on every partition."""
        when = 0.0
        for p, target in targets.items():
            if target <= 0:
                continue
            hist = self.commits.get((topic, p), [])
            hit = next((t for t, off in hist if off >= target), None)
            if hit is None:
                return None
            when = max(when, hit)
        return when

    def stored_at(self, topic: str, partition: int, offset: int) -> float | None:
        """Upper bound of when the row from ``offset`` was committed (so inserted)."""
        hist = self.commits.get((topic, partition), [])
        offs = [off for _t, off in hist]
        i = bisect.bisect_right(offs, offset)
        return hist[i][0] if i < len(hist) else None


# -- driving `ioc` ---------------------------------------------------------------------------------

def ioc_env(bootstrap: str, prefix: str, ch_dir: Path, run_dir: Path) -> dict[str, str]:
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"IOC_DATA_DIR": str(run_dir), "IOC_KAFKA_BOOTSTRAP": bootstrap,
                "IOC_TOPIC_PREFIX": prefix, "IOC_CLICKHOUSE_URL": f"chdb://{ch_dir}",
                "IOC_METRICS_PORT": "0"})
    return env


def ioc_cmd(*args: str) -> list[str]:
    if IOC.exists():
        return [str(IOC), *args]
    return [sys.executable, "-c", "from ioc.infra.cli import main; main()", *args]


def ioc_setup(env: dict[str, str]) -> None:
    res = subprocess.run(ioc_cmd("setup"), env=env, cwd=env["IOC_DATA_DIR"],
                         capture_output=True, text=True, timeout=600, check=False)
    if res.returncode:
        raise BenchError(f"ioc setup failed:\n{res.stdout}\n{res.stderr}")


def ioc_sql(env: dict[str, str], query: str) -> list[dict[str, Any]]:
    res = subprocess.run(ioc_cmd("sql", query, "--format", "json"), env=env,
                         cwd=env["IOC_DATA_DIR"], capture_output=True, text=True, timeout=600,
                         check=False)
    if res.returncode:
        raise BenchError(f"ioc sql failed: {res.stderr.strip()}")
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


class IocRun:
    """``ioc run`` as a child process in its own session (its sink child is in it too)."""

    def __init__(self, env: dict[str, str], *extra: str, log_name: str = "ioc-run.log") -> None:
        self.log_path = Path(env["IOC_DATA_DIR"]) / log_name
        self._log = self.log_path.open("ab")
        self.started = time.time()
        self.proc = subprocess.Popen(ioc_cmd("run", *extra), env=env, cwd=env["IOC_DATA_DIR"],
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.ended: float | None = None
        self.cpu: dict[str, float] = {}

    def sample_cpu(self) -> None:
        """CPU seconds so far of the worker (this process) and the sink (its spawned child)."""
        tick = os.sysconf("SC_CLK_TCK")
        pids = {"worker": self.proc.pid}
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            for child in children.split():
                if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text(errors="replace"):
                    pids["sink"] = int(child)
        except OSError:
            return
        for name, pid in pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                # main thread only: ns on a CPU, ns runnable but waiting for a CPU
                _run_ns, wait_ns = Path(f"/proc/{pid}/schedstat").read_text().split()[:2]
            except OSError:
                continue
            self.cpu[name] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            self.cpu[f"{name} main thread waiting for a CPU"] = int(wait_ns) / 1e9

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(f"ioc run did not finish in {timeout:.0f} s; log: "
                             f"{self.log_path}\n{self.tail()}") from None
        self.ended = time.time()
        return code

    def interrupt(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def kill(self) -> None:
        """Kill what is left of this run: its own process group (the sink child included)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(10)
        self._log.close()

    def tail(self, lines: int = 25) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


# -- the e2e phase ---------------------------------------------------------------------------------

@dataclass
class E2EResult:
    wall_s: float
    startup_s: float
    sink_ready_s: float
    worker_ready_s: float
    raw_done_s: float
    kpi_done_s: float
    kpi_last_from_idle_flush: bool
    seconds: float
    first_group_seconds: float
    raw_rows_at_ready: int
    output_records: int = 0  # KPI and alert records the worker wrote (the sink stored them)
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_idle_rate(pid: int | None, seconds: float = 3.0) -> float:
    """CPU seconds per second our broker uses while nobody talks to it (its background work),
    so a run's broker CPU can be counted net of it."""
    if pid is None:
        return 0.0
    before = process_cpu(pid)
    time.sleep(seconds)
    return (process_cpu(pid) - before) / seconds


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 1
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def run_e2e(bootstrap: str, prefix: str, ch_dir: Path, run_dir: Path, data: DataSet,
            partitions: int, broker_pid: int | None) -> E2EResult:
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    env = ioc_env(bootstrap, prefix, ch_dir, run_dir)
    ioc_setup(env)
    raw = {t: settings.topic(t) for t in data.counts}
    kpi, alert = settings.topic(KPI_TOPIC), settings.topic(ALERT_TOPIC)
    sink_group, worker_group = f"{prefix}ioc-sink", f"{prefix}ioc-streams"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    raw_end = {t: end_offsets(admin, name, partitions) for t, name in raw.items()}
    for t, ends in raw_end.items():
        if sum(ends.values()) != data.counts[t]:
            raise BenchError(f"{raw[t]} holds {sum(ends.values())} events, expected "
                             f"{data.counts[t]}")
    watch = GroupWatch(bootstrap, sink_group, [sink_group, worker_group], WATCH_INTERVAL_S)
    idle_rate = broker_idle_rate(broker_pid)
    busy0, broker0 = machine_cpu(), process_cpu(broker_pid)
    run = IocRun(env, "--exit-when-idle", f"{IDLE_S:g}")
    watch.start()
    raw_names = list(raw.values())
    try:
        deadline = time.monotonic() + 1800
        next_line = time.monotonic() + 5
        while run.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.25)
            run.sample_cpu()
            if time.monotonic() < next_line:
                continue
            next_line += 5
            say(f"  … {time.time() - run.started:5.1f} s: sink committed "
                f"{watch.committed(*raw_names)} raw rows and {watch.committed(kpi)} KPI rows; "
                f"worker committed {watch.other_committed(worker_group, *raw_names)} events (it "
                "acks an event only once all its windows have closed)")
        code = run.wait(max(1.0, deadline - time.monotonic()))
    finally:
        watch.stop()
        run.kill()
    if code != 0:
        raise BenchError(f"ioc run exited with {code}; log {run.log_path}:\n{run.tail()}")
    assert run.ended is not None
    busy1 = machine_cpu()
    if broker_pid is not None:
        run.cpu["broker"] = process_cpu(broker_pid) - broker0
        run.cpu["broker net of idle"] = run.cpu["broker"] - idle_rate * (run.ended - run.started)
    t0 = run.started
    raw_times = [watch.reached(name, raw_end[t]) for t, name in raw.items()]
    out_ends = {name: end_offsets(admin, name, partitions) for name in (kpi, alert)}
    out_times = [watch.reached(name, ends) for name, ends in out_ends.items()]
    if None in raw_times or None in out_times or not watch.all_ready():
        raise BenchError(f"the watch missed the run: raw={raw_times} kpi/alerts={out_times} "
                         f"ready={watch.ready}")
    raw_done = max(t for t in raw_times if t is not None)
    kpi_done = max(t for t in out_times if t is not None)
    sink_ready, worker_ready = watch.ready[sink_group], watch.ready[worker_group]
    ready = max(sink_ready, worker_ready)
    done = max(raw_done, kpi_done)
    # Did the last KPI rows only come from the flush after the idle wait? Then that wait is in
    # `done` and is taken out again (the platform was idle, not working).
    kpi_times = sorted(t for (t_name, _p), hist in watch.commits.items() if t_name == kpi
                       for t, _off in hist)
    idle_flush = len(kpi_times) >= 2 and kpi_times[-1] - kpi_times[-2] >= IDLE_S - 0.1
    seconds = done - ready - (IDLE_S if idle_flush and kpi_done >= raw_done else 0.0)
    at_ready = 0
    for (t_name, _p), hist in watch.commits.items():
        if t_name in raw_names:
            before = [off for t, off in hist if t <= ready]
            at_ready += before[-1] if before else 0
    result = E2EResult(
        wall_s=run.ended - t0, startup_s=ready - t0, sink_ready_s=sink_ready - t0,
        worker_ready_s=worker_ready - t0, raw_done_s=raw_done - t0, kpi_done_s=kpi_done - t0,
        kpi_last_from_idle_flush=idle_flush, seconds=seconds,
        first_group_seconds=done - min(sink_ready, worker_ready)
        - (IDLE_S if idle_flush and kpi_done >= raw_done else 0.0),
        raw_rows_at_ready=at_ready, cpu=dict(run.cpu),
        output_records=sum(sum(ends.values()) for ends in out_ends.values()),
        machine_busy=(busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1))
    result.checks = verify_e2e(env, data)
    return result


def verify_e2e(env: dict[str, str], data: DataSet) -> dict[str, Any]:
    """Every event once in its raw table, and traffic KPIs that add up to the raw readings (so
    the agent saw every flow event); KPI rows per subsystem and alerts per rule are reported."""
    from ioc.connectors.sink import raw_table

    counts = data.counts
    union = " UNION ALL ".join(
        f"SELECT '{t}' AS topic, count() AS rows, uniqExact(event_id) AS ids "
        f"FROM ioc.{raw_table(t)} FINAL" for t in counts)
    stored = {r["topic"]: (int(r["rows"]), int(r["ids"])) for r in ioc_sql(env, union)}
    vehicles = ioc_sql(env, "SELECT sum(vehicle_count) AS v FROM ioc.traffic_flow FINAL")[0]["v"]
    kpis = ioc_sql(env, "SELECT kpi, `window`, count() AS rows, sum(value) AS total, "
                        "sum(sample_count) AS samples FROM ioc.kpi FINAL "
                        "GROUP BY kpi, `window` ORDER BY kpi, `window`")
    alerts = ioc_sql(env, "SELECT rule, count() AS alerts FROM ioc.alerts FINAL GROUP BY rule "
                          "ORDER BY rule")
    extra = ioc_sql(env, "SELECT (SELECT count() FROM ioc.dead_letters) AS dead_letters, "
                         "(SELECT count() FROM ioc.kpi) AS kpi_rows_unmerged, "
                         "(SELECT count() FROM ioc.alerts FINAL) AS alerts")[0]
    parts = ioc_sql(env, "SELECT table, sum(rows) AS rows, sum(data_compressed_bytes) AS bytes "
                         "FROM system.parts WHERE active AND database = 'ioc' GROUP BY table")
    by = {(k["kpi"], k["window"]): k for k in kpis}
    kpi_rows_by_domain: dict[str, int] = {}
    for k in kpis:
        domain = str(k["kpi"]).split(".", 1)[0]
        kpi_rows_by_domain[domain] = kpi_rows_by_domain.get(domain, 0) + int(k["rows"])
    n_flow = data.flow_events
    checks = {
        "raw_rows": sum(r for r, _ in stored.values()),
        "raw_ids": sum(i for _, i in stored.values()), "stored": stored,
        "raw_vehicles": int(vehicles or 0), "kpi_series": kpis,
        "kpi_rows_by_domain": kpi_rows_by_domain,
        "alerts_by_rule": {a["rule"]: int(a["alerts"]) for a in alerts},
        "dead_letters": int(extra["dead_letters"]), "alerts": int(extra["alerts"]),
        "kpi_rows_inserted": int(extra["kpi_rows_unmerged"]),
        "storage": {str(r["table"]): (int(r["rows"]), int(r["bytes"])) for r in parts},
    }
    problems = []
    for topic, expected in counts.items():
        rows, ids = stored.get(topic, (0, 0))
        if rows != expected or ids != expected:
            problems.append(f"{topic}: {rows} rows / {ids} ids != {expected}")
    if checks["raw_vehicles"] != data.vehicles:
        problems.append(f"raw vehicles {checks['raw_vehicles']} != produced {data.vehicles}")
    for key in (("traffic.vehicle_count", "1m"), ("traffic.vehicle_count", "1h")):
        row = by.get(key)
        if row is None:
            problems.append(f"no {key} KPI rows")
            continue
        if round(float(row["total"])) != data.vehicles or int(row["samples"]) != n_flow:
            problems.append(f"{key}: sum {row['total']} / samples {row['samples']} != "
                            f"{data.vehicles} / {n_flow}")
    speed = by.get(("traffic.avg_speed_kmh", "5m"))
    if speed is None or int(speed["samples"]) != n_flow:
        problems.append(f"5m avg speed samples {speed and speed['samples']} != {n_flow}")
    if checks["dead_letters"]:
        problems.append(f"{checks['dead_letters']} dead letters")
    checks["problems"] = problems
    return checks


# -- the latency phase -----------------------------------------------------------------------------

@dataclass
class LatencyResult:
    sent: int
    rate: float
    rows: int
    p50_ingested_ms: float
    p99_ingested_ms: float
    p50_stored_ms: float
    p99_stored_ms: float
    max_stored_ms: float
    unmatched: int
    by_domain: dict[str, tuple[int, float, float]] = field(default_factory=dict)


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` (nearest rank below), NaN when empty."""
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def start_consuming(bootstrap: str, prefix: str, ch_dir: Path, run_dir: Path
                    ) -> tuple[dict[str, str], IocRun, GroupWatch]:
    """Fresh topics and ClickHouse, ``ioc run`` (no idle exit) and a fine-grained watch; returns
    once both consumer groups have their partitions."""
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    ensure_topics(settings)
    env = ioc_env(bootstrap, prefix, ch_dir, run_dir)
    ioc_setup(env)
    sink_group = f"{prefix}ioc-sink"
    watch = GroupWatch(bootstrap, sink_group, [sink_group, f"{prefix}ioc-streams"],
                       LATENCY_WATCH_INTERVAL_S)
    run = IocRun(env)
    watch.start()
    try:
        deadline = time.monotonic() + 180
        while not watch.all_ready():
            if run.proc.poll() is not None:
                raise BenchError(f"ioc run exited early:\n{run.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"ioc run did not start consuming in 180 s:\n{run.tail()}")
            time.sleep(0.1)
    except BaseException:
        watch.stop()
        run.kill()
        raise
    time.sleep(1.0)
    return env, run, watch


def stop_consuming(run: IocRun, watch: GroupWatch) -> None:
    watch.stop()
    code = run.interrupt()
    run.kill()
    if code not in (0, 130, -signal.SIGINT):
        say(f"  latency: ioc run exited with {code} after SIGINT (log {run.log_path})")


def wait_stored(watch: GroupWatch, names: Sequence[str], total: int) -> None:
    deadline = time.monotonic() + 120
    while watch.committed(*names) < total:
        if time.monotonic() > deadline:
            raise BenchError(f"sink committed only {watch.committed(*names)} of {total}")
        time.sleep(0.1)
    time.sleep(0.5)


def run_latency(bootstrap: str, prefix: str, ch_dir: Path, run_dir: Path, data: DataSet,
                rate: float, duration_s: float) -> LatencyResult:
    """Traffic: flow readings re-stamped with ``occurred_at`` = send time, so the latency is
    ``occurred_at`` → row committed in ClickHouse."""
    if data.mix != "traffic":
        return run_latency_mix(bootstrap, prefix, ch_dir, run_dir, data, rate, duration_s)
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    flow = settings.topic(FLOW_TOPIC)
    env, run, watch = start_consuming(bootstrap, prefix, ch_dir, run_dir)
    try:
        producer = EventProducer(make_producer(bootstrap), topic_name=settings.topic)
        total = int(rate * duration_s)
        started = time.monotonic()
        run_id = uuid.uuid4().hex[:8]
        for i in range(total):
            due = started + i / rate
            wait = due - time.monotonic()
            if wait > 0.001:
                time.sleep(wait)
            value = dict(data.records[i % len(data.records)])
            value["event_id"] = f"bench-lat-{run_id}-{i}"
            value["occurred_at"] = datetime.now(UTC)
            producer.send(FLOW_TOPIC, value)
        producer.flush()
        achieved = total / (time.monotonic() - started)
        say(f"  latency: sent {total} events at {achieved:,.0f}/s; waiting for the sink")
        wait_stored(watch, [flow], total)
    finally:
        stop_consuming(run, watch)
    lag = "dateDiff('millisecond', occurred_at, _ingested_at)"
    q = ioc_sql(env, f"SELECT count() AS rows, quantileExact(0.5)({lag}) AS p50, "
                     f"quantileExact(0.99)({lag}) AS p99 FROM ioc.traffic_flow FINAL")[0]
    rows = ioc_sql(env, "SELECT _partition AS p, _offset AS o, "
                        "toUnixTimestamp64Milli(occurred_at) AS t FROM ioc.traffic_flow")
    stored: list[float] = []
    unmatched = 0
    for r in rows:
        at = watch.stored_at(flow, int(r["p"]), int(r["o"]))
        if at is None:
            unmatched += 1
            continue
        stored.append(at * 1000 - int(r["t"]))
    stored.sort()
    return LatencyResult(total, achieved, int(q["rows"]), float(q["p50"]), float(q["p99"]),
                         pct(stored, 0.5), pct(stored, 0.99), stored[-1] if stored else 0.0,
                         unmatched)


def run_latency_mix(bootstrap: str, prefix: str, ch_dir: Path, run_dir: Path, data: DataSet,
                    rate: float, duration_s: float) -> LatencyResult:
    """The mix: ``rate × duration_s`` of the day's events, spread evenly over it
    (:func:`~ioc.connectors.sim_mix.stride_sample`), sent as they are (their event times stay
    in the simulated day), so the latency is *send time* → row committed in ClickHouse. The
    send time is taken just before ``produce``; the delivery report gives each event's
    partition and offset."""
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    names = {t: settings.topic(t) for t in data.counts}
    total = int(rate * duration_s)
    sample = stride_sample(range(len(data.values)), total)
    total = len(sample)
    sent_at = [0.0] * total
    where: list[tuple[str, int, int] | None] = [None] * total
    failed: list[str] = []

    def delivered(j: int) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                failed.append(str(err))
            else:
                where[j] = (msg.topic(), msg.partition(), msg.offset())
        return on_delivery

    env, run, watch = start_consuming(bootstrap, prefix, ch_dir, run_dir)
    try:
        producer = Producer(producer_config(bootstrap))
        started = time.monotonic()
        for j, i in enumerate(sample):
            wait = started + j / rate - time.monotonic()
            if wait > 0.001:
                time.sleep(wait)
            sent_at[j] = time.time()
            producer.produce(names[data.topics[i]], key=data.keys[i], value=data.values[i],
                             on_delivery=delivered(j))
            producer.poll(0)
        if producer.flush(60) or failed:
            raise BenchError(f"latency: events not confirmed by the broker ({failed[:1]})")
        achieved = total / (time.monotonic() - started)
        say(f"  latency: sent {total} events of the mix at {achieved:,.0f}/s; waiting for the "
            "sink")
        wait_stored(watch, list(names.values()), total)
    finally:
        stop_consuming(run, watch)
    rows = ioc_sql(env, "SELECT " + " + ".join(
        f"(SELECT count() FROM ioc.{raw_table(t)} FINAL)" for t in names) + " AS rows")[0]
    stored: list[float] = []
    by_domain: dict[str, list[float]] = {}
    unmatched = 0
    for j, i in enumerate(sample):
        pos = where[j]
        at = watch.stored_at(*pos) if pos is not None else None
        if at is None:
            unmatched += 1
            continue
        ms = (at - sent_at[j]) * 1000
        stored.append(ms)
        by_domain.setdefault(domain_of(data.topics[i]), []).append(ms)
    stored.sort()
    summary = {}
    for domain, values in sorted(by_domain.items(), key=lambda kv: -len(kv[1])):
        values.sort()
        summary[domain] = (len(values), pct(values, 0.5), pct(values, 0.99))
    nan = float("nan")
    return LatencyResult(total, achieved, int(rows["rows"]), nan, nan, pct(stored, 0.5),
                         pct(stored, 0.99), stored[-1] if stored else 0.0, unmatched,
                         by_domain=summary)


# -- optional profiles -----------------------------------------------------------------------------

def profile_worker_child(bootstrap: str, prefix: str, out_path: str) -> None:
    from ioc.infra.runtime import run_worker

    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, metrics_port=0)
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    try:
        run_worker(settings, exit_when_idle=IDLE_S)
    finally:
        prof.disable()
        prof.dump_stats(out_path)
        Path(out_path + ".seconds").write_text(f"{time.perf_counter() - started:.3f}")


def profile_sink_child(bootstrap: str, prefix: str, ch_dir: str, n_raw: int,
                       out_path: str) -> None:
    """The sink's own runner (unchanged code) under cProfile, over the e2e run's topics (raw
    events and KPIs) with a fresh consumer group, into a fresh chDB directory."""
    from prometheus_client import CollectorRegistry

    from ioc.connectors.clickhouse import connect
    from ioc.connectors.sink import (
        ClickHouseSink,
        SinkRunner,
        default_mappings,
        sink_consumer_config,
    )
    from ioc.infra.metrics import Metrics
    from ioc.infra.runtime import setup_clickhouse

    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix,
                        clickhouse_url=f"chdb://{ch_dir}")
    setup_clickhouse(settings)
    client = connect(settings.clickhouse)
    serde = Serde()
    metrics = Metrics(CollectorRegistry())
    consumer = Consumer(sink_consumer_config(bootstrap, f"bench-prof-sink-{uuid.uuid4()}"))
    runner = SinkRunner(consumer, ClickHouseSink(client, settings.database, metrics), serde,
                        default_mappings(serde), metrics, topic_name=settings.topic)
    runner.subscribe()
    while not consumer.assignment():
        runner.poll_round()
    prof = cProfile.Profile()
    started = time.perf_counter()
    quiet = 0
    prof.enable()
    try:
        while quiet < 3:
            quiet = quiet + 1 if runner.poll_round() == 0 else 0
    finally:
        prof.disable()
        seconds = time.perf_counter() - started - 3 * runner.max_wait_s
        prof.dump_stats(out_path)
        Path(out_path + ".seconds").write_text(f"{seconds:.3f} {runner.rows_written} {n_raw}")
        consumer.close()
        client.close()


def logic_only(data: DataSet) -> None:
    """The worker's own code without Faust or Kafka: decode, ``Processor.handle`` (every domain,
    as in the worker), a tick + flush every 1000 events, KPI and alert encoding. What a worker
    could do if the framework cost nothing."""
    from ioc.streams.processor import Processor
    from ioc.streams.registry import build_domains

    serde = Serde()
    proc = Processor(build_domains(reference.load_reference()),
                     timedelta(seconds=Settings().allowed_lateness_s))
    t_decode = t_handle = t_tick = t_encode = 0.0
    kpis = 0
    offsets: dict[tuple[str, int], int] = {}
    started = time.perf_counter()
    for i, (topic, key, value) in enumerate(zip(data.topics, data.keys, data.values,
                                                strict=True)):
        a = time.perf_counter()
        record = serde.decode(topic, value)
        b = time.perf_counter()
        tp = (topic, zlib.crc32(key) % 3)  # a key stays on one partition, as in Kafka
        offsets[tp] = offset = offsets.get(tp, -1) + 1
        proc.handle(topic, record, tp, offset)
        c = time.perf_counter()
        t_decode += b - a
        t_handle += c - b
        if i % 1000 == 999 or i == len(data.values) - 1:
            step = proc.tick()
            step.kpis.extend(proc.flush())
            d = time.perf_counter()
            for rec in step.kpis:
                serde.encode(KPI_TOPIC, rec)
            for rec in step.alerts:
                serde.encode(ALERT_TOPIC, rec)
            kpis += len(step.kpis)
            t_tick += d - c
            t_encode += time.perf_counter() - d
    secs = time.perf_counter() - started
    say(f"\n[profile] KPI logic alone, one process, no Kafka/Faust: {len(data.values)} events "
        f"in {secs:.2f} s = {len(data.values) / secs:,.0f} events/s (decode {t_decode:.2f} s, "
        f"handle {t_handle:.2f} s, tick+flush {t_tick:.2f} s, encode {kpis} KPIs "
        f"{t_encode:.2f} s)")


def package_breakdown(path: Path, limit: int = 14) -> None:
    """Own time (tottime) per package: framework vs platform code."""
    stats = pstats.Stats(str(path))
    groups: dict[str, float] = {}
    total = 0.0
    rows = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, func), row in rows.items():
        tottime = row[2]
        total += tottime
        if "site-packages/" in filename:
            key = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif "/asyncio/" in filename:
            key = "asyncio"
        elif filename == "~":
            key = "builtin " + func[:48]
        elif "/lib/python3" in filename:
            key = "stdlib " + filename.rsplit("/", 1)[-1]
        else:
            key = "ioc " + "/".join(Path(filename).parts[-2:])
        groups[key] = groups.get(key, 0.0) + tottime
    say(f"-- own time by package (total {total:.1f} s under cProfile)")
    for key, secs in sorted(groups.items(), key=lambda kv: -kv[1])[:limit]:
        say(f"  {secs:7.2f} s {100 * secs / total:5.1f} %  {key}")


def show_profile(path: Path, title: str, limit: int = 22) -> None:
    say(f"\n== profile: {title} ({path}) ==")
    package_breakdown(path)
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        stats = pstats.Stats(str(path), stream=buf)
        stats.strip_dirs().sort_stats(key).print_stats(limit)
        lines = buf.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        say(f"-- top {limit} by {key}")
        for line in lines[start:start + limit + 1]:
            say(line[:160])


def run_profiles(bootstrap: str, data_dir: Path, e2e_prefix: str, prof_prefix: str,
                 data: DataSet) -> None:
    logic_only(data)
    ctx = mp.get_context("spawn")
    worker_prof = data_dir / "worker.prof"
    say("\n[profile] KPI worker alone (cProfile, in-process worker, no sink) ...")
    proc = ctx.Process(target=profile_worker_child,
                       args=(bootstrap, prof_prefix, str(worker_prof)))
    proc.start()
    proc.join(1800)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
    secs = float(Path(str(worker_prof) + ".seconds").read_text())
    say(f"  worker alone (start-up + {IDLE_S:g} s idle included): {secs:.1f} s for "
        f"{len(data.values)} events (cProfile slows it down)")
    show_profile(worker_prof, "KPI worker")
    sink_prof = data_dir / "sink.prof"
    say("\n[profile] ClickHouse sink alone (cProfile, SinkRunner over the e2e topics) ...")
    proc = ctx.Process(target=profile_sink_child,
                       args=(bootstrap, e2e_prefix, str(data_dir / "ch-prof"),
                             len(data.values), str(sink_prof)))
    proc.start()
    proc.join(1800)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
    secs_s, rows_s, _ = Path(str(sink_prof) + ".seconds").read_text().split()
    say(f"  sink alone: {rows_s} rows (raw + KPI) in {float(secs_s):.1f} s under cProfile")
    show_profile(sink_prof, "ClickHouse sink")


# -- the broker ------------------------------------------------------------------------------------

from ioc.infra.local_kafka import port_free as _port_free  # noqa: E402 — one definition


def free_port_pair() -> int:
    """``p`` with ``p`` and ``p + 1`` free, below the usual ephemeral range."""
    for _ in range(200):
        port = random.randint(10000, 30000)
        if _port_free(port) and _port_free(port + 1):
            return port
    raise BenchError("no free pair of TCP ports on 127.0.0.1")


@contextmanager
def broker(data_dir: Path, keep: bool) -> Iterator[tuple[str, int | None]]:
    """(bootstrap, pid of our broker) — the local broker unless IOC_KAFKA_BOOTSTRAP is set."""
    external = os.environ.get("IOC_KAFKA_BOOTSTRAP")
    if external:
        yield external, None
        return
    from ioc.infra.local_kafka import LocalKafka

    kafka = LocalKafka(Settings(data_dir=data_dir / "broker", kafka_port=free_port_pair()),
                       log=lambda line: say(f"  kafka: {line}"))
    status = kafka.up()
    say(f"  kafka: broker pid {status.pid} on {kafka.bootstrap}")
    try:
        yield kafka.bootstrap, status.pid
    finally:
        if keep:
            say(f"  kafka: left running (pid {status.pid}); stop it with "
                f"IOC_DATA_DIR={data_dir / 'broker'} IOC_KAFKA_PORT={kafka.port} ioc kafka down")
        else:
            kafka.down()


# -- main ------------------------------------------------------------------------------------------

def add_workload_args(p: argparse.ArgumentParser) -> None:
    """The workload options every end-to-end benchmark shares (this one and ``scaling.py``)."""
    p.add_argument("--mix", choices=("all", "traffic"), default="all",
                   help="all: every subsystem's events over a simulated working day at the "
                        "simulators' rates (default); traffic: flow readings only")
    p.add_argument("--hours", type=float, default=24.0,
                   help="with --mix all: hours of the latest complete working day, ending at "
                        "its local midnight (default 24, ~205k events)")
    p.add_argument("--events", type=int,
                   help="with --mix traffic: flow readings (default 100000)")
    p.add_argument("--data-dir", type=Path,
                   help="where broker, chDB and logs go (default: a temporary dir)")
    p.add_argument("--keep", action="store_true",
                   help="keep the data dir and leave the broker running")
    p.add_argument("--interval-s", type=float, default=10.0,
                   help="seconds between two readings of one segment (default 10)")


def check_workload_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.mix == "all" and args.events is not None:
        p.error("--events is for --mix traffic; the mix's size is set by --hours")
    if args.mix == "traffic" and args.events is None:
        args.events = 100_000
    if args.events is not None and args.events < 1:
        p.error("--events must be >= 1")
    if not 0 < args.hours <= 168:
        p.error("--hours must be in (0, 168]")
    if args.interval_s <= 0:
        p.error("--interval-s must be > 0")

def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_args(p)
    p.add_argument("--latency-rate", default="2000",
                   help="events/s in the latency phase (default 2000); a comma list such as "
                        "2000,500 runs one phase per rate, the summary line uses the first")
    p.add_argument("--latency-seconds", type=float, default=15.0,
                   help="length of the latency phase (default 15)")
    p.add_argument("--skip-latency", action="store_true")
    p.add_argument("--profile", action="store_true",
                   help="also profile the worker and the sink (cProfile) and print hot spots")
    p.add_argument("--seed", type=int, default=49)
    args = p.parse_args(argv)
    check_workload_args(p, args)
    try:
        rates = [float(r) for r in str(args.latency_rate).split(",") if r.strip()]
    except ValueError:
        p.error("--latency-rate takes numbers, e.g. 2000 or 2000,500")
    if not rates or min(rates) <= 0:
        p.error("--latency-rate must be > 0")

    temp = args.data_dir is None
    data_dir = (Path(tempfile.mkdtemp(prefix="ioc-bench-")) if temp else args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # A shared cluster may already hold topics from an earlier run: give every run its own names.
    tag = "" if not os.environ.get("IOC_KAFKA_BOOTSTRAP") else f"-{uuid.uuid4().hex[:6]}"
    prefixes = {name: f"bench-{name}{tag}." for name in ("e2e", "ceil", "lat", "prof")}
    what = (f"mix of all subsystems, {args.hours:g} h of a working day" if args.mix == "all"
            else f"{args.events} traffic flow events")
    say(f"ioc bench: {what}, data in {data_dir}, {os.cpu_count()} CPUs, load average "
        f"{load_average()} (other work on the machine skews every figure)")
    try:
        with broker(data_dir, args.keep) as (bootstrap, broker_pid):
            t = time.perf_counter()
            if args.mix == "all":
                say(f"[data] simulating every subsystem for {args.hours:g} h of the latest "
                    "working day (traffic: 22 segments every "
                    f"{args.interval_s:g} s) and encoding once ...")
                data = generate_mix(args.hours, args.interval_s, args.seed)
            else:
                say(f"[data] simulating {args.events} flow readings (22 segments, every "
                    f"{args.interval_s:g} s) and encoding them once ...")
                data = generate(args.events, args.interval_s, args.seed)
            n = len(data.values)
            say(f"  {n} events, {data.vehicles} vehicles, event time {data.first:%Y-%m-%d %H:%M}"
                f" → {data.last:%Y-%m-%d %H:%M} UTC, {sum(map(len, data.values)) / n:.0f} B/event"
                f" ({time.perf_counter() - t:.1f} s)")
            for topic, count in data.counts.items():
                say(f"    {topic:36s} {count:8d}  {100 * count / n:6.2f} %")
            names = ["e2e", "ceil"] + (["prof"] if args.profile else [])
            partitions = Settings().topic_partitions
            produce_rate = 0.0
            for name in names:
                settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefixes[name])
                ensure_topics(settings)
                cpu0 = process_cpu(broker_pid)
                secs = produce_backlog(bootstrap, settings.topic, data)
                broker_cpu = process_cpu(broker_pid) - cpu0
                produce_rate = max(produce_rate, n / secs)
                say(f"[produce] {prefixes[name]}*: {n} events in {secs:.1f} s ({n / secs:,.0f}/s"
                    + (f"; broker CPU {broker_cpu:.1f} s = {1e6 * broker_cpu / n:.0f} µs/event"
                       if broker_pid else "") + ")")

            say("[ceiling] plain loop: consume → decode → insert batches of "
                f"{CEILING_BATCH} per table (child process, own chDB) ...")
            topics = list(data.counts)
            cpu0 = process_cpu(broker_pid)
            ceil = run_ceiling(bootstrap, prefixes["ceil"], topics, partitions,
                               data_dir / "ch-ceiling", n)
            broker_cpu = process_cpu(broker_pid) - cpu0
            if ceil["stored"] != data.counts or ceil["vehicles"] != data.vehicles:
                raise BenchError(f"ceiling stored {ceil['stored']} / {ceil['vehicles']} "
                                 f"vehicles, expected {data.counts} / {data.vehicles}")
            ceiling_rate = n / ceil["seconds"]
            say(f"  ceiling: {n} rows in {ceil['seconds']:.2f} s = {ceiling_rate:,.0f} events/s "
                f"(consume {ceil['consume_s']:.2f} s = {n / ceil['consume_s']:,.0f}/s "
                f"consume-only, decode+rows {ceil['decode_s']:.2f} s, insert "
                f"{ceil['insert_s']:.2f} s in {ceil['inserts']} inserts = "
                f"{n / ceil['insert_s']:,.0f} rows/s into chDB"
                + (f"; broker CPU {broker_cpu:.1f} s" if broker_pid else "")
                + "); count() per table = produced ✓")

            say(f"[e2e] ioc run --exit-when-idle {IDLE_S:g} (KPI worker + sink) on the same "
                "bytes ...")
            e2e = run_e2e(bootstrap, prefixes["e2e"], data_dir / "ch-e2e",
                          data_dir / "run-e2e", data, partitions, broker_pid)
            e2e_rate = n / e2e.seconds
            say(f"  wall time start→exit (raw): {e2e.wall_s:.2f} s")
            say(f"  start-up: sink group assigned at {e2e.sink_ready_s:.2f} s, worker group at "
                f"{e2e.worker_ready_s:.2f} s ({e2e.raw_rows_at_ready} raw rows already stored "
                "by then)")
            say(f"  all {n} raw rows committed in ClickHouse at {e2e.raw_done_s:.2f} s; all "
                f"{e2e.output_records} KPI and alert records at {e2e.kpi_done_s:.2f} s"
                + (f" (last ones from the flush after the {IDLE_S:g} s idle wait)"
                   if e2e.kpi_last_from_idle_flush else ""))
            last_row = max(e2e.raw_done_s, e2e.kpi_done_s)
            say(f"  shut-down after the last row: {e2e.wall_s - last_row:.2f} s")
            say(f"  adjusted e2e time: {e2e.seconds:.2f} s = {e2e_rate:,.0f} events/s "
                f"(counted from the first group instead: {n / e2e.first_group_seconds:,.0f}/s; "
                f"sink's raw path alone: {n / (e2e.raw_done_s - e2e.sink_ready_s):,.0f}/s)")
            if e2e.cpu:
                say("  CPU seconds over the whole run (of "
                    f"{e2e.wall_s * (os.cpu_count() or 1):.0f} core-seconds available): "
                    + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(e2e.cpu.items()))
                    + f"; all CPUs {100 * e2e.machine_busy:.0f} % busy during the run")
            c = e2e.checks
            cost = cpu_costs(e2e.cpu, n, n + e2e.output_records)
            if cost:
                say("  CPU cost (depends much less than the rates on the machine's load): "
                    + "; ".join(
                    f"{name} {ms:.3f} ms per {unit} = {1000 / ms:,.0f} {unit}s/s per core"
                    for name, (ms, unit) in cost.items()))
            kpi_line = ", ".join(f"{k['kpi']}[{k['window']}] {k['rows']}" for k in
                                 c["kpi_series"] if str(k["kpi"]).startswith("traffic."))
            say(f"  ClickHouse: raw tables FINAL {c['raw_rows']} rows ({c['raw_ids']} ids), "
                f"{c['raw_vehicles']} vehicles; traffic kpi FINAL: {kpi_line}; "
                f"{c['kpi_rows_inserted']} rows in ioc.kpi before FINAL; {c['alerts']} alert "
                f"rows; {c['dead_letters']} dead letters")
            raw_tables = {raw_table(t) for t in data.counts}
            raw_store = [v for t, v in c["storage"].items() if t in raw_tables]
            kpi_store = c["storage"].get("kpi", (0, 0))
            if raw_store and kpi_store[0]:
                raw_rows_, raw_bytes = map(sum, zip(*raw_store, strict=True))
                say(f"  ClickHouse storage (compressed, active parts): raw tables "
                    f"{raw_bytes / max(raw_rows_, 1):.1f} B/row ({raw_bytes / 1e6:.1f} MB), kpi "
                    f"{kpi_store[1] / kpi_store[0]:.1f} B/row ({kpi_store[0]} rows before merges "
                    "collapse them)")
            say("  KPI rows (FINAL) by subsystem: " + ", ".join(
                f"{d} {r}" for d, r in sorted(c["kpi_rows_by_domain"].items())))
            if c["alerts_by_rule"]:
                say("  alerts by rule: " + ", ".join(
                    f"{r} {k}" for r, k in c["alerts_by_rule"].items()))
            if c["problems"]:
                raise BenchError("e2e verification failed: " + "; ".join(c["problems"]))
            say("  ✓ every event stored once in its raw table; 1m and 1h vehicle-count KPIs sum "
                "to the raw vehicle count with sample_count = flow readings (the KPI agent saw "
                "every flow event); no dead letters")

            p99 = float("nan")
            for i, rate in enumerate([] if args.skip_latency else rates):
                name = "lat" if i == 0 else f"lat{i}"
                say(f"[latency] ioc run, producing {rate:g} events/s for "
                    f"{args.latency_seconds:g} s "
                    + ("with occurred_at = send time ..." if data.mix == "traffic" else
                       "(the day's mix, evenly sampled; latency from the send time) ..."))
                lat = run_latency(bootstrap, prefixes["lat"].replace("lat", name, 1),
                                  data_dir / f"ch-{name}", data_dir / f"run-{name}", data, rate,
                                  args.latency_seconds)
                if i == 0:
                    p99 = lat.p99_stored_ms
                if rate > e2e_rate:
                    say(f"  note: {rate:g} events/s is above the measured e2e capacity "
                        f"({e2e_rate:,.0f}/s): the KPI worker falls behind during this phase "
                        "and takes a core; raw rows do not wait for it, but share the CPU")
                if data.mix == "traffic":
                    say(f"  {lat.rows} rows; occurred_at → _ingested_at (sink builds the "
                        f"batch): p50 {lat.p50_ingested_ms:.0f} ms, p99 "
                        f"{lat.p99_ingested_ms:.0f} ms")
                start = "occurred_at" if data.mix == "traffic" else "send"
                say(f"  {start} → row committed in ClickHouse (broker-observed, "
                    f"≤{LATENCY_WATCH_INTERVAL_S * 1000:.0f} ms late): p50 "
                    f"{lat.p50_stored_ms:.0f} ms, p99 {lat.p99_stored_ms:.0f} ms, max "
                    f"{lat.max_stored_ms:.0f} ms" + (f" ({lat.unmatched} rows unmatched)"
                                                     if lat.unmatched else ""))
                if lat.by_domain:
                    say("  by subsystem (events, p50, p99 ms): " + "; ".join(
                        f"{d} {k}, {p50:.0f}, {p99_:.0f}"
                        for d, (k, p50, p99_) in lat.by_domain.items()))

            if args.profile:
                run_profiles(bootstrap, data_dir, prefixes["e2e"], prefixes["prof"], data)

            ratio = e2e_rate / ceiling_rate
            say(f"\nload average at the end: {load_average()}")
            domains = sorted(data.by_domain().items(), key=lambda kv: -kv[1])
            say(f"# mix={data.mix}: {n} events ("
                + ", ".join(f"{d} {k}" for d, k in domains) + ")")
            say(f"# e2e = {n} events / time from both consumer groups assigned to the last raw, "
                f"KPI and alert row committed in ClickHouse (start-up {e2e.startup_s:.1f} s, the "
                f"{IDLE_S:g} s idle wait and shut-down excluded; raw wall time "
                f"{e2e.wall_s:.1f} s = {n / e2e.wall_s:,.0f}/s); ceiling = plain consume+decode+"
                f"insert loop (produce-only {produce_rate:,.0f}/s, consume-only "
                f"{n / ceil['consume_s']:,.0f}/s); p99 = "
                + ("occurred_at" if data.mix == "traffic" else "send")
                + f" → row committed in ClickHouse at {rates[0]:g} events/s")
            say(f"e2e_events_per_s={e2e_rate:.0f} ceiling_events_per_s={ceiling_rate:.0f} "
                f"ratio={ratio:.2f} p99_latency_ms={p99:.0f}")
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if temp and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif args.keep:
            say(f"data kept in {data_dir}")
    return 0


def cpu_costs(cpu: dict[str, float], events: int, rows: int) -> dict[str, tuple[float, str]]:
    """CPU milliseconds per event of the worker and the broker (net of its idle background
    work when known), and per stored row (raw + KPI + alert rows) of the sink, from a run's CPU
    seconds. Start-up and shut-down are included, so short runs overstate the cost."""
    out: dict[str, tuple[float, str]] = {}
    if cpu.get("worker"):
        out["worker"] = (1000 * cpu["worker"] / events, "event")
    if cpu.get("sink"):
        out["sink"] = (1000 * cpu["sink"] / rows, "row")
    broker = cpu.get("broker net of idle", cpu.get("broker"))
    if broker:
        out["broker"] = (1000 * broker / events, "event")
    return out


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min)"


if __name__ == "__main__":
    raise SystemExit(main())
