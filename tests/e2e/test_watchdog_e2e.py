"""A stalled stream worker is noticed, reported and restarted, and nothing is lost (issue 7).

The fault is real: ``IOC_FAULT_BLOCK_LOOP_AFTER_S`` makes the worker's event loop block in a
``time.sleep`` once; the watchdog thread notices the missing heartbeat, publishes a critical
``platform.worker_stalled`` alert, and restarts ``ioc run`` in place (same PID); the new worker
resolves the alert once it makes progress, and the KPIs come out exact.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import find_free_port_pair
from pipeline import FIGURE_QUERIES, FaultFigures, Pipeline

pytestmark = pytest.mark.serial  # stall timeouts: a busy neighbour would look like a stall

T0 = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)
SEGMENTS = ["TK-HV-01", "QL1A-TK-01", "HA-HBT-01"]


def flows(first: int, minutes: int) -> list[dict[str, Any]]:
    return [{"event_id": f"w-{m}-{s}", "occurred_at": T0 + timedelta(minutes=m, seconds=s),
             "source": "SGTVT-QNA", "area_code": "502", "segment_id": seg,
             "vehicle_count": 10 + m % 7, "avg_speed_kmh": 35.0, "occupancy": 0.2}
            for m in range(first, first + minutes) for s, seg in enumerate(SEGMENTS)]


def metric(port: int, name: str) -> float | None:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_stalled_worker_is_reported_restarted_and_loses_nothing(pipeline: Pipeline) -> None:
    port = find_free_port_pair()
    pipeline.env.update({"IOC_STALL_TIMEOUT_S": "4", "IOC_FAULT_BLOCK_LOOP_AFTER_S": "5",
                         "IOC_METRICS_PORT": str(port)})
    before, after = flows(0, 30), flows(30, 30) + flows(120, 1)  # the last moves time on
    pipeline.send("ioc.traffic.flow.v1", before)
    run = pipeline.start_run()
    try:
        deadline = time.monotonic() + 120
        restarts = None
        while restarts != 1.0:  # the same process, restarted in place, says so
            assert time.monotonic() < deadline, "the worker was not restarted"
            assert run.poll() is None, run.stdout.read() if run.stdout else ""
            time.sleep(1)
            restarts = metric(port, "ioc_stream_watchdog_restarts")
        pipeline.send("ioc.traffic.flow.v1", after)
        deadline = time.monotonic() + 120
        while pipeline.committed("ioc-sink", "ioc.traffic.flow.v1") < len(before) + len(after):
            assert time.monotonic() < deadline, "the restarted platform did not catch up"
            time.sleep(1)
        assert metric(port, "ioc_stream_stalled") == 0.0  # the new worker is healthy
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(60)
    pipeline.env.pop("IOC_FAULT_BLOCK_LOOP_AFTER_S")
    pipeline.env["IOC_METRICS_PORT"] = "0"
    pipeline.run_until_idle(idle_s=3.0)
    got = pipeline.query(
        **FIGURE_QUERIES,
        alert="SELECT severity, status, domain, summary, ends_at IS NOT NULL AS ended "
              "FROM ioc.alerts FINAL WHERE rule = 'platform.worker_stalled'",
        raw="SELECT count() AS n FROM ioc.traffic_flow FINAL",
        hours="SELECT toHour(window_start) AS h, sum(value) AS v FROM ioc.kpi FINAL "
              "WHERE kpi = 'traffic.vehicle_count' AND `window` = '1h' GROUP BY h ORDER BY h")
    fig = FaultFigures.of("watchdog_stalled_worker", got,
                          (e["event_id"] for e in before + after), faults=1).report()
    fig.assert_nothing_lost_or_doubled()
    assert got["raw"] == [{"n": len(before) + len(after)}]
    expected: dict[int, float] = {}
    for e in before + after:
        expected[e["occurred_at"].hour] = expected.get(e["occurred_at"].hour, 0) + \
            e["vehicle_count"]
    assert {r["h"]: r["v"] for r in got["hours"]} == expected
    [alert] = got["alert"]
    assert (alert["severity"], alert["status"], alert["domain"], alert["ended"]) == (
        "critical", "resolved", "platform", 1)
    assert "hoạt động trở lại" in alert["summary"]
