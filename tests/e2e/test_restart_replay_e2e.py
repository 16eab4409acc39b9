"""A restart replays from the oldest event a rule still holds (an open citizen report) — far back
into windows that closed before it. Through the real commands: the daily count published before
the restart is not replaced by the partial count of the replay (``ioc.streams.checkpoints``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline import Pipeline

TOPIC = "ioc.feedback.report.v1"
DAY1 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 08:00 in Quảng Nam
H = timedelta(hours=1)
LATER = DAY1 + timedelta(days=35)


def report(rid: str, status: str, at: datetime) -> dict[str, Any]:
    return {"event_id": f"{rid}-{status}", "occurred_at": at, "source": "TTGSDH",
            "area_code": "503", "report_id": rid, "status": status, "channel": "app",
            "category": "waste", "assigned_agency": "", "due_at": None, "rating": None}


def daily_counts(p: Pipeline) -> dict[str, float]:
    rows = p.query(kpi="SELECT toString(window_start) AS ws, value FROM ioc.kpi FINAL "
                       "WHERE kpi = 'feedback.new_reports' AND `window` = '1d'")["kpi"]
    return {r["ws"][:10]: r["value"] for r in rows}


def test_daily_count_survives_a_restart_that_replays_from_an_open_report(pipeline: Pipeline
                                                                          ) -> None:
    # Day 1: three reports come and go, X is submitted and stays open, two more come and go.
    first = [report("A1", "submitted", DAY1), report("A1", "rejected", DAY1 + 0.5 * H),
             report("A2", "submitted", DAY1 + H), report("A2", "rejected", DAY1 + 1.5 * H),
             report("A3", "submitted", DAY1 + 2 * H), report("A3", "rejected", DAY1 + 2.5 * H),
             report("X", "submitted", DAY1 + 3 * H),
             report("A4", "submitted", DAY1 + 4 * H), report("A4", "rejected", DAY1 + 4.5 * H),
             report("A5", "submitted", DAY1 + 5 * H), report("A5", "rejected", DAY1 + 5.5 * H),
             # 35 days later: day 1 closed, and so long ago that the rule lets go of the
             # closed reports (it keeps them for the 30-day rates); X stays held
             report("B1", "submitted", LATER), report("B1", "rejected", LATER + H)]
    pipeline.send(TOPIC, first)
    pipeline.run_until_idle()
    assert daily_counts(pipeline)["2026-11-01"] == 6.0  # local day 2 Nov starts 1 Nov 17:00 UTC
    # The worker could only commit up to X's submission, which the feedback rule holds.
    assert pipeline.committed("ioc-streams", TOPIC) == 6

    # The restart replays from X: A4 and A5 of day 1 come again, A1–A3 do not.
    pipeline.send(TOPIC, [report("C1", "submitted", LATER + 24 * H)])
    pipeline.run_until_idle()
    counts = daily_counts(pipeline)
    assert counts == {"2026-11-01": 6.0, "2026-12-06": 1.0, "2026-12-07": 1.0}
