"""Replay checkpoints: what a restarted worker must not count again (see
:class:`ioc.streams.engine.ReplayGuard`).

The worker writes, every few seconds and only for partitions whose values changed, one record
per source partition to the compacted topic ``<prefix>ioc-streams-checkpoints`` (an internal
topic of the stream worker, like Faust's own ``ioc-streams-*`` topics, so the platform's Kafka
user may create it): key ``<topic>|<partition>`` (the physical topic name), value JSON
``{"engine_from": offset, "closed_wm": ISO time or null}``. A checkpoint is produced only after
every output produced before it was confirmed by Kafka, so the final KPI records of the windows
it counts as closed are durable before it is.

When partitions are assigned, the worker reads the latest checkpoint of each and installs it as
the partition's replay guard before reading any of its events. A missing or unreadable
checkpoint only means no guard: the worker then replays as before (correct for windows still
open, and windows closed earlier may be published again from a partial replay — the case the
checkpoints exist to avoid).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ioc.infra.settings import Settings
from ioc.streams.engine import ReplayGuard

log = logging.getLogger(__name__)

TOPIC_SUFFIX = "ioc-streams-checkpoints"
TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.ms": str(3600 * 1000),
                "min.cleanable.dirty.ratio": "0.1"}


def checkpoint_topic(settings: Settings) -> str:
    return f"{settings.topic_prefix}{TOPIC_SUFFIX}"


def encode(topic: str, partition: int, guard: ReplayGuard) -> tuple[bytes, bytes]:
    """(key, value) of one partition's checkpoint; ``topic`` is the physical topic name."""
    value = {"engine_from": guard.engine_from,
             "closed_wm": guard.closed_wm.isoformat() if guard.closed_wm else None}
    return f"{topic}|{partition}".encode(), json.dumps(value).encode()


def decode(key: bytes, value: bytes) -> tuple[tuple[str, int], ReplayGuard]:
    topic, _, partition = key.decode().rpartition("|")
    data = json.loads(value)
    wm = datetime.fromisoformat(data["closed_wm"]) if data.get("closed_wm") else None
    return (topic, int(partition)), ReplayGuard(int(data["engine_from"]), wm)


def ensure_topic(settings: Settings, timeout: float = 30.0) -> None:
    """Create the checkpoint topic if it is missing (one partition, compacted)."""
    name = checkpoint_topic(settings)
    admin = AdminClient(settings.kafka_config())
    if name in admin.list_topics(timeout=timeout).topics:
        return
    new = NewTopic(name, num_partitions=1,
                   replication_factor=settings.topic_replication_factor or -1,
                   config=TOPIC_CONFIG)
    try:
        admin.create_topics([new], request_timeout=timeout)[name].result(timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def read(settings: Settings, tps: Iterable[tuple[str, int]], timeout: float = 20.0
         ) -> dict[tuple[str, int], ReplayGuard]:
    """The latest checkpoint of each of ``tps`` (physical topic, partition) that has one."""
    wanted = set(tps)
    if not wanted:
        return {}
    name = checkpoint_topic(settings)
    consumer = Consumer(settings.kafka_config(**{
        "group.id": f"{settings.topic_prefix}ioc-streams-checkpoint-reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 3}))
    found: dict[tuple[str, int], ReplayGuard] = {}
    try:
        md = consumer.list_topics(name, timeout=timeout).topics.get(name)
        if md is None or md.error is not None:
            return {}
        parts = []
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout)
            if high > low:
                parts.append(TopicPartition(name, p, low))
        if not parts:
            return {}
        consumer.assign(parts)
        left = {tp.partition for tp in parts}
        deadline = time.monotonic() + timeout
        while left and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    left.discard(msg.partition())
                continue
            key, value = msg.key(), msg.value()
            if not key or not value:
                continue
            try:
                tp, guard = decode(key, value)
            except (ValueError, KeyError) as exc:
                log.warning("ignoring an unreadable checkpoint %r: %s", key, exc)
                continue
            if tp in wanted:
                found[tp] = guard
        if left:
            log.warning("checkpoints not read to the end within %.0f s: replaying without "
                        "guards on the rest", timeout)
    finally:
        consumer.close()
    return found
