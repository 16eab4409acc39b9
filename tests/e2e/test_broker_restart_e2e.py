"""The Kafka broker restarts mid-stream: producers and the platform reconnect by themselves and
nothing the broker acknowledged is lost or doubled (issue 7). A broker of its own, so the
session's broker is not disturbed.

The same ``ioc run`` lives through the restart and finishes the work itself (``--exit-when-idle``
once the feed stops): the test checks that the producer, the worker (new KPIs) and the sink
(new commits) each resume, and that the KPIs come out equal to a recomputation from the raw
table without any second run to repair them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import find_free_port_pair
from pipeline import (
    FIGURE_QUERIES,
    FLOW,
    FaultFigures,
    Pipeline,
    SteadyProducer,
    fail_with_output,
)

from ioc.infra.local_kafka import LocalKafka
from ioc.infra.settings import Settings


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    kafka = LocalKafka(Settings(data_dir=tmp_path / "broker", kafka_port=find_free_port_pair()))
    kafka.up()
    try:
        yield kafka
    finally:
        kafka.down()


def test_broker_restart_mid_stream_loses_nothing_acknowledged(own_broker: LocalKafka,
                                                               tmp_path: Path) -> None:
    bootstrap = own_broker.settings.bootstrap
    p = Pipeline(bootstrap, tmp_path)
    p.setup()
    # The same processes live through the restart and finish the work themselves: once the
    # feed stops, the worker idles out after flushing every window and the sink drains.
    run = p.start_run("--exit-when-idle", "3")
    feeder = SteadyProducer(bootstrap, p.prefix, rate=200)
    feeder.start()
    timings: dict[str, float] = {}
    try:
        p.wait_for("ioc.kpi.v1", at_least=20, timeout=120)
        down = time.monotonic()
        own_broker.down()  # the broker goes away mid-stream ...
        time.sleep(3)
        own_broker.up()  # ... and comes back on the same port with its data
        back = time.monotonic()
        timings["broker_away_s"] = round(back - down, 1)
        acked_at_return = len(feeder.acked)
        stored_at_return = p.committed("ioc-sink", FLOW)
        kpis_at_return = p.high_watermark("ioc.kpi.v1")
        while len(timings) < 4:  # the producer and the platform carry on by themselves
            if time.monotonic() - back > 120 or run.poll() is not None:
                fail_with_output(p, run, f"no progress after the restart: {timings}")
            if "produce_resumed_s" not in timings and len(feeder.acked) > acked_at_return + 500:
                timings["produce_resumed_s"] = round(time.monotonic() - back, 1)
            if "worker_resumed_s" not in timings and \
                    p.high_watermark("ioc.kpi.v1") > kpis_at_return + 50:
                timings["worker_resumed_s"] = round(time.monotonic() - back, 1)
            if "sink_resumed_s" not in timings and \
                    p.committed("ioc-sink", FLOW) > stored_at_return + 500:
                timings["sink_resumed_s"] = round(time.monotonic() - back, 1)
            time.sleep(0.5)
        feeder.done.set()
        feeder.join(120)
        try:
            out, _ = run.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            fail_with_output(p, run, "ioc run did not finish after the feed stopped")
        assert run.returncode == 0, out[-5000:]
    finally:
        feeder.done.set()
        if run.poll() is None:
            p.kill(run)
    got = p.query(**FIGURE_QUERIES)
    p.close()
    fig = FaultFigures.of("broker_restart", got, feeder.acked, faults=1, sent=len(feeder.sent),
                          delivery_failures=len(feeder.failed), **timings).report()
    assert {r["event_id"] for r in got["fig_ids"]} <= set(feeder.sent)  # nothing foreign
    fig.assert_nothing_lost_or_doubled()  # every acknowledged event once, KPIs exact
    assert dict(fig.extra)["kpi_windows"] != "0"
