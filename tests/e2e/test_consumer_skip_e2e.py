"""Messages the consumer never hands to the worker are read again, not lost (ioc.streams.cursor).

faust-streaming has been reported to drop, after a rebalance, the messages it re-reads from the
committed offset (upstream #216/#221). ``IOC_FAULT_UNDELIVERED`` injects that effect — 2 000
messages of one partition never reach the agent the first time — into the real ``ioc run`` on a
real broker; the worker's read cursor sees the jump, asks Kafka what lies between, seeks back,
and every KPI still equals a recomputation from the raw table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, TopicPartition
from pipeline import FIGURE_QUERIES, FaultFigures, Pipeline

FLOW = "ioc.traffic.flow.v1"
T0 = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)
SEGMENTS = ["TK-HV-01", "QL1A-TK-01", "QL1A-DB-01", "HA-HBT-01", "CT-DNQN-TK", "DT608-HA-01"]


def test_messages_the_consumer_skipped_are_read_again(pipeline: Pipeline) -> None:
    events = [{"event_id": f"s-{i}", "source": "SGTVT-QNA", "area_code": "502",
               "occurred_at": T0 + timedelta(seconds=i // len(SEGMENTS)),
               "segment_id": SEGMENTS[i % len(SEGMENTS)], "vehicle_count": 3 + i % 17,
               "avg_speed_kmh": 35.0, "occupancy": 0.3}
              for i in range(len(SEGMENTS) * 50 * 60)]  # 50 minutes, one reading/s each
    pipeline.send(FLOW, events)
    # the fullest partition of the flow topic loses offsets 300..2299 on their first delivery
    name = pipeline.prefix + FLOW
    probe = Consumer({"bootstrap.servers": pipeline.bootstrap, "group.id": "probe"})
    ends = {p: probe.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
            for p in probe.list_topics(name, timeout=10).topics[name].partitions}
    probe.close()
    partition = max(ends, key=lambda p: ends[p])
    assert ends[partition] > 4000, ends
    pipeline.env["IOC_FAULT_UNDELIVERED"] = f"{FLOW}:{partition}:300:2000"

    run = pipeline.start_run("--exit-when-idle", "3")
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out[-4000:]
    log = run.stdout.log.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "will not be delivered once" in log  # the fault was armed ...
    assert f"{FLOW}[{partition}]: the consumer skipped offsets 300-2299;" in log  # ... noticed

    got = pipeline.query(**FIGURE_QUERIES)
    fig = FaultFigures.of("consumer_skipped_messages", got, (e["event_id"] for e in events),
                          faults=1, partition=partition).report()
    fig.assert_nothing_lost_or_doubled()
