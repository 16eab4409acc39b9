"""Running the real platform commands against the session's Kafka broker.

Each test gets its own topic prefix, data dir and embedded ClickHouse directory, and talks to
the platform through its real commands (``ioc setup``, ``ioc run``, ``ioc sql``) in
subprocesses: the embedded ClickHouse allows one engine per process, and this keeps the test
process free of it.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from ioc.connectors.producer import EventProducer, make_producer, partition_key, producer_config
from ioc.schemas.serde import Serde

IOC = str(Path(sys.executable).parent / "ioc")
QUERY_SCRIPT = r"""
import json, sys
from datetime import date, datetime
from ioc.connectors.clickhouse import connect
url, queries = json.load(sys.stdin)
client = connect(url)
out = {}
def conv(v):
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return v
for name, sql in queries.items():
    r = client.query(sql)
    out[name] = [{c: conv(v) for c, v in zip(r.column_names, row)} for row in r.result_rows]
json.dump(out, sys.stdout, ensure_ascii=False)
"""


def scrape(port: int) -> dict[str, float]:
    """A process's Prometheus metrics (text exposition) → {'name{labels}': value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


# -- a steady stream through faults ----------------------------------------------------------

FLOW = "ioc.traffic.flow.v1"
STEADY_T0 = datetime(2026, 11, 5, 0, 0, tzinfo=UTC)
STEADY_SEGMENTS = ["TK-HV-01", "QL1A-TK-01", "HA-HBT-01", "QL1A-DB-01"]


