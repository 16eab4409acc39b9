"""Public order and cyber security through the real broker, worker, sink and chDB."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline import Pipeline

PANELS = r"""
import json, sys
from datetime import datetime
from ioc.connectors.clickhouse import connect
from ioc.dashboards.build import render_dict
from ioc.dashboards.testing import problems, run_panel_queries
url, start, end = sys.argv[1:4]
client = connect(url)
out = {}
for name in ("security", "cyber"):
    board = render_dict(name)
    res = run_panel_queries(client, "ioc", board, datetime.fromisoformat(start),
                            datetime.fromisoformat(end), strict=False)
    out[name] = {"problems": problems(board, res, require_rows=False),
                 "rows": {t: len(r.rows) for t, r in res.items()}}
print(json.dumps(out, ensure_ascii=False))
"""

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 08:00 in Quảng Nam


def mention(i: int, minute: float, score: float, topic: str = "dat_dai") -> dict[str, Any]:
    return {"event_id": f"m-{topic}-{i}", "occurred_at": T0 + timedelta(minutes=minute),
            "source": "STTTT-QNA", "area_code": "", "channel": "facebook", "topic": topic,
            "sentiment_score": score, "reach": 1000, "url": ""}


def test_public_order_and_cyber_kpis_and_alerts(pipeline: Pipeline) -> None:
    incident = {"event_id": "an-1", "occurred_at": T0 + timedelta(minutes=10),
                "source": "CA-QNA", "area_code": "503", "incident_type": "fire",
                "severity": "critical", "description": "Cháy nhà dân", "casualties": 0,
                "address": "", "lat": None, "lon": None}
    minor = dict(incident, event_id="an-2", incident_type="theft", severity="minor",
                 occurred_at=T0 + timedelta(minutes=20))
    pipeline.send("ioc.security.incident.v1", [incident, minor])
    # 08:00–09:00: 24 mentions, 15 negative (0.625) → warning at 09:00;
    # 09:00–10:00: 10 mentions, all neutral → resolved at 10:00; 10:05 moves the watermark.
    mentions = [mention(i, i * 2.5, -0.8 if i < 15 else 0.3) for i in range(24)]
    mentions += [mention(100 + i, 60 + i * 5, 0.1) for i in range(10)]
    mentions.append(mention(999, 125, 0.0))
    pipeline.send("ioc.cyber.mention.v1", mentions)
    pipeline.run_until_idle()
    got = pipeline.query(
        kpi="SELECT kpi, `window`, toString(window_start) AS ws, area_code, entity, value, "
            "sample_count FROM ioc.kpi FINAL WHERE kpi LIKE 'security.%' OR kpi LIKE 'cyber.%'",
        alerts="SELECT rule, severity, status, toString(starts_at) AS starts, "
               "toString(ends_at) AS ends, summary FROM ioc.alerts FINAL ORDER BY rule",
        raw="SELECT (SELECT count() FROM ioc.security_incident FINAL) AS incidents, "
            "(SELECT count() FROM ioc.cyber_mention FINAL) AS mentions")
    assert got["raw"] == [{"incidents": 2, "mentions": 35}]
    k = {(r["kpi"], r["window"], r["ws"][11:16], r["entity"]): r for r in got["kpi"]}
    fire = k[("security.incidents", "1h", "01:00", "fire")]
    assert (fire["value"], fire["area_code"]) == (1.0, "503")
    assert k[("security.incidents", "1h", "01:00", "theft")]["value"] == 1.0
    share = k[("cyber.negative_share", "1h", "01:00", "dat_dai")]
    assert (share["value"], share["sample_count"]) == (15 / 24, 24)
    assert k[("cyber.mentions", "1h", "02:00", "dat_dai")]["value"] == 10.0
    alerts = {(a["rule"], a["status"]): a for a in got["alerts"]}
    negative = alerts[("cyber.negative_share", "resolved")]
    assert negative["starts"].startswith("2026-11-02 02:00:00")
    assert negative["ends"].startswith("2026-11-02 03:00:00")
    # the fire alert fired at once and closed itself an hour later (event time moved on)
    critical = alerts[("security.critical_incident", "resolved")]
    assert critical["severity"] == "critical"
    assert critical["starts"].startswith("2026-11-02 01:10:00")
    assert critical["ends"].startswith("2026-11-02 02:10:00")
    assert "Hội An" in critical["summary"]

    # every panel of both wall screens runs on what the pipeline stored
    proc = subprocess.run([sys.executable, "-c", PANELS, pipeline.clickhouse_url,
                           (T0 - timedelta(hours=1)).isoformat(),
                           (T0 + timedelta(hours=3)).isoformat()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    panels = json.loads(proc.stdout)
    assert panels["security"]["problems"] == {} and panels["cyber"]["problems"] == {}
    assert sum(panels["security"]["rows"].values()) > 0
    assert sum(panels["cyber"]["rows"].values()) > 0
