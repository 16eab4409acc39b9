"""A three-broker Kafka cluster (KRaft, replication factor 3, min.insync.replicas 2) loses one
broker to SIGKILL mid-stream: nothing the cluster acknowledged (acks=all) is lost or doubled,
and the platform (worker + sink) keeps processing without a restart (issue 7): the producer,
the worker (new KPIs) and the sink (new commits) each resume, and the same ``ioc run``
finishes the work with KPIs equal to a recomputation from the raw table."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from helpers import find_free_ports
from pipeline import (
    FIGURE_QUERIES,
    FLOW,
    FaultFigures,
    Pipeline,
    SteadyProducer,
    fail_with_output,
)

from ioc.infra.kafka_cluster import LocalKafkaCluster

pytestmark = [pytest.mark.kafka_cluster, pytest.mark.serial]


def sink_committed(p: Pipeline) -> int:
    """Flow events the sink committed; -1 while the group's coordinator moves to another
    broker (the probe's own request fails with NOT_COORDINATOR then)."""
    try:
        return p.committed("ioc-sink", FLOW)
    except KafkaException:
        return -1


def kpis_out(p: Pipeline) -> int:
    """KPI records the worker published; -1 while a partition's leader moves."""
    try:
        return p.high_watermark("ioc.kpi.v1")
    except KafkaException:
        return -1


@pytest.fixture
def cluster(tmp_path: Path, kafka_jars: Path) -> Iterator[LocalKafkaCluster]:
    c = LocalKafkaCluster(tmp_path / "cluster", brokers=3, base_port=find_free_ports(6),
                          jars_dir=kafka_jars)
    try:
        c.up(timeout=240)
        yield c
    finally:
        c.down()


def test_one_of_three_brokers_killed_mid_stream_loses_nothing_acknowledged(
        cluster: LocalKafkaCluster, tmp_path: Path) -> None:
    p = Pipeline(cluster.bootstrap, tmp_path,
                 kafka_env={"IOC_TOPIC_REPLICATION_FACTOR": "3"})
    p.setup()
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
    flow = admin.list_topics(p.prefix + FLOW, timeout=10).topics[p.prefix + FLOW]
    assert all(len(part.replicas) == 3 for part in flow.partitions.values())
    # the broker leading partition 0 of the flow topic is the one that dies
    victim = flow.partitions[0].leader
    # The same ioc run lives through the loss and finishes the work itself once the feed stops.
    # Its idle time is longer than the feed's pause while leaders move (10-15 s): an idle exit
    # in that pause would be right ("nothing to read now") but end the worker mid-test.
    run = p.start_run("--exit-when-idle", "25")
    feeder = SteadyProducer(cluster.bootstrap, p.prefix, rate=200)
    feeder.start()
    try:
        p.wait_for("ioc.kpi.v1", at_least=20, timeout=180)
        acked_at_kill = len(feeder.acked)
        stored_at_kill = p.committed("ioc-sink", FLOW)
        kpis_at_kill = kpis_out(p)
        killed_at = time.monotonic()
        cluster.kill(victim)  # SIGKILL: no clean shutdown, no leadership hand-over
        # producers and the platform carry on with two brokers, without a restart
        recovered: dict[str, float] = {}
        while len(recovered) < 3 and time.monotonic() - killed_at < 120:
            time.sleep(1)
            assert run.poll() is None, "ioc run gave up when a broker died"
            if "produce" not in recovered and len(feeder.acked) > acked_at_kill + 1000:
                recovered["produce"] = time.monotonic() - killed_at
            if "worker" not in recovered and kpis_out(p) > kpis_at_kill + 50:
                recovered["worker"] = time.monotonic() - killed_at
            if "sink" not in recovered and sink_committed(p) > stored_at_kill + 1000:
                recovered["sink"] = time.monotonic() - killed_at
        if len(recovered) < 3:
            p.kill(run)
            out = run.stdout.read() if run.stdout else ""
            pytest.fail(f"no progress after the broker died: {recovered}\n{out[-6000:]}")
        feeder.done.set()
        feeder.join(120)
        try:
            out, _ = run.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            fail_with_output(p, run, "ioc run did not finish after the feed stopped")
        assert run.returncode == 0, out[-4000:]
    finally:
        feeder.done.set()
        if run.poll() is None:
            p.kill(run)
    got = p.query(**FIGURE_QUERIES)
    p.close()
    fig = FaultFigures.of("cluster_broker_killed", got, feeder.acked, faults=1,
                          sent=len(feeder.sent), delivery_failures=len(feeder.failed),
                          victim_node=victim,
                          **{f"{k}_resumed_s": round(v, 1) for k, v in recovered.items()}
                          ).report()
    assert {r["event_id"] for r in got["fig_ids"]} <= set(feeder.sent)  # nothing foreign
    fig.assert_nothing_lost_or_doubled()  # every acknowledged event once, KPIs exact
