"""ClickHouse goes away for a while under a steady stream (issue 7): the sink backs off (no
crash, no busy spin; its log and metrics say why), the Kafka lag grows, and when ClickHouse is
back the sink catches up — every acknowledged event stored exactly once, KPIs equal to a
recomputation from the raw table.

The outage is real: the sink writes over HTTP (``IOC_CLICKHOUSE_URL=http://…``) through a TCP
proxy to a ClickHouse HTTP endpoint serving the test's store (:mod:`outage`); the test stops
the proxy, so connections are refused and the open ones reset, then starts it again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import find_free_port_pair
from outage import ClickHouseOverHttp, TcpProxy
from pipeline import FIGURE_QUERIES, FLOW, FaultFigures, Pipeline, SteadyProducer, scrape

OUTAGE_S = 6.0


def sink_metric(port: int, prefix: str) -> float:
    """The sum of the sink's samples whose key starts with ``prefix``."""
    return sum(v for k, v in scrape(port + 1).items() if k.startswith(prefix))


def clickhouse_up(port: int, proxy: TcpProxy) -> float:
    return scrape(port + 1)[f'ioc_sink_clickhouse_up{{store="http://127.0.0.1:{proxy.port}"}}']


def test_clickhouse_outage_backs_off_lags_and_catches_up_exactly(kafka_broker: str,
                                                                 tmp_path: Path) -> None:
    p = Pipeline(kafka_broker, tmp_path)
    p.setup()  # migrations and reference data in the embedded store ...
    store = ClickHouseOverHttp(p.data_dir / "clickhouse", tmp_path / "clickhouse-http.log")
    store.start()  # ... which is then served over HTTP
    proxy = TcpProxy(store.port)
    proxy.start()
    port = find_free_port_pair()
    p.env.update({"IOC_CLICKHOUSE_URL": f"http://127.0.0.1:{proxy.port}",
                  "IOC_METRICS_PORT": str(port)})
    run = p.start_run("--exit-when-idle", "3")  # finishes every window once the feed stops
    feeder = SteadyProducer(kafka_broker, p.prefix, rate=100)
    feeder.start()
    figures: dict[str, object] = {}
    try:
        p.wait_for("ioc.kpi.v1", at_least=20, timeout=120)
        deadline = time.monotonic() + 60
        while p.committed("ioc-sink", FLOW) < 200:  # the sink writes through the proxy
            assert time.monotonic() < deadline and run.poll() is None, "the sink is not writing"
            time.sleep(0.5)
        assert clickhouse_up(port, proxy) == 1.0

        proxy.stop()  # ClickHouse is gone: refused, open connections reset
        cut = time.monotonic()
        time.sleep(1.5)  # a round already written when the cut came may still commit
        stalled_at = p.committed("ioc-sink", FLOW)
        lag_at_cut = p.high_watermark(FLOW) - stalled_at
        time.sleep(OUTAGE_S - (time.monotonic() - cut))
        # backing off: alive, not committing, lag growing, metrics and log say why
        assert run.poll() is None, "ioc run gave up while ClickHouse was away"
        assert p.committed("ioc-sink", FLOW) == stalled_at
        lag = p.high_watermark(FLOW) - stalled_at
        assert lag >= lag_at_cut + 100  # the stream goes on into Kafka
        assert clickhouse_up(port, proxy) == 0.0
        retries = sink_metric(port, "ioc_sink_retries_total")
        assert 2 <= retries <= 12, retries  # 1 s, 2 s, 4 s …: no busy spin
        figures.update(outage_s=round(time.monotonic() - cut, 1), retries=int(retries),
                       lag_at_end_of_outage=lag)

        proxy.start()  # ClickHouse is back
        back = time.monotonic()
        while (done := p.committed("ioc-sink", FLOW)) < p.high_watermark(FLOW) - 400:
            assert time.monotonic() - back < 60, f"the sink did not catch up: {done} committed"
            assert run.poll() is None
            time.sleep(0.5)
        figures["caught_up_s"] = round(time.monotonic() - back, 1)
        assert clickhouse_up(port, proxy) == 1.0
        feeder.done.set()
        feeder.join(60)
        out, _ = run.communicate(timeout=120)  # the worker idles out, the sink drains
        assert run.returncode == 0, out[-3000:]
    finally:
        feeder.done.set()
        if run.poll() is None:
            p.kill(run)
        proxy.stop()
        store.stop()
    failed = [ln for ln in out.splitlines() if "ClickHouse insert into" in ln
              and "failed (unreachable, attempt" in ln]  # the log says what and why
    assert failed and all("offsets not committed; retrying in" in ln for ln in failed)
    assert any("Connection refused" in ln for ln in failed), out[-3000:]
    assert "succeeded after" in out
    got = p.query(**FIGURE_QUERIES)
    p.close()
    fig = FaultFigures.of("clickhouse_outage", got, feeder.acked, faults=1,
                          sent=len(feeder.sent), **figures).report()
    assert not feeder.failed
    assert {r["event_id"] for r in got["fig_ids"]} <= set(feeder.sent)
    fig.assert_nothing_lost_or_doubled()
    assert fig.events > 1000  # a steady stream of more than 10 s
    assert pytest.approx(fig.events, rel=0.01) == len(feeder.sent)
