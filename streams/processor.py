"""The traffic processor: KPI engine plus alert rules, still with no Kafka in it.

The Faust agent calls :meth:`handle` for each decoded event and :meth:`tick` periodically;
both return what to publish (KPI and alert records) and which source positions may now be
acknowledged. Tests drive it directly with a controlled clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ioc.infra.reference import Area, RoadSegment
from ioc.streams.engine import TP, KpiEngine, Outcome, Position
from ioc.streams.rules import CongestionRule, CriticalIncidentRule
from ioc.streams.traffic import INCIDENT_TOPIC, traffic_families


@dataclass
class Step:
    outcome: Outcome | None = None
    kpis: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    released: list[Position] = field(default_factory=list)


class TrafficProcessor:
    def __init__(self, segments: Mapping[str, RoadSegment], areas: Mapping[str, Area],
                 allowed_lateness: timedelta = timedelta(minutes=2),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = KpiEngine(traffic_families(segments), allowed_lateness, clock)
        self.congestion = CongestionRule(segments)
        self.incidents = CriticalIncidentRule(segments, areas)

    def restore_alerts(self, latest: list[Mapping[str, Any]]) -> None:
        self.congestion.restore(latest)

    def handle(self, topic: str, event: Mapping[str, Any], tp: TP, offset: int) -> Step:
        outcome, released = self.engine.process(topic, event, tp, offset)
        step = Step(outcome=outcome, released=released)
        if topic == INCIDENT_TOPIC and outcome is not Outcome.DUPLICATE:
            wm = self.engine.watermarks.get(tp, event["occurred_at"])
            if event["occurred_at"] + self.incidents.auto_resolve > wm:
                step.alerts.extend(self.incidents.on_incident(event))
        return step

    def tick(self) -> Step:
        adv = self.engine.advance()
        step = Step(kpis=adv.kpis, released=adv.released)
        for win in adv.closed:
            if win.family.name != "traffic.speed.5m":
                continue
            for kpi, value, _n in win.acc.results():
                if kpi == "traffic.congestion_index":
                    step.alerts.extend(self.congestion.on_window(
                        win.entity, win.area_code, win.start, win.end, value))
        if self.engine.watermarks:
            step.alerts.extend(self.incidents.expire(max(self.engine.watermarks.values())))
        return step

    def flush(self) -> list[dict[str, Any]]:
        return self.engine.flush()
