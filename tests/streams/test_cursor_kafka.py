"""What the stream worker's read cursor asks Kafka (ioc.streams.cursor), on a real broker: where
the group resumes a partition, and the first offset the log really holds at or after a point."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ioc.infra.settings import Settings
from ioc.streams.cursor import first_offset_at, start_offsets


def test_start_offsets_and_the_first_offset_the_log_holds(kafka_broker: str) -> None:
    settings = Settings.from_env({"IOC_KAFKA_BOOTSTRAP": kafka_broker})
    topic = f"cursor-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_broker})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": kafka_broker})
    for i in range(10):
        producer.produce(topic, value=f"m{i}".encode(), partition=0)
    producer.produce(topic, value=b"only", partition=1)
    assert producer.flush(30) == 0

    group = f"g-{uuid.uuid4().hex[:8]}"
    committer = Consumer({"bootstrap.servers": kafka_broker, "group.id": group})
    deadline = time.monotonic() + 60
    while True:  # a fresh broker answers NOT_COORDINATOR while it loads its offsets topic
        try:
            committer.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
            break
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    committer.close()
    # partition 0 resumes at the committed 7; partition 1 has no commit: its first offset
    assert start_offsets(settings, group, [(topic, 0), (topic, 1)]) == {(topic, 0): 7,
                                                                         (topic, 1): 0}

    assert first_offset_at(settings, topic, 0, 3, timeout=60) == 3  # generous: a loaded CI
    # records deleted below 5 (what retention does): the log starts at 5
    deleted = admin.delete_records([TopicPartition(topic, 0, 5)])
    for future in deleted.values():
        future.result(30)
    assert first_offset_at(settings, topic, 0, 3, timeout=60) == 5
    assert first_offset_at(settings, topic, 0, 9, timeout=60) == 9
    # nothing at or after the end within the timeout
    assert first_offset_at(settings, topic, 0, 10, timeout=2.0) is None
