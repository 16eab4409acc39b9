"""Kafka for the notifier and ``ioc alerts``: read topics to their end, follow them, write.

The notifier keeps no local state: at start it reads the compacted alert, ack and silence topics
from the beginning and its history topic from ``now - history_lookback`` (by timestamp), up to
the high watermarks it saw when it started; then it follows the first three from exactly there.
No consumer group, no committed offsets: every start rebuilds the same state from the log.

Writes use one confluent-kafka producer (idempotent, ``acks=all``, keyed like every other
producer of the platform, see ``connectors/producer.py``); :class:`AsyncProducer` turns its
delivery reports into awaitables so the notifier can wait until a record is durable before it
acts on it (the "intent before send" rule).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from ioc.connectors.notify.model import ms
from ioc.connectors.producer import partition_key, producer_config
from ioc.infra.settings import Settings
from ioc.schemas.serde import DecodeError, Serde

log = logging.getLogger(__name__)


@dataclass
class TopicRead:
    """Records read from one topic (in partition order), and where each partition ended."""

    records: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)  # partition → next offset
    skipped: int = 0


def _consumer(settings: Settings) -> Consumer:
    return Consumer(settings.kafka_config(**{
        "group.id": f"{settings.topic_prefix}ioc-notify-reader",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "enable.partition.eof": False}))


def read_topics(settings: Settings, serde: Serde, topics: Iterable[str],
                since: dict[str, datetime] | None = None, timeout: float = 15.0
                ) -> dict[str, TopicRead]:
    """Read each contract topic from its start (or from the first offset at/after
    ``since[topic]``) up to the high watermark at the time of the call."""
    since = since or {}
    consumer = _consumer(settings)
    out: dict[str, TopicRead] = {}
    try:
        assign: list[TopicPartition] = []
        remaining: dict[tuple[str, int], int] = {}
        physical = {settings.topic(t): t for t in topics}
        for name, topic in physical.items():
            read = out[topic] = TopicRead()
            md = consumer.list_topics(name, timeout=timeout).topics.get(name)
            if md is None or md.error is not None:
                raise RuntimeError(f"topic {name} is missing; run `ioc setup`")
            starts: dict[int, int] = {}
            if topic in since:
                wanted = [TopicPartition(name, p, ms(since[topic])) for p in md.partitions]
                for tp in consumer.offsets_for_times(wanted, timeout=timeout):
                    starts[tp.partition] = tp.offset
            for p in sorted(md.partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p),
                                                           timeout=timeout)
                read.positions[p] = high
                start = starts.get(p, OFFSET_BEGINNING)
                if start < 0 and topic in since:  # nothing at/after the time: read nothing
                    continue
                begin = low if start == OFFSET_BEGINNING else max(start, low)
                if high > begin:
                    assign.append(TopicPartition(name, p, begin))
                    remaining[(name, p)] = high
        if not assign:
            return out
        consumer.assign(assign)
        deadline = time.monotonic() + timeout * 4
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=0.5):
                name, p, offset = msg.topic(), msg.partition(), msg.offset()
                if msg.error() or name is None or p is None or offset is None:
                    continue
                end = remaining.get((name, p))
                if end is None or offset >= end:
                    continue
                if offset + 1 >= end:
                    remaining.pop((name, p), None)
                topic = physical[name]
                try:
                    out[topic].records.append(serde.decode(topic, msg.value()))
                except DecodeError as exc:
                    out[topic].skipped += 1
                    log.warning("skipping an undecodable record in %s[%d]@%d: %s", name, p,
                                offset, exc)
            # offsets may have gaps (compaction, transaction markers): the position tells
            if remaining:
                for tp in consumer.position([TopicPartition(t, p) for t, p in remaining]):
                    if tp.offset >= remaining.get((tp.topic, tp.partition), 0):
                        remaining.pop((tp.topic, tp.partition), None)
        if remaining:
            raise RuntimeError("could not read to the end of "
                               + ", ".join(f"{t}[{p}]" for t, p in remaining)
                               + f" within {timeout * 4:.0f}s")
    finally:
        consumer.close()
    return out


class Follower:
    """Follows topics from given positions (no group, no commits)."""

    def __init__(self, settings: Settings, serde: Serde,
                 positions: dict[str, dict[int, int]]) -> None:
        self.settings = settings
        self.serde = serde
        self.logical = {settings.topic(t): t for t in positions}
        self.consumer = _consumer(settings)
        self.consumer.assign([TopicPartition(settings.topic(t), p, offset)
                              for t, parts in positions.items() for p, offset in parts.items()])
        self.positions = {(settings.topic(t), p): o for t, parts in positions.items()
                          for p, o in parts.items()}

    def poll(self, timeout: float = 0.5, max_records: int = 500
             ) -> list[tuple[str, dict[str, Any]]]:
        """Blocking; run it in a thread (see :meth:`next`)."""
        out = []
        for msg in self.consumer.consume(max_records, timeout=timeout):
            name, p, offset = msg.topic(), msg.partition(), msg.offset()
            if msg.error() or name is None or p is None or offset is None:
                continue
            self.positions[(name, p)] = offset + 1
            topic = self.logical[name]
            try:
                out.append((topic, self.serde.decode(topic, msg.value())))
            except DecodeError as exc:
                log.warning("skipping an undecodable record in %s[%d]@%d: %s", name, p,
                            offset, exc)
        return out

    async def next(self, timeout: float = 0.5) -> list[tuple[str, dict[str, Any]]]:
        return await asyncio.to_thread(self.poll, timeout)

    def lag(self) -> int:
        total = 0
        for (name, p), pos in self.positions.items():
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(name, p),
                                                             timeout=5, cached=False)
            total += max(high - pos, 0)
        return total

    def close(self) -> None:
        self.consumer.close()


def _settle(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[KafkaError | None],
            err: KafkaError | None) -> None:
    """Delivery report (producer's poll thread) → the waiting coroutine (event loop)."""
    def apply() -> None:
        if not fut.done():
            fut.set_result(err)

    loop.call_soon_threadsafe(apply)


class AsyncProducer:
    """Validated, keyed, idempotent writes whose delivery can be awaited."""

    def __init__(self, settings: Settings, serde: Serde) -> None:
        self.settings = settings
        self.serde = serde
        self.producer = Producer(producer_config(settings.bootstrap, **settings.kafka_security,
                                                 **{"linger.ms": 5}))
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="ioc-notify-producer",
                                        daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.1)

    def produce(self, topic: str, record: dict[str, Any],
                on_done: Callable[[KafkaError | None], None] | None = None) -> None:
        value = self.serde.encode(topic, record)

        def report(err: KafkaError | None, _msg: Message) -> None:
            if on_done is not None:
                on_done(err)
            elif err is not None:
                log.error("write to %s failed: %s", topic, err.str())

        while True:
            try:
                self.producer.produce(self.settings.topic(topic),
                                      key=partition_key(topic, record), value=value,
                                      on_delivery=report)
                return
            except BufferError:
                time.sleep(0.05)

    async def send(self, topic: str, record: dict[str, Any], wait: bool = True) -> None:
        """Queue ``record``; with ``wait``, return once the broker confirmed it (retrying
        with backoff while Kafka is unavailable: the notifier acts only on what is durable)."""
        if not wait:
            self.produce(topic, record)
            return
        delay = 0.5
        loop = asyncio.get_running_loop()
        while True:
            done: asyncio.Future[KafkaError | None] = loop.create_future()
            self.produce(topic, record, functools.partial(_settle, loop, done))
            err = await done
            if err is None:
                return
            log.error("write to %s failed (%s); retrying in %.1fs", topic, err.str(), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def flush(self, timeout: float = 30.0) -> int:
        return await asyncio.to_thread(self.producer.flush, timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.producer.flush(timeout)
        self._stop.set()
        self._poller.join(2)
