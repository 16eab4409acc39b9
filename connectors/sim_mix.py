"""A realistic mix of every subsystem's events over a window of simulated time, for benchmarks.

Pure and deterministic like the simulators it drives (no Kafka, no sleeping): it steps the same
models that ``ioc simulate all`` paces in real time (:data:`ioc.connectors.simulate.
INTERVAL_SIMULATORS` every :data:`~ioc.connectors.simulate.STEP` of simulated time, traffic at one
reading per segment every ``interval_s``) through a window, and returns every event whose event
time falls inside it, in time order, with the partition key the platform's producer would use.

**Proportions come from the models, not from a table of guesses.** Each model has daily rhythms
and weekday effects, so a window's mix depends on the hours it covers; :func:`weekday_window`
gives the benchmarks a whole, recent working day (Asia/Ho_Chi_Minh) so a run's mix is the same
whatever time it starts. One working day of the reference province (22 road segments read every
10 s; measured with seed 7 on Tuesday 2026-11-24):

=================================  ==========  ========
topic                              events/day  share
=================================  ==========  ========
``ioc.traffic.flow.v1``               190,080   92.8 %
``ioc.traffic.incident.v1``               ~10   <0.01 %
``ioc.egov.portal_check.v1``            8,640    4.2 %
``ioc.cyber.mention.v1``                3,266    1.6 %
``ioc.health.facility_status.v1``       2,210    1.1 %
``ioc.feedback.report.v1``                309    0.15 %
``ioc.edu.attendance.v1``                 108    0.05 %
``ioc.cyber.security_event.v1``           102    0.05 %
``ioc.egov.dossier.v1``                    81    0.04 %
``ioc.security.incident.v1``               57    0.03 %
``ioc.health.disease_case.v1``             36    0.02 %
``ioc.econ.indicator_report.v1``            2   <0.01 %
=================================  ==========  ========

About 205,000 events a day, 2.4 a second on average: traffic sensors dominate, socio-economic
reports are a handful a month. The reference data is one illustrative province, so these are
the benchmark's proportions, not a sizing; ``bench/README.md`` sizes a real province.

**No history.** The slow subsystems' models return a backfill (weeks of cases, dossiers, the
plan year's reports) on their first call so a short demo has something to show. A benchmark of
steady traffic must not start with that burst: the first call anchors each model at the
window's start and its events are dropped, so every event returned has
``start < occurred_at <= end``. The models' scripted episodes (an outbreak, a portal outage, a
surge of reports, a media storm, a congestion episode) are anchored there too and are part of
the mix.

Determinism: the same window, seed and reference data give the same events in the same order
(the models seed every draw from the seed and the event's time and place).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from ioc.connectors.producer import partition_key
from ioc.connectors.simulate import DOMAINS, INTERVAL_SIMULATORS, STEP
from ioc.connectors.simulator import LOCAL_TZ, TrafficSimulator
from ioc.infra.reference import ReferenceData

T = TypeVar("T")

@dataclass(frozen=True)
class MixEvent:
    """One event to produce: logical topic, the producer's partition key, the Avro record."""

    topic: str
    key: bytes
    value: dict[str, Any]

    @property
    def domain(self) -> str:
        return domain_of(self.topic)


def domain_of(topic: str) -> str:
    """``ioc.health.disease_case.v1`` → ``health``."""
    return topic.split(".")[1]


def weekday_window(now: datetime, hours: float = 24.0) -> tuple[datetime, datetime]:
    """``(start, end)`` in UTC: the ``hours`` ending at local midnight after the latest working
    day (Monday–Friday, Asia/Ho_Chi_Minh) that is complete at ``now``. Public holidays are not
    considered."""
    if not 0 < hours <= 24 * 7:
        raise ValueError("hours must be in (0, 168]")
    day = now.astimezone(LOCAL_TZ).date() - timedelta(days=1)  # the last complete local day
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL_TZ)
    end_utc = end.astimezone(UTC)
    return end_utc - timedelta(hours=hours), end_utc


def mixed_events(ref: ReferenceData, start: datetime, end: datetime, *, seed: int = 0,
                 interval_s: float = 10.0,
                 domains: Iterable[str] = DOMAINS) -> list[MixEvent]:
    """Every event of ``domains`` with ``start < occurred_at <= end``, in time order (ties keep
    the order the models emit them: traffic first, then the others in ``DOMAINS`` order)."""
    wanted = set(domains)
    if not wanted <= set(DOMAINS):
        raise ValueError(f"unknown domains {sorted(wanted - set(DOMAINS))}; choose from {DOMAINS}")
    if end <= start:
        raise ValueError("the window must end after it starts")
    if interval_s <= 0:
        raise ValueError("interval_s must be > 0")
    sched = None
    if "traffic" in wanted:
        traffic = TrafficSimulator(ref.segments, seed=seed)
        sched = traffic.schedule(start, rate=len(ref.segments) / interval_s,
                                 duration_s=(end - start).total_seconds())
    models = [make(ref, seed) for name, make in INTERVAL_SIMULATORS.items() if name in wanted]
    for model in models:
        model.events_at(start, STEP.total_seconds())  # anchors it; its backfill is dropped
    out: list[MixEvent] = []
    t = start
    while t < end:
        t = min(t + STEP, end)
        step: list[Any] = list(sched.due(t)) if sched is not None else []
        for model in models:
            step.extend(model.events_at(t, STEP.total_seconds()))
        step.sort(key=lambda e: e.value["occurred_at"])  # stable: ties keep model order
        for ev in step:
            if start < ev.value["occurred_at"] <= end:
                out.append(MixEvent(ev.topic, partition_key(ev.topic, ev.value), ev.value))
    return out


def counts_by_topic(events: Iterable[MixEvent]) -> dict[str, int]:
    """Events per topic, largest first."""
    return dict(Counter(e.topic for e in events).most_common())


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    """Each key's share of the total (0 when there is nothing)."""
    total = sum(counts.values())
    return {k: (v / total if total else 0.0) for k, v in counts.items()}


def stride_sample(items: Sequence[T], n: int) -> list[T]:
    """``n`` items spread evenly over ``items``, in their order (so a sample of a day's events
    keeps its time order and roughly its proportions: a short latency run sees the whole day's
    mix, not its first minutes). All of them when ``n >= len(items)``."""
    if n >= len(items):
        return list(items)
    if n <= 0:
        return []
    return [items[i * len(items) // n] for i in range(n)]


__all__ = ["DOMAINS", "MixEvent", "counts_by_topic", "domain_of", "mixed_events", "shares",
           "stride_sample", "weekday_window"]
