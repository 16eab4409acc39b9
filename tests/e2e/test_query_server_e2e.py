"""Analysts query the running platform: a real ``ioc run`` with ingestion going on, reached
through its query server by clickhouse-connect's HTTP client, plain HTTP and ``ioc sql`` — and
``ioc sql`` again once the platform has stopped."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from helpers import find_free_port_pair
from pipeline import Pipeline

FLOW = "ioc.traffic.flow.v1"
SEGMENTS = ("TK-HV-01", "QL1A-TK-01")


def flow(i: int, at: datetime) -> dict[str, Any]:
    return {"event_id": f"qs-{i}", "occurred_at": at, "source": "SGTVT-QNA",
            "area_code": "502", "segment_id": SEGMENTS[i % 2], "vehicle_count": 5 + i % 7,
            "avg_speed_kmh": 30.0 + i % 20, "occupancy": 0.2}


def wait_for(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_analysts_query_the_running_platform_and_then_the_stopped_one(
        pipeline: Pipeline) -> None:
    port = find_free_port_pair()
    pipeline.env.update({"IOC_QUERY_PORT": str(port), "IOC_QUERY_MAX_EXECUTION_S": "5",
                         "IOC_QUERY_MAX_RESULT_ROWS": "20000"})
    stop = threading.Event()

    def ingest() -> None:  # ~40 traffic readings a second for as long as the test queries
        i, start = 0, datetime.now(UTC) - timedelta(minutes=30)
        while not stop.is_set():
            pipeline.send(FLOW, [flow(i + k, start + timedelta(seconds=i + k))
                                 for k in range(20)])
            i += 20
            stop.wait(0.5)

    producer = threading.Thread(target=ingest, daemon=True)
    producer.start()
    run = pipeline.start_run()
    try:
        users_file = pipeline.data_dir / "query-users"
        line = wait_for("the generated users file", lambda: users_file.read_text().strip())
        assert users_file.stat().st_mode & 0o077 == 0
        password = dict(x.split(":", 1) for x in line.splitlines()
                        if not x.startswith("#"))["analyst"]
        wait_for("the query server", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{port}/ping", timeout=2).read() == b"Ok.\n")
        client = clickhouse_connect.get_client(host="127.0.0.1", port=port,
                                               username="analyst", password=password)

        def stored() -> int:
            return int(client.query("SELECT count() FROM traffic_flow FINAL").result_rows[0][0])

        first = wait_for("rows stored by the sink", stored)
        wait_for("more rows while we watch", lambda: stored() > first)
        rows = client.query("SELECT segment_name, count() AS n FROM v_traffic_flow "
                            "GROUP BY segment_name ORDER BY segment_name").result_rows
        assert {name for name, _ in rows} == {"Đường Hùng Vương (Tam Kỳ)",
                                              "Quốc lộ 1A đoạn qua Tam Kỳ"}

        # read-only: the client's own insert path is refused by the server
        with pytest.raises(DatabaseError) as err:
            client.insert("ioc.traffic_flow", [["x", datetime.now(UTC)]],
                          column_names=["event_id", "occurred_at"])
        assert err.value.code == 164
        with pytest.raises(DatabaseError) as err:
            clickhouse_connect.get_client(host="127.0.0.1", port=port, username="analyst",
                                          password=password + "x")
        assert err.value.code == 516
        with pytest.raises(DatabaseError) as err:
            client.query("SELECT number FROM numbers(50000)")
        assert err.value.code == 396

        # a query running into the time limit does not hold up the sink meanwhile
        slow: dict[str, Any] = {}

        def run_slow() -> None:
            started = time.monotonic()
            try:
                client2 = clickhouse_connect.get_client(host="127.0.0.1", port=port,
                                                        username="analyst", password=password)
                client2.query("SELECT count() FROM system.numbers")
            except DatabaseError as exc:
                slow["code"] = exc.code
            slow["seconds"] = time.monotonic() - started

        before = stored()
        thread = threading.Thread(target=run_slow)
        thread.start()
        time.sleep(0.5)
        grew_meanwhile = wait_for("rows stored during the slow query",
                                  lambda: stored() > before and thread.is_alive(), timeout=10)
        thread.join(30)
        assert grew_meanwhile and slow["code"] == 159 and slow["seconds"] < 20

        # curl-like: plain HTTP, basic auth, FORMAT JSONEachRow
        sql = ("SELECT segment_id, count() AS n FROM v_traffic_flow GROUP BY segment_id "
               "ORDER BY segment_id FORMAT JSONEachRow")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/?" + urllib.parse.urlencode({"query": sql}),
            headers={"Authorization": "Basic "
                     + base64.b64encode(f"analyst:{password}".encode()).decode()})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 (local server)
            assert resp.headers["X-ClickHouse-Format"] == "JSONEachRow"
            lines = [json.loads(x) for x in resp.read().splitlines()]
        assert [x["segment_id"] for x in lines] == sorted(SEGMENTS)

        # ioc sql while the platform runs goes through the query server
        out = pipeline.ioc("sql", "SELECT count() AS n FROM ioc.v_traffic_flow",
                           "--format", "json")
        assert json.loads(out.stdout)["n"] >= first
    finally:
        stop.set()
        producer.join(10)
        pipeline.kill(run)

    # stopped: ioc sql opens the store itself
    out = wait_for("ioc sql on the stopped platform", lambda: pipeline.ioc(
        "sql", "SELECT count() AS n FROM ioc.v_traffic_flow", "--format", "json"), timeout=20)
    assert json.loads(out.stdout)["n"] >= first
