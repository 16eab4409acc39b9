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
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from ioc.connectors.producer import EventProducer, make_producer

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


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping the last lines; ``read()`` returns them."""

    def __init__(self, pipe: Any, keep: int = 400) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines: deque[str] = deque(maxlen=keep)
        self.start()

    def run(self) -> None:
        for line in self.pipe:
            self.lines.append(line)

    def read(self) -> str:
        return "".join(self.lines)

    def close(self) -> None:
        self.pipe.close()


class _DrainedRun(subprocess.Popen[str]):
    """A Popen whose output a :class:`_Drain` reads all the time: ``stdout.read()`` and
    ``communicate()`` give the last lines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stdout = _Drain(self.stdout)  # type: ignore[assignment]

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

    def start_run(self) -> subprocess.Popen[str]:
        """``ioc run`` in the background. Its output is drained continuously (a full pipe
        would block the process on its next log line, e.g. while the broker is away and
        the clients log every reconnect); ``run.stdout.read()`` gives the last lines."""
        return _DrainedRun([IOC, "run"], env=self.env, stdout=subprocess.PIPE,
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
