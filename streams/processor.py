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
from ioc.streams.domain import Domain, Holds, Progress, Record, Rule
from ioc.streams.engine import TP, KpiEngine, Outcome, Position


@dataclass
class Step:
    outcome: Outcome | None = None
    kpis: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    released: list[Position] = field(default_factory=list)


class Processor:
    """Feeds events to the KPI engine and to every domain's rules.

    **Timer clock.** Rules' timers (a report past due, a monthly report missing, an alert
    auto-resolving) run on ``timer_now``: the highest event time seen on any partition, carried
    forward at wall-clock speed while no newer event arrives, and never moving backwards. With
    live data that is the wall clock; a replay of old data runs its timers in the data's own
    time; a test drives it with events and the ``clock`` it passes in.
    """

    def __init__(self, domains: Sequence[Domain],
                 allowed_lateness: timedelta = timedelta(minutes=2),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.domains = list(domains)
        self.clock = clock
        self.engine = KpiEngine([f for d in self.domains for f in d.families], allowed_lateness,
                                clock)
        self.rules: list[Rule] = [r for d in self.domains for r in d.rules]
        self._released: list[Position] = []
        self.holds: dict[int, Holds] = {}
        self.progress = Progress()
        for rule in self.rules:
            holds = Holds(self.engine, self._released, self.progress)
            self.holds[id(rule)] = holds
            rule.bind(holds)
        self._rules_by_topic: dict[str, list[Rule]] = {}
        for rule in self.rules:
            for topic in rule.topics:
                self._rules_by_topic.setdefault(topic, []).append(rule)
        self._max_wm: datetime | None = None
        self._max_wm_wall = clock()
        self._timer_now: datetime | None = None

    @property
    def topics(self) -> list[str]:
        return sorted({t for d in self.domains for t in d.topics})

    def restore_alerts(self, latest: list[Mapping[str, Any]]) -> None:
        for rule in self.rules:
            rule.restore(latest)

    def _route(self, records: list[Record], step: Step) -> None:
        for rec in records:
            (step.alerts if "alert_id" in rec else step.kpis).append(rec)

    def _drain_released(self, step: Step) -> None:
        if self._released:
            step.released.extend(self._released)
            self._released.clear()

    def handle(self, topic: str, event: Mapping[str, Any], tp: TP, offset: int) -> Step:
        pos: Position = (tp, offset)
        self.engine.retain(pos)
        outcome = self.engine.add(topic, event, tp, offset)
        step = Step(outcome=outcome)
        if outcome is not Outcome.DUPLICATE:
            wm = self.engine.watermarks.get(tp, event["occurred_at"])
            for rule in self._rules_by_topic.get(topic, ()):
                holds = self.holds[id(rule)]
                holds.current = pos
                try:
                    self._route(rule.on_event(topic, event, wm), step)
                finally:
                    holds.current = None
        self.engine.unretain(pos, self._released)
        self._drain_released(step)
        return step

    def timer_now(self) -> datetime | None:
        """See the class docstring; ``None`` until the first event."""
        wall = self.clock()
        if self.engine.watermarks:
            wm = max(self.engine.watermarks.values())
            if self._max_wm is None or wm > self._max_wm:
                self._max_wm, self._max_wm_wall = wm, wall
        if self._max_wm is None:
            return None
        candidate = self._max_wm + max(wall - self._max_wm_wall, timedelta(0))
        if self._timer_now is None or candidate > self._timer_now:
            self._timer_now = candidate
        return self._timer_now

    def set_unread(self, unread: Mapping[TP, int | None]) -> None:
        """The worker's assigned partitions and how many of their messages it has not handled
        yet (``None``: end not known yet); called before each tick (see
        :class:`~ioc.streams.domain.Progress`)."""
        self.progress.unread = dict(unread)

    def tick(self) -> Step:
        adv = self.engine.advance()
        step = Step(kpis=adv.kpis, released=adv.released)
        for win in adv.closed:
            if win.quiet and not win.family.retain_closed:
                continue  # rules saw this window (complete) before the restart
            for rule in self.rules:
                self._route(rule.on_window_closed(win), step)
        now = self.timer_now()
        if now is not None:
            for rule in self.rules:
                self._route(rule.on_timer(now), step)
        self._drain_released(step)
        return step

    def flush(self) -> list[dict[str, Any]]:
        return self.engine.flush()

    def drop_partitions(self, tps: set[TP]) -> None:
        """Forget everything fed by partitions this worker lost in a rebalance."""
        for rule in self.rules:
            keys = self.holds[id(rule)].drop_partitions(tps)
            if keys:
                rule.forget(keys)
        self.engine.drop_partitions(tps)

    @property
    def held_by_rules(self) -> int:
        return sum(len(h) for h in self.holds.values())


def TrafficProcessor(segments: Mapping[str, RoadSegment], areas: Mapping[str, Area],
                     allowed_lateness: timedelta = timedelta(minutes=2),
                     clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Processor:
    """A processor with the traffic domain only (tests and the benchmark's logic-only run)."""
    from ioc.streams.traffic import traffic_domain

    return Processor([traffic_domain(segments, areas)], allowed_lateness, clock)
