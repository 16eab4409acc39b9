"""ClickHouse sink: Kafka topics → tables, in batches, committing only what is stored.

Modelled on quix-streams' ``BatchingSink``: records are added to a batch per topic-partition;
``write(batch)`` does one insert per batch; consumer offsets are committed only after every
batch of the poll round has been written. A crash between insert and commit replays the batch:
the insert carries a dedup token (``topic:partition:first-last``) and the tables replace rows by
key, so queries with ``FINAL`` still see one row per event.

When ClickHouse cannot take a batch for a reason that passes — unreachable (connection
refused or reset, timeouts: clickhouse-connect's ``OperationalError``), overloaded (too many
parts, memory limits, too many queries), out of disk, a replica read-only — the insert raises
:class:`SinkBackpressure`; the runner retries the same batch with exponential backoff (1 s,
doubling, at most ``max_backoff_s``), logs each failure with its reason, counts it
(``ioc_sink_retries_total``) and shows ``ioc_sink_clickhouse_up = 0`` until an insert
succeeds. Meanwhile it neither reads nor commits: the Kafka lag grows and the events wait in
Kafka, so nothing is lost, and after the outage the sink catches up from where it stopped —
never a crash loop, never a busy spin, never a silent drop. Any other error (a bug, a schema
mismatch) stops the sink with that error, without committing the batch. An outage longer than
the consumer's ``max.poll.interval.ms`` (5 minutes) makes the group hand the partitions over;
the sink then re-reads them from its last commit (inserts are idempotent, see above).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ioc.infra.metrics import Metrics
from ioc.schemas.serde import DecodeError, Serde

log = logging.getLogger(__name__)

_META = ["_topic", "_partition", "_offset", "_ingested_at"]


@dataclass(frozen=True)
class TableMapping:
    topic: str          # contract topic name
    table: str          # table name inside the database
    columns: list[str]  # record fields inserted, in order
    raw: bool           # raw event table: adds _topic/_partition/_offset/_ingested_at


def raw_table(topic: str) -> str:
    """``ioc.traffic.flow.v1`` → ``traffic_flow``: one raw table per event topic (all versions
    of a topic share it; migrations add columns as schemas gain fields)."""
    return topic.removeprefix("ioc.").rsplit(".", 1)[0].replace(".", "_")


NOTIFY_TABLES = {"ioc.alert_event.v1": "alert_events", "ioc.alert_ack.v1": "alert_acks",
                 "ioc.silence.v1": "silences"}


def default_mappings(serde: Serde) -> list[TableMapping]:
    cat = serde.catalogue
    out = []
    for topic in cat.event_topics:
        out.append(TableMapping(topic, raw_table(topic), cat.get(topic).field_names, raw=True))
    out.append(TableMapping("ioc.kpi.v1", "kpi", cat.get("ioc.kpi.v1").field_names, raw=False))
    out.append(TableMapping("ioc.alert.v1", "alerts", cat.get("ioc.alert.v1").field_names,
                            raw=False))
    out.append(TableMapping("ioc.dlq.v1", "dead_letters", cat.get("ioc.dlq.v1").field_names,
                            raw=False))
    # The notifier's history, acknowledgements and silences (migration 0007).
    for topic, table in NOTIFY_TABLES.items():
        out.append(TableMapping(topic, table, cat.get(topic).field_names, raw=False))
    return out


class SinkBackpressure(Exception):
    """ClickHouse cannot take the batch now (unreachable or overloaded); retry the same batch
    after at least ``delay`` seconds. ``reason`` is short, for logs and metrics."""

    def __init__(self, message: str, delay: float, reason: str = "") -> None:
        super().__init__(message)
        self.delay = delay
        self.reason = reason


class SinkStopped(Exception):
    """The sink was asked to stop while a batch was still unwritten: nothing was committed."""


# ClickHouse error names (and transport phrases) of conditions that pass by themselves.
_RETRYABLE = ("TOO_MANY_PARTS", "TIMEOUT", "MEMORY_LIMIT_EXCEEDED", "TOO_MANY_SIMULTANEOUS",
              "Connection", "timed out", "NETWORK_ERROR", "SOCKET_TIMEOUT", "NOT_ENOUGH_SPACE",
              "TABLE_IS_READ_ONLY", "ALL_CONNECTION_TRIES_FAILED", "KEEPER_EXCEPTION",
              "ABORTED", "HTTP status 502", "HTTP status 503", "HTTP status 504")


_URL_QUERY = re.compile(r"\?[^\s'\"()]*")


def _brief(exc: BaseException) -> str:
    """The error's text for a log line: without URL query strings (clickhouse-connect puts
    every request setting there, which would push the reason — "Connection refused" — out
    of the line), at most 300 characters."""
    return _URL_QUERY.sub("", str(exc))[:300]


def retry_reason(exc: BaseException) -> str | None:
    """Why an insert error is worth retrying (``unreachable``, ``overloaded``), or None for an
    error that retrying would not cure."""
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, (OperationalError, ConnectionError, TimeoutError)):
        return "unreachable"  # transport: refused, reset, timed out, server went away
    text = str(exc)
    if any(marker in text for marker in _RETRYABLE):
        return "overloaded"
    return None


@dataclass
class Batch:
    mapping: TableMapping
    partition: int
    rows: list[list[Any]] = field(default_factory=list)
    first_offset: int = -1
    last_offset: int = -1
    oldest_event: datetime | None = None

    def add(self, row: list[Any], offset: int) -> None:
        if self.first_offset < 0:
            self.first_offset = offset
        self.last_offset = offset
        self.rows.append(row)

    @property
    def dedup_token(self) -> str:
        m = self.mapping
        return f"{m.topic}:{self.partition}:{self.first_offset}-{self.last_offset}"


class ClickHouseSink:
    """Writes batches with one insert each. ``insert_settings`` go with every insert (on a
    ClickHouse cluster: :func:`ioc.infra.cluster_ddl.cluster_insert_settings`, which says why
    the dedup token still makes a retried batch idempotent there)."""

    def __init__(self, client: Any, database: str, metrics: Metrics,
                 insert_settings: Mapping[str, Any] | None = None,
                 store: str = "embedded") -> None:
        self.client = client
        self.database = database
        self.metrics = metrics
        self.insert_settings = dict(insert_settings or {})
        self.up = metrics.sink_clickhouse_up.labels(store)
        self.up.set(1)  # connected

    def write(self, batch: Batch) -> None:
        m = batch.mapping
        cols = m.columns + (_META if m.raw else [])
        start = time.perf_counter()
        try:
            self.client.insert(f"{self.database}.{m.table}", batch.rows, column_names=cols,
                               settings={**self.insert_settings,
                                         "insert_deduplication_token": batch.dedup_token})
        except Exception as exc:
            reason = retry_reason(exc)
            if reason is None:
                raise
            self.metrics.sink_retries.labels(m.table, type(exc).__name__).inc()
            self.up.set(0)
            raise SinkBackpressure(f"{m.table}: {type(exc).__name__}: {_brief(exc)}",
                                   delay=1.0, reason=reason) from exc
        self.up.set(1)
        self.metrics.sink_batch_seconds.labels(m.table).observe(time.perf_counter() - start)
        self.metrics.sink_batch_rows.labels(m.table).observe(len(batch.rows))
        self.metrics.events_out.labels("sink", m.table).inc(len(batch.rows))


class SinkRunner:
    """Consumes the mapped topics and drives :class:`ClickHouseSink`."""

    def __init__(self, consumer: Consumer, sink: ClickHouseSink, serde: Serde,
                 mappings: Sequence[TableMapping], metrics: Metrics,
                 topic_name: Callable[[str], str] = lambda t: t,
                 max_batch: int = 20000, max_wait_s: float = 0.5,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 max_backoff_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.consumer = consumer
        self.sink = sink
        self.serde = serde
        self.metrics = metrics
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.max_backoff_s = max_backoff_s
        self.sleep = sleep
        self.by_physical: dict[str, TableMapping] = {topic_name(m.topic): m for m in mappings}
        self.rows_written = 0

    def subscribe(self) -> None:
        self.consumer.subscribe(list(self.by_physical))

    def _row(self, mapping: TableMapping, record: Mapping[str, Any], partition: int,
             offset: int, now: datetime) -> list[Any]:
        row = [record.get(c) for c in mapping.columns]
        if mapping.raw:
            row += [mapping.topic, partition, offset, now]
        return row

    def poll_round(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Collect up to ``max_batch`` messages or ``max_wait_s``, write, then commit.

        Raises :class:`SinkStopped` when ``stop()`` turns true while a batch cannot be
        written: nothing of the round is committed then."""
        batches: dict[tuple[str, int], Batch] = {}
        offsets: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + self.max_wait_s
        count = 0
        now = self.clock()
        while count < self.max_batch and time.monotonic() < deadline and not stop():
            msgs = self.consumer.consume(num_messages=min(5000, self.max_batch - count),
                                         timeout=max(0.0, deadline - time.monotonic()))
            for msg in msgs:
                if msg.error():
                    log.warning("consumer error: %s", msg.error())
                    continue
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                if topic is None or partition is None or offset is None:
                    continue
                count += 1
                mapping = self.by_physical.get(topic)
                offsets[(topic, partition)] = offset
                if mapping is None:
                    continue
                self.metrics.events_in.labels("sink", mapping.topic).inc()
                try:
                    record = self.serde.decode(mapping.topic, msg.value())
                except DecodeError:
                    # The stream worker dead-letters raw events it cannot decode; the sink only
                    # skips them (and counts) so the table is not blocked.
                    self.metrics.sink_skipped.labels(mapping.topic).inc()
                    continue
                batch = batches.get((topic, partition))
                if batch is None:
                    batch = batches[(topic, partition)] = Batch(mapping, partition)
                batch.add(self._row(mapping, record, partition, offset, now), offset)
                if mapping.raw and record.get("occurred_at") is not None:
                    occurred = record["occurred_at"]
                    if batch.oldest_event is None or occurred < batch.oldest_event:
                        batch.oldest_event = occurred
        if not offsets:
            return 0
        for batch in batches.values():
            self._write_with_retry(batch, stop)
            if batch.mapping.raw and batch.oldest_event is not None:
                lat = (self.clock() - batch.oldest_event).total_seconds()
                self.metrics.e2e_latency.labels(batch.mapping.topic).observe(max(lat, 0.0))
            self.rows_written += len(batch.rows)
        self._commit([TopicPartition(t, p, o + 1) for (t, p), o in offsets.items()], stop)
        return count

    def _commit(self, offsets: list[TopicPartition], stop: Callable[[], bool]) -> None:
        """Commit after the write. While the broker or the group coordinator is away (a broker
        restart), retry with backoff: the rows are stored, and committing late only means a
        restart would re-read them (inserts are idempotent). If the group moved the partitions
        meanwhile, their new owner re-reads from the last commit: let go."""
        delay = 0.5
        while True:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
                return
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                code = err.code() if isinstance(err, KafkaError) else None
                if code in _REBALANCED:
                    log.warning("commit skipped, partitions moved to another sink: %s", err)
                    return
                if stop():
                    raise
                log.warning("commit failed (%s); retrying in %.1fs", err, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _write_with_retry(self, batch: Batch, stop: Callable[[], bool]) -> None:
        """Write ``batch``, retrying while ClickHouse cannot take it: waits of 1 s (or what
        the error asks), doubling up to ``max_backoff_s``. Nothing is read or committed
        meanwhile, so the rows wait in Kafka and the lag grows."""
        delay, attempts, first_failure = 1.0, 0, 0.0
        while True:
            try:
                self.sink.write(batch)
            except SinkBackpressure as exc:
                attempts += 1
                if attempts == 1:
                    first_failure = time.monotonic()
                wait = min(max(exc.delay, delay), self.max_backoff_s)
                log.warning("ClickHouse insert into %s failed (%s, attempt %d): %s; %d rows held, "
                            "offsets not committed; retrying in %.1fs", batch.mapping.table,
                            exc.reason or "retryable", attempts, exc, len(batch.rows), wait)
                if self._wait(wait, stop):
                    raise SinkStopped(f"stopped while {batch.mapping.table} was unwritable"
                                      ) from exc
                delay = min(delay * 2, self.max_backoff_s)
                continue
            if attempts:
                log.warning("ClickHouse insert into %s succeeded after %d failed attempts "
                            "(%.1fs); catching up", batch.mapping.table, attempts,
                            time.monotonic() - first_failure)
            return

    def _wait(self, seconds: float, stop: Callable[[], bool]) -> bool:
        """Sleep ``seconds`` in short steps; True as soon as ``stop()`` is."""
        left = seconds
        while left > 0:
            if stop():
                return True
            step = min(left, 0.5)
            self.sleep(step)
            left -= step
        return stop()

    def lag(self) -> int:
        """Messages not yet consumed on the assigned partitions (-1 when unknown)."""
        total = 0
        try:
            assignment = self.consumer.assignment()
            if not assignment:
                return -1
            positions = self.consumer.position(assignment)
            # position() is only known after a message was consumed on the partition; before
            # that, the committed offset is where consumption resumes.
            committed = {(tp.topic, tp.partition): tp.offset
                         for tp in self.consumer.committed(assignment, timeout=5)}
            ends = self._log_offsets(assignment, _LATEST)
            fresh = [tp for tp in positions  # nothing consumed nor committed: from the start
                     if tp.offset < 0 and committed.get((tp.topic, tp.partition), -1) < 0
                     and ends[(tp.topic, tp.partition)] > 0]
            starts = self._log_offsets(fresh, _EARLIEST) if fresh else {}
            for tp in positions:
                key = (tp.topic, tp.partition)
                high = ends[key]
                pos = tp.offset if tp.offset >= 0 else committed.get(key, -1)
                if pos < 0:
                    pos = starts.get(key, high)
                lag = max(high - pos, 0)
                self.metrics.consumer_lag.labels("sink", tp.topic, str(tp.partition)).set(lag)
                total += lag
        except KafkaException:
            return -1
        return total

    def _log_offsets(self, partitions: Sequence[TopicPartition], which: int
                     ) -> dict[tuple[str, int], int]:
        """The latest or earliest offset of each partition, in one request per broker (asking
        partition by partition takes a round trip each: seconds for the ~50 the sink reads)."""
        found = self.consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, which) for tp in partitions], timeout=5)
        out = {}
        for tp in found:
            if tp.error is not None or tp.offset < 0:
                raise KafkaException(tp.error or KafkaError(KafkaError._NO_OFFSET))
            out[(tp.topic, tp.partition)] = tp.offset
        return out


# ListOffsets timestamps that mean "the end" and "the start" of a partition's log.
_LATEST, _EARLIEST = -1, -2

_REBALANCED = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
               KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST}


def sink_consumer_config(bootstrap: str, group_id: str, **extra: Any) -> dict[str, Any]:
    """The sink's consumer config; ``extra`` (e.g. ``Settings.kafka_security``) is merged last."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.min.bytes": 1,
        "session.timeout.ms": 10000,
        "max.poll.interval.ms": 300000,
        **extra,
    }
