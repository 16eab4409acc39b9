"""The ClickHouse sink against the real broker and the session's chDB, with faults injected at
its two edges (the commit and the insert)."""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from ioc.connectors.producer import EventProducer, make_producer
from ioc.connectors.sink import (
    ClickHouseSink,
    SinkRunner,
    SinkStopped,
    default_mappings,
    retry_reason,
    sink_consumer_config,
)
from ioc.infra.metrics import Metrics
from ioc.infra.runtime import ensure_topics
from ioc.infra.settings import Settings
from ioc.schemas.serde import Serde

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)


class CrashOnCommit:
    """A consumer that dies between the insert and the offset commit."""

    def __init__(self, consumer: Consumer) -> None:
        self._c = consumer

    def commit(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("simulated crash before commit")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)


class OverloadedTwice:
    """A ClickHouse client whose first two inserts fail the way an overloaded server does."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.failures = 0

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures < 2:
            self.failures += 1
            raise RuntimeError("Code: 252. DB::Exception: Too many parts (300). TOO_MANY_PARTS")
        return self._client.insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Unreachable:
    """A ClickHouse client whose inserts fail as clickhouse-connect's do when the server is
    away (connection refused), ``failures`` times, then reach the real store. ``on_attempt``
    runs before every insert (the test looks at Kafka from there)."""

    def __init__(self, client: Any, failures: int,
                 on_attempt: Callable[[], None] = lambda: None) -> None:
        self._client = client
        self.failures = failures
        self.attempts = 0
        self.on_attempt = on_attempt

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self.on_attempt()
        self.attempts += 1
        if self.attempts <= self.failures:
            raise OperationalError("Error HTTPConnectionPool(host='127.0.0.1', port=8123): Max "
                                   "retries exceeded (Caused by NewConnectionError: [Errno 111] "
                                   "Connection refused) executing HTTP request attempt 1")
        return self._client.insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class FakeClock:
    """``sleep`` for the runner: records the waits instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def topics(kafka_broker: str) -> Settings:
    settings = Settings(kafka_bootstrap=kafka_broker, topic_prefix=f"s{uuid.uuid4().hex[:8]}.",
                        topic_partitions=2)
    ensure_topics(settings)
    return settings


def produce(settings: Settings, n: int, garbage: int = 0) -> None:
    producer = EventProducer(make_producer(settings.bootstrap), topic_name=settings.topic)
    for i in range(n):
        producer.send("ioc.traffic.flow.v1", {
            "event_id": f"e{i}", "occurred_at": T0 + timedelta(seconds=i), "source": "T",
            "area_code": "502", "segment_id": f"S{i % 5}", "vehicle_count": i % 17,
            "avg_speed_kmh": 30.0, "occupancy": None})
    for _ in range(garbage):
        producer.send_raw("ioc.traffic.flow.v1", b"not avro at all", key=b"S0")
    producer.flush()


def runner(settings: Settings, client: Any, db: str, metrics: Metrics,
           crash_on_commit: bool = False, group: str = "sink", **kwargs: Any) -> SinkRunner:
    serde = Serde()
    consumer: Any = Consumer(sink_consumer_config(settings.bootstrap, settings.topic(group)))
    if crash_on_commit:
        consumer = CrashOnCommit(consumer)
    r = SinkRunner(consumer, ClickHouseSink(client, db, metrics), serde,
                   default_mappings(serde), metrics, topic_name=settings.topic,
                   max_wait_s=2.0, **kwargs)
    r.subscribe()
    return r


def drain(r: SinkRunner, rounds: int = 20) -> None:
    quiet = 0
    for _ in range(rounds):
        quiet = quiet + 1 if r.poll_round() == 0 else 0
        if quiet >= 2:
            return


def drain_until(r: SinkRunner, rows: int, timeout: float = 90) -> None:
    """Poll rounds until ``rows`` rows were written (the group join can take a while on a busy
    machine: quiet rounds alone do not prove the end)."""
    deadline = time.monotonic() + timeout
    while r.rows_written < rows:
        assert time.monotonic() < deadline, f"{r.rows_written} of {rows} rows written"
        r.poll_round()


def counts(client: Any, db: str) -> tuple[int, int, int]:
    final = client.query(f"SELECT count(), uniqExact(event_id), sum(vehicle_count) "
                         f"FROM {db}.traffic_flow FINAL").result_rows[0]
    return int(final[0]), int(final[1]), int(final[2])


