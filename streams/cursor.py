"""Where the worker must read each source partition next, and how far it may commit.

Faust's consumer has been reported to hand the agent, after a rebalance that gives a worker
back partitions it had, messages prefetched before the rebalance (offsets past the committed
one) and then drop the messages it re-reads from the committed offset, because its read
position already moved past them (faust-streaming issues #216 and #221). Faust also treats
offsets it skipped as "gaps" that may be committed. Either would silently take events away
from the KPI windows, so the worker does not rely on the consumer's order.

The worker therefore keeps its own cursor per partition. When partitions are assigned it reads
their committed offsets from Kafka (:func:`start_offsets`); from then on it takes only the
message at the cursor:

* an offset below the cursor was read already in this assignment: skipped;
* an offset above it is a gap: :func:`first_offset_at` asks Kafka what the log really holds
  there. Messages the consumer skipped are read again (the worker seeks back to the cursor);
  offsets the log does not hold (transaction markers, records deleted by retention) are passed.

Offsets are committed only up to the cursor or the oldest message the worker still holds,
whichever comes first (``ioc.streams.app``): the committed offset never passes a message the
worker has not counted and confirmed, whatever Faust's own bookkeeping says.
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from ioc.infra.settings import Settings
from ioc.streams.engine import TP

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    TAKE = "take"  # the message at the cursor: count it
    AGAIN = "again"  # read already in this assignment
    GAP = "gap"  # past the cursor: ask Kafka what lies between (see the module docstring)


class ReadCursor:
    """The next offset to take per partition (logical topic, partition). A partition without a
    start (its committed offset could not be read) takes whatever comes first."""

    def __init__(self) -> None:
        self._next: dict[TP, int] = {}

    def start(self, tp: TP, offset: int) -> None:
        self._next[tp] = offset

    def next(self, tp: TP) -> int | None:
        return self._next.get(tp)

    def check(self, tp: TP, offset: int) -> Verdict:
        expected = self._next.get(tp)
        if expected is None or offset == expected:
            return Verdict.TAKE
        return Verdict.AGAIN if offset < expected else Verdict.GAP

    def take(self, tp: TP, offset: int) -> None:
        """The message at ``offset`` was counted."""
        self._next[tp] = offset + 1

    def forget(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._next.pop(tp, None)

    def resolve_gap(self, tp: TP, offset: int, first: int | None) -> int | None:
        """A message at ``offset`` came while the cursor was lower; ``first`` is the first offset
        at or after the cursor that the log holds (None: Kafka did not say). Returns the offset
        to read again from, or None when nothing lies between and the message is to be taken."""
        expected = self._next[tp]
        if first is None:
            return expected  # unknown: never pass unread offsets on a guess
        if first >= offset:
            self._next[tp] = offset  # the log holds nothing between (see the module docstring)
            return None
        if first > expected:
            self._next[tp] = first
        return self._next[tp]


def _consumer(settings: Settings, group: str) -> Consumer:
    # read_uncommitted like Faust's consumer: the probe must see the offsets the worker sees
    return Consumer(settings.kafka_config(**{
        "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "isolation.level": "read_uncommitted", "log_level": 3}))


def start_offsets(settings: Settings, group: str, tps: Iterable[tuple[str, int]],
                  timeout: float = 20.0) -> dict[tuple[str, int], int]:
    """Where the consumer group ``group`` resumes each of ``tps`` (physical topic, partition):
    its committed offset, else the partition's first offset (the worker reads from the
    earliest). Raises :class:`confluent_kafka.KafkaException` when Kafka cannot say."""
    wanted = [TopicPartition(t, p) for t, p in tps]
    if not wanted:
        return {}
    consumer = _consumer(settings, group)
    try:
        found: dict[tuple[str, int], int] = {}
        for tp in consumer.committed(wanted, timeout=timeout):
            if tp.error is not None:
                continue
            offset = tp.offset
            if offset < 0:  # nothing committed yet
                try:
                    offset, _high = consumer.get_watermark_offsets(
                        TopicPartition(tp.topic, tp.partition), timeout=timeout)
                except KafkaException as exc:  # this partition stays without a start
                    log.warning("no start offset for %s[%d]: %s", tp.topic, tp.partition, exc)
                    continue
            found[(tp.topic, tp.partition)] = offset
        return found
    finally:
        consumer.close()


def first_offset_at(settings: Settings, topic: str, partition: int, offset: int,
                    timeout: float = 10.0) -> int | None:
    """The offset of the first message at or after ``offset`` in the log of ``topic`` (physical
    name) ``partition``, or None when Kafka gives none within ``timeout``."""
    group = f"{settings.topic_prefix}ioc-streams-probe-{uuid.uuid4().hex[:8]}"
    consumer = _consumer(settings, group)
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = consumer.poll(min(left, 1.0))
            if msg is not None and msg.error() is None:
                offset_read: int | None = msg.offset()
                return offset_read
        return None
    finally:
        consumer.close()
