"""The processor: the KPI engine plus every domain's alert rules, still with no Kafka in it.

The Faust agent calls :meth:`Processor.handle` for each decoded event and
:meth:`Processor.tick` periodically; both return what to publish (KPI and alert records) and
which source positions may now be acknowledged. Tests drive it directly with a controlled clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.infra.reference import Area, RoadSegment
from ioc.streams.domain import Domain, Rule
from ioc.streams.engine import TP, KpiEngine, Outcome, Position


@dataclass
class Step:
    outcome: Outcome | None = None
    kpis: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    released: list[Position] = field(default_factory=list)


class Processor:
    def __init__(self, domains: Sequence[Domain],
                 allowed_lateness: timedelta = timedelta(minutes=2),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.domains = list(domains)
        self.engine = KpiEngine([f for d in self.domains for f in d.families], allowed_lateness,
                                clock)
        self.rules: list[Rule] = [r for d in self.domains for r in d.rules]
        self._rules_by_topic: dict[str, list[Rule]] = {}
        for rule in self.rules:
            for topic in rule.topics:
                self._rules_by_topic.setdefault(topic, []).append(rule)

    @property
    def topics(self) -> list[str]:
        return sorted({t for d in self.domains for t in d.topics})

    def restore_alerts(self, latest: list[Mapping[str, Any]]) -> None:
        for rule in self.rules:
            rule.restore(latest)

    def handle(self, topic: str, event: Mapping[str, Any], tp: TP, offset: int) -> Step:
        outcome, released = self.engine.process(topic, event, tp, offset)
        step = Step(outcome=outcome, released=released)
        if outcome is not Outcome.DUPLICATE:
            wm = self.engine.watermarks.get(tp, event["occurred_at"])
            for rule in self._rules_by_topic.get(topic, ()):
                step.alerts.extend(rule.on_event(topic, event, wm))
        return step

    def tick(self) -> Step:
        adv = self.engine.advance()
        step = Step(kpis=adv.kpis, released=adv.released)
        for win in adv.closed:
            for rule in self.rules:
                step.alerts.extend(rule.on_window_closed(win))
        if self.engine.watermarks:
            wm = max(self.engine.watermarks.values())
            for rule in self.rules:
                step.alerts.extend(rule.expire(wm))
        return step

    def flush(self) -> list[dict[str, Any]]:
        return self.engine.flush()


def TrafficProcessor(segments: Mapping[str, RoadSegment], areas: Mapping[str, Area],
                     allowed_lateness: timedelta = timedelta(minutes=2),
                     clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Processor:
    """A processor with the traffic domain only (tests and the benchmark's logic-only run)."""
    from ioc.streams.traffic import traffic_domain

    return Processor([traffic_domain(segments, areas)], allowed_lateness, clock)