def test_crash_between_insert_and_commit_leaves_no_duplicates(
        topics: Settings, chdb_client: Any, fresh_db: str) -> None:
    produce(topics, 1000)
    metrics = Metrics(CollectorRegistry())
    crashing = runner(topics, chdb_client, fresh_db, metrics, crash_on_commit=True)
    with pytest.raises(RuntimeError, match="simulated crash"):
        for _ in range(20):
            crashing.poll_round()
    crashing.consumer.close()
    stored_before_restart = chdb_client.query(
        f"SELECT count() FROM {fresh_db}.traffic_flow").result_rows[0][0]
    assert stored_before_restart > 0  # the insert happened; the commit did not

    restarted = runner(topics, chdb_client, fresh_db, metrics)
    drain(restarted)
    restarted.consumer.close()
    assert counts(chdb_client, fresh_db) == (1000, 1000, sum(i % 17 for i in range(1000)))


def test_overload_is_retried_not_dropped(topics: Settings, chdb_client: Any,
                                         fresh_db: str) -> None:
    produce(topics, 300)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    flaky = OverloadedTwice(chdb_client)
    r = runner(topics, flaky, fresh_db, metrics)
    drain(r)
    r.consumer.close()
    assert flaky.failures == 2
    assert counts(chdb_client, fresh_db)[:2] == (300, 300)
    assert registry.get_sample_value(
        "ioc_sink_retries_total", {"table": "traffic_flow", "reason": "RuntimeError"}) == 2.0


def test_undecodable_raw_messages_are_skipped_and_counted(topics: Settings, chdb_client: Any,
                                                          fresh_db: str) -> None:
    produce(topics, 50, garbage=3)
    registry = CollectorRegistry()
    r = runner(topics, chdb_client, fresh_db, Metrics(registry))
    drain(r)
    assert r.lag() == 0
    r.consumer.close()
    assert counts(chdb_client, fresh_db)[:2] == (50, 50)
    assert registry.get_sample_value(
        "ioc_sink_skipped_total", {"topic": "ioc.traffic.flow.v1"}) == 3.0
    # one insert per batch, never row by row
    inserts = registry.get_sample_value("ioc_sink_batch_rows_count", {"table": "traffic_flow"})
    assert inserts is not None and inserts <= 4


def committed(settings: Settings, group: str = "sink") -> int:
    """Offsets the sink's group committed on the flow topic, summed (0 where none)."""
    topic = settings.topic("ioc.traffic.flow.v1")
    probe = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": settings.topic(group)})
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return sum(max(tp.offset, 0) for tp in probe.committed(tps, timeout=10))
    finally:
        probe.close()


def test_unreachable_clickhouse_is_retried_with_bounded_backoff_committing_nothing_meanwhile(
        topics: Settings, chdb_client: Any, fresh_db: str,
        caplog: pytest.LogCaptureFixture) -> None:
    produce(topics, 400)
    registry = CollectorRegistry()
    clock = FakeClock()
    seen: list[tuple[float, int, float | None]] = []  # (time, committed, up) at each attempt

    def look() -> None:
        up = registry.get_sample_value("ioc_sink_clickhouse_up", {"store": "embedded"})
        seen.append((clock.now, committed(topics), up))

    down = Unreachable(chdb_client, failures=8, on_attempt=look)
    r = runner(topics, down, fresh_db, Metrics(registry), max_backoff_s=20.0, sleep=clock.sleep)
    with caplog.at_level(logging.WARNING, logger="ioc.connectors.sink"):
        drain_until(r, 400)
    r.consumer.close()
    # waits between attempts: 1 s doubling, capped at 20 s (no busy spin, no runaway wait)
    times = [t for t, _, _ in seen[:9]]
    assert [b - a for a, b in itertools.pairwise(times)] == [1, 2, 4, 8, 16, 20, 20, 20]
    # nothing was committed while the rows were unwritten; the metric said ClickHouse is down
    assert [c for _, c, _ in seen[:9]] == [0] * 9
    assert [u for _, _, u in seen[1:9]] == [0.0] * 8
    # then every event stored once, the offsets committed and the metric back at 1
    assert counts(chdb_client, fresh_db)[:2] == (400, 400)
    assert committed(topics) == 400
    assert registry.get_sample_value("ioc_sink_clickhouse_up", {"store": "embedded"}) == 1.0
    assert registry.get_sample_value(
        "ioc_sink_retries_total", {"table": "traffic_flow", "reason": "OperationalError"}) == 8.0
    # the log says what happens and why, attempt by attempt, and when it is over
    failed = [m for m in caplog.messages if m.startswith("ClickHouse insert into traffic_flow "
                                                        "failed (unreachable")]
    assert len(failed) == 8
    assert "Connection refused" in failed[0] and "offsets not committed" in failed[0]
    assert "retrying in 1.0s" in failed[0] and "retrying in 20.0s" in failed[-1]
    assert any("succeeded after 8 failed attempts" in m for m in caplog.messages)


