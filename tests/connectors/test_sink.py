"""The ClickHouse sink against the real broker and the session's chDB, with faults injected at
its two edges (the commit and the insert)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Consumer
from prometheus_client import CollectorRegistry

from ioc.connectors.producer import EventProducer, make_producer
from ioc.connectors.sink import (
    ClickHouseSink,
    SinkRunner,
    default_mappings,
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
           crash_on_commit: bool = False, group: str = "sink") -> SinkRunner:
    serde = Serde()
    consumer: Any = Consumer(sink_consumer_config(settings.bootstrap, settings.topic(group)))
    if crash_on_commit:
        consumer = CrashOnCommit(consumer)
    r = SinkRunner(consumer, ClickHouseSink(client, db, metrics), serde,
                   default_mappings(serde), metrics, topic_name=settings.topic,
                   max_wait_s=2.0)
    r.subscribe()
    return r


def drain(r: SinkRunner, rounds: int = 20) -> None:
    quiet = 0
    for _ in range(rounds):
        quiet = quiet + 1 if r.poll_round() == 0 else 0
        if quiet >= 2:
            return


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
