"""The benchmark's mix of every subsystem: a recent whole working day, no history, every
subsystem present in believable proportions, valid events with the producer's keys, and the
same events for the same window and seed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ioc.connectors.producer import partition_key
from ioc.connectors.sim_mix import (
    counts_by_topic,
    domain_of,
    mixed_events,
    shares,
    stride_sample,
    weekday_window,
)
from ioc.connectors.simulate import DOMAINS
from ioc.infra.reference import load_reference
from ioc.schemas.serde import Serde
from ioc.schemas.validation import semantic_errors

REF = load_reference()
# Tuesday 2026-11-24, 08:00–09:00 in Quảng Nam: office hours, so every subsystem reports.
START = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.mark.parametrize(("now", "end"), [
    # Wednesday 10:00 local → Tuesday's local midnight
    (datetime(2026, 11, 25, 3, 0, tzinfo=UTC), datetime(2026, 11, 24, 17, 0, tzinfo=UTC)),
    # Monday 10:00 local → Friday's (the weekend is skipped)
    (datetime(2026, 11, 30, 3, 0, tzinfo=UTC), datetime(2026, 11, 27, 17, 0, tzinfo=UTC)),
    # Wednesday 00:00 local exactly: Tuesday has just become complete
    (datetime(2026, 11, 24, 17, 0, tzinfo=UTC), datetime(2026, 11, 24, 17, 0, tzinfo=UTC)),
    # Tuesday 23:59 local: Tuesday is not complete yet → Monday's
    (datetime(2026, 11, 24, 16, 59, tzinfo=UTC), datetime(2026, 11, 23, 17, 0, tzinfo=UTC)),
])
def test_window_is_the_latest_complete_working_day(now: datetime, end: datetime) -> None:
    assert weekday_window(now) == (end - timedelta(hours=24), end)
    assert weekday_window(now, 6) == (end - timedelta(hours=6), end)


def test_window_hours_must_be_positive() -> None:
    with pytest.raises(ValueError, match="hours"):
        weekday_window(START, 0)


def test_an_office_hour_has_every_subsystem_traffic_dominating_and_no_history() -> None:
    events = mixed_events(REF, START, END, seed=0)
    counts = counts_by_topic(events)
    assert {domain_of(t) for t in counts} == set(DOMAINS)
    assert counts["ioc.traffic.flow.v1"] == 22 * 360  # 22 segments, one reading every 10 s
    share = shares(counts)
    assert share["ioc.traffic.flow.v1"] > 0.85
    assert share["ioc.econ.indicator_report.v1"] < 0.001
    times = [e.value["occurred_at"] for e in events]
    assert times == sorted(times)
    assert START < times[0] and times[-1] <= END  # the models' backfills are left out
    assert len({(e.topic, e.value["event_id"]) for e in events}) == len(events)
    serde = Serde()
    for e in events:
        assert e.key == partition_key(e.topic, e.value)
        serde.encode(e.topic, e.value)  # schema-valid
        assert semantic_errors(e.topic, e.value) == [], e.value
        if e.topic == "ioc.feedback.report.v1":
            assert "reporter_name" not in e.value and "reporter_phone" not in e.value


def test_same_window_and_seed_give_the_same_events() -> None:
    a = mixed_events(REF, START, END, seed=3, domains=("traffic", "feedback", "egov"))
    b = mixed_events(REF, START, END, seed=3, domains=("traffic", "feedback", "egov"))
    assert [(e.topic, e.key, e.value) for e in a] == [(e.topic, e.key, e.value) for e in b]
    assert {e.domain for e in a} == {"traffic", "feedback", "egov"}


def test_unknown_domain_and_empty_window_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown domains"):
        mixed_events(REF, START, END, domains=("traffic", "weather"))
    with pytest.raises(ValueError, match="window"):
        mixed_events(REF, END, START)


def test_stride_sample_spreads_evenly_and_keeps_order() -> None:
    assert stride_sample(range(10), 3) == [0, 3, 6]
    assert stride_sample(range(10), 5) == [0, 2, 4, 6, 8]
    assert stride_sample([1, 2], 5) == [1, 2]
    assert stride_sample([1, 2], 0) == []