def test_sink_stopped_during_an_outage_commits_nothing_and_a_successor_loses_nothing(
        topics: Settings, chdb_client: Any, fresh_db: str) -> None:
    produce(topics, 200)
    clock = FakeClock()
    down = Unreachable(chdb_client, failures=10**9)
    r = runner(topics, down, fresh_db, Metrics(CollectorRegistry()), sleep=clock.sleep)
    deadline = time.monotonic() + 90
    with pytest.raises(SinkStopped):
        while time.monotonic() < deadline:
            r.poll_round(stop=lambda: down.attempts >= 3)
    r.consumer.close()
    assert down.attempts == 3 and committed(topics) == 0
    assert counts(chdb_client, fresh_db)[:2] == (0, 0)
    successor = runner(topics, chdb_client, fresh_db, Metrics(CollectorRegistry()))
    drain_until(successor, 200)
    successor.consumer.close()
    assert counts(chdb_client, fresh_db)[:2] == (200, 200)
    assert committed(topics) == 200


class Refusing:
    """A ClickHouse client that refuses the insert for good (a schema mismatch)."""

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        raise DatabaseError("Received ClickHouse exception, code: 16, server response: Code: 16. "
                            "DB::Exception: No such column vehicle_count in table "
                            "ioc.traffic_flow. (NO_SUCH_COLUMN_IN_TABLE)")


def test_an_error_retrying_cannot_cure_stops_the_sink_without_committing(
        topics: Settings) -> None:
    produce(topics, 50)
    r = runner(topics, Refusing(), "ioc", Metrics(CollectorRegistry()))
    deadline = time.monotonic() + 90
    with pytest.raises(DatabaseError, match="NO_SUCH_COLUMN"):
        while time.monotonic() < deadline:
            r.poll_round()
    r.consumer.close()
    assert committed(topics) == 0


@pytest.mark.parametrize(("error", "reason"), [
    (OperationalError("Error ... executing HTTP request attempt 1 (http://ch:8123)"),
     "unreachable"),
    (ConnectionResetError(104, "Connection reset by peer"), "unreachable"),
    (DatabaseError("Code: 252. DB::Exception: Too many parts (3000). (TOO_MANY_PARTS)"),
     "overloaded"),
    (DatabaseError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. "
                   "(NOT_ENOUGH_SPACE)"), "overloaded"),
    (DatabaseError("Code: 242. DB::Exception: Table is in readonly mode. "
                   "(TABLE_IS_READ_ONLY)"), "overloaded"),
    (DatabaseError("HTTP driver received HTTP status 503, server response: no healthy "
                   "upstream"), "overloaded"),
    (DatabaseError("Code: 60. DB::Exception: Unknown table ioc.nope. (UNKNOWN_TABLE)"), None),
    (ValueError("could not convert 'abc' to DateTime64"), None),
])
def test_retry_reason_tells_passing_conditions_from_defects(error: Exception,
                                                           reason: str | None) -> None:
    assert retry_reason(error) == reason


def test_lag_counts_what_is_not_read_yet_in_one_round_trip(topics: Settings, chdb_client: Any,
                                                           fresh_db: str) -> None:
    produce(topics, 30)
    r = runner(topics, chdb_client, fresh_db, Metrics(CollectorRegistry()))
    drain_until(r, 30)
    assert r.lag() == 0
    produce(topics, 7)  # on the broker, not read yet
    started = time.monotonic()
    assert r.lag() == 7
    assert time.monotonic() - started < 5  # ~40 partitions, not a round trip each
    drain_until(r, 37)
    assert r.lag() == 0
    r.consumer.close()