class SteadyProducer(threading.Thread):
    """Sends flow readings (one per event-time second, ``r-<n>``) at a steady rate with
    acks=all and records which the broker acknowledged (its delivery reports), through
    whatever fault the test injects."""

    def __init__(self, bootstrap: str, prefix: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.producer = Producer(producer_config(bootstrap))
        self.prefix, self.rate = prefix, rate
        self.serde = Serde()
        self.acked: set[str] = set()
        self.failed: list[str] = []
        self.sent: dict[str, dict[str, Any]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.done.is_set():
            seg = STEADY_SEGMENTS[i % len(STEADY_SEGMENTS)]
            rec = {"event_id": f"r-{i}", "occurred_at": STEADY_T0 + timedelta(seconds=i),
                   "source": "SGTVT-QNA", "area_code": "502", "segment_id": seg,
                   "vehicle_count": 1 + i % 9, "avg_speed_kmh": 40.0, "occupancy": 0.2}
            self.sent[rec["event_id"]] = rec

            def report(err: Any, _msg: Any, eid: str = rec["event_id"]) -> None:
                (self.failed.append(eid) if err is not None else self.acked.add(eid))

            self.producer.produce(self.prefix + FLOW, key=partition_key(FLOW, rec),
                                  value=self.serde.encode(FLOW, rec), on_delivery=report)
            self.producer.poll(0)
            i += 1
            time.sleep(1 / self.rate)
        self.producer.flush(90)


# -- the figures of a fault test ---------------------------------------------------------------

FIGURE_QUERIES = {
    "fig_ids": "SELECT event_id FROM ioc.traffic_flow FINAL",
    "fig_rows": "SELECT count() AS n FROM ioc.traffic_flow",
    "fig_kpi": "SELECT `window` AS w, entity, toString(window_start) AS ws, value "
               "FROM ioc.kpi FINAL WHERE kpi = 'traffic.vehicle_count'",
    "fig_raw": "SELECT '1m' AS w, segment_id AS entity, "
               "toString(toStartOfMinute(occurred_at)) AS ws, toFloat64(sum(vehicle_count)) "
               "AS value FROM ioc.traffic_flow FINAL GROUP BY entity, ws "
               "UNION ALL SELECT '1h' AS w, segment_id AS entity, "
               "toString(toStartOfHour(occurred_at)) AS ws, toFloat64(sum(vehicle_count)) "
               "AS value FROM ioc.traffic_flow FINAL GROUP BY entity, ws",
}
"""What :meth:`FaultFigures.of` reads: pass them to :meth:`Pipeline.query` with the test's own
queries (one engine start)."""


@dataclass(frozen=True)
class FaultFigures:
    """The figures of one fault test, printed as one ``FAULT-FIGURES`` line (collected into
    docs/reliability.md) and asserted on — the same numbers.

    ``events``: flow events the test sent that must be stored (acknowledged by the broker);
    ``lost``: of those, not in ``ioc.traffic_flow``; ``duplicates``: rows beyond one per
    event as queries see the table (``FINAL``; the table replaces rows by key, so a replayed
    batch is not a duplicate); ``kpi_mismatches``: ``traffic.vehicle_count`` windows (1m and
    1h, per segment) whose value differs from a recomputation from the raw table, that exist
    on one side only, or that have several rows.
    """

    name: str
    events: int
    faults: int
    lost: int
    duplicates: int
    kpi_mismatches: int
    extra: tuple[tuple[str, str], ...] = ()
    wrong_kpis: tuple[str, ...] = ()  # the first mismatches, for the failure message

    @classmethod
    def of(cls, name: str, got: Mapping[str, list[dict[str, Any]]], expected: Iterable[str],
           faults: int, **extra: object) -> FaultFigures:
        want = set(expected)
        ids = [r["event_id"] for r in got["fig_ids"]]
        stored = set(ids)
        kpi: dict[tuple[str, str, str], list[float]] = {}
        for r in got["fig_kpi"]:
            kpi.setdefault((r["w"], r["entity"], r["ws"][:16]), []).append(r["value"])
        raw = {(r["w"], r["entity"], r["ws"][:16]): r["value"] for r in got["fig_raw"]}
        wrong = sorted((key, kpi.get(key), raw.get(key)) for key in kpi.keys() | raw.keys()
                       if kpi.get(key, [None]) != [raw.get(key)])
        foreign = len(stored - want)
        info = {"rows_before_merge": got["fig_rows"][0]["n"], "kpi_windows": len(raw),
                **({"unexpected": foreign} if foreign else {}), **extra}
        return cls(name, len(want), faults, len(want - stored), len(ids) - len(stored),
                   len(wrong), tuple((k, str(v)) for k, v in info.items()),
                   tuple(f"{key}: kpi {k} raw {r}" for key, k, r in wrong[:10]))

    def line(self) -> str:
        parts = [f"name={self.name}", f"events={self.events}", f"faults={self.faults}",
                 f"lost={self.lost}", f"duplicates={self.duplicates}",
                 f"kpi_mismatches={self.kpi_mismatches}",
                 *(f"{k}={v}" for k, v in self.extra)]
        return "FAULT-FIGURES " + " ".join(parts)

    def report(self) -> FaultFigures:
        """Print the line (``pytest -s`` or ``-rP`` shows it) and return self."""
        print(self.line(), flush=True)
        return self

    def assert_nothing_lost_or_doubled(self) -> None:
        assert self.events > 0, self.line()
        assert (self.lost, self.duplicates, self.kpi_mismatches) == (0, 0, 0), \
            "\n".join((self.line(), *self.wrong_kpis))
        assert dict(self.extra).get("unexpected") is None, self.line()


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping the last lines (``read()`` returns them) and writing
    every line to ``log`` (kept with the test's temporary files, for a failure's post-mortem)."""

    def __init__(self, pipe: Any, log: Path, keep: int = 400) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.log = log
        self.lines: deque[str] = deque(maxlen=keep)
        self.start()

    def run(self) -> None:
        with self.log.open("a", encoding="utf-8") as out:
            for line in self.pipe:
                self.lines.append(line)
                out.write(line)
                out.flush()

    def read(self) -> str:
        return "".join(self.lines)

    def close(self) -> None:
        self.pipe.close()


class _DrainedRun(subprocess.Popen[str]):
    """A Popen whose output a :class:`_Drain` reads all the time: ``stdout.read()`` and
    ``communicate()`` give the last lines."""

    def __init__(self, *args: Any, log: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stdout = _Drain(self.stdout, log)  # type: ignore[assignment]

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        self.wait(timeout)
        drain: Any = self.stdout
        drain.join(10)
        return drain.read(), None


class Pipeline:
    """``kafka_env`` (``IOC_KAFKA_*`` security settings) is passed to the platform's commands;
    ``client`` (librdkafka properties) to the test's own Kafka clients."""

    def __init__(self, bootstrap: str, tmp: Path, lateness_s: float = 60.0, *,
                 kafka_env: Mapping[str, str] | None = None,
                 client: Mapping[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.client = dict(client or {})
        self.prefix = f"t{uuid.uuid4().hex[:8]}."
        self.data_dir = tmp / "var"
        self.runs = 0  # ioc run processes started (each logs to ioc-run-<n>.log next to var/)
        self.env = dict(os.environ)
        self.env.update({
            "IOC_KAFKA_BOOTSTRAP": bootstrap,
            "IOC_DATA_DIR": str(self.data_dir),
            "IOC_TOPIC_PREFIX": self.prefix,
            "IOC_METRICS_PORT": "0",
            "IOC_QUERY_PORT": "0",  # tests that query the running platform pick a free port
            "IOC_ALLOWED_LATENESS_S": str(lateness_s),
            **(kafka_env or {}),
        })
        self.clickhouse_url = f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
        self.producer = EventProducer(make_producer(bootstrap, **self.client),
                                      topic_name=lambda t: self.prefix + t)

    def close(self) -> None:
        self.producer.flush(10)
        del self.producer
        gc.collect()  # librdkafka handles go away with the Python object

    def ioc(self, *args: str, timeout: float = 240, check: bool = True,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run an ``ioc`` command; ``env`` overrides some of the pipeline's variables."""
        proc = subprocess.run([IOC, *args], env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"ioc {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}")
        return proc

    def setup(self) -> None:
        self.ioc("setup")

    def send(self, topic: str, records: Iterable[Mapping[str, Any]]) -> None:
        for r in records:
            self.producer.send(topic, r)
        self.producer.flush()

    def send_raw(self, topic: str, value: bytes, key: bytes) -> None:
        p = Producer({"bootstrap.servers": self.bootstrap, **self.client})
        p.produce(self.prefix + topic, key=key, value=value)
        assert p.flush(30) == 0

    def run_until_idle(self, idle_s: float = 2.0) -> subprocess.CompletedProcess[str]:
        return self.ioc("run", "--exit-when-idle", str(idle_s), timeout=300)

    def start_run(self, *args: str) -> subprocess.Popen[str]:
        """``ioc run [args]`` in the background. Its output is drained continuously (a full
        pipe would block the process on its next log line, e.g. while the broker is away and
        the clients log every reconnect); ``run.stdout.read()`` gives the last lines."""
        self.runs += 1
        log = self.data_dir.parent / f"ioc-run-{self.runs}.log"
        return _DrainedRun([IOC, "run", *args], log=log, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, start_new_session=True)

    @staticmethod
    def kill(proc: subprocess.Popen[str]) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def high_watermark(self, topic: str) -> int:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "probe", **self.client})
        try:
            md = c.list_topics(self.prefix + topic, timeout=10).topics[self.prefix + topic]
            return sum(c.get_watermark_offsets(TopicPartition(self.prefix + topic, p),
                                               timeout=10)[1] for p in md.partitions)
        finally:
            c.close()

    def committed(self, group: str, topic: str) -> int:
        """Sum of the offsets ``group`` committed on ``topic`` (0 where nothing committed)."""
        name = self.prefix + topic
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.prefix + group,
                      **self.client})
        try:
            md = c.list_topics(name, timeout=10).topics[name]
            tps = [TopicPartition(name, p) for p in md.partitions]
            for attempt in range(30):  # the coordinator may be (re)loading after a restart
                try:
                    return sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
                except KafkaException:
                    if attempt == 29:
                        raise
                    time.sleep(1)
            raise AssertionError("unreachable")
        finally:
            c.close()

    def wait_for(self, topic: str, at_least: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.high_watermark(topic) < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic} did not reach {at_least} messages")
            time.sleep(0.5)

    def query(self, **queries: str) -> dict[str, list[dict[str, Any]]]:
        proc = subprocess.run([sys.executable, "-c", QUERY_SCRIPT],
                              input=json.dumps([self.clickhouse_url, queries]),
                              capture_output=True, text=True, env=self.env, timeout=120)
        if proc.returncode != 0:
            raise AssertionError(f"query failed: {proc.stderr[-3000:]}")
        return json.loads(proc.stdout)


def fail_with_output(p: Pipeline, run: subprocess.Popen[str], why: str) -> NoReturn:
    """Stop ``ioc run`` and fail with its last lines, less the clients' reconnect noise."""
    p.kill(run)
    out = run.stdout.read() if run.stdout else ""
    lines = [ln for ln in out.splitlines() if "rdkafka" not in ln
             and "aiokafka ERROR" not in ln and "NodeNotReady" not in ln]
    pytest.fail(f"{why}; exit {run.returncode}\n" + "\n".join(lines[-60:]))
