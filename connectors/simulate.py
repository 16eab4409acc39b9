"""Pacing simulated events onto Kafka in real time (``ioc simulate``, ``ioc demo``).

Traffic readings follow ``--rate``; the other subsystems' events come at the rates of their own
models (``events_at(now, interval)`` every 10 simulated seconds). Models of slow subsystems also
send history on their first call so their rules can fire and resolve in a short demo: the plan
year's indicator reports so far (:mod:`ioc.connectors.sim_econ`), a few weeks of cases, statuses
and attendance (:mod:`ioc.connectors.sim_health_edu`), eight days of citizen reports
(:mod:`ioc.connectors.sim_feedback`), 40 days of public-service dossiers
(:mod:`ioc.connectors.sim_egov`). A simulator that needs deployment settings implements
``configure(settings)`` (:class:`NeedsSettings`), called right after it is built: the feedback
simulator takes the deployment's pseudonym key from there (``ioc.connectors.privacy``).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from ioc.connectors import privacy
from ioc.connectors.producer import EventProducer, make_producer
from ioc.connectors.schema_registry import serde_for
from ioc.connectors.sim_econ import EconSimulator
from ioc.connectors.sim_egov import EgovSimulator
from ioc.connectors.sim_feedback import FeedbackSimulator
from ioc.connectors.sim_health_edu import EduSimulator, HealthSimulator
from ioc.connectors.sim_security_cyber import CyberSimulator, SecuritySimulator
from ioc.connectors.simulator import TrafficSimulator
from ioc.infra import (
    reference,
    reference_cyber,
    reference_econ,
    reference_egov,
    reference_feedback,
    reference_health_edu,
)
from ioc.infra.reference import ReferenceData
from ioc.infra.settings import Settings

STEP = timedelta(seconds=10)


class IntervalSimulator(Protocol):
    def events_at(self, now: datetime, interval_s: float) -> list[Any]:
        """Events with ``now - interval_s < occurred_at <= now``, in time order."""
        ...


@runtime_checkable
class NeedsSettings(Protocol):
    def configure(self, settings: Settings) -> None:
        """Take what the simulator needs from the deployment's settings (before any event)."""
        ...


def _security(ref: ReferenceData, seed: int) -> IntervalSimulator:
    return SecuritySimulator(ref.areas, seed)


def _cyber(ref: ReferenceData, seed: int) -> IntervalSimulator:
    return CyberSimulator(reference_cyber.load_topics(ref.directory),
                          reference_cyber.load_systems(ref.directory), seed, areas=ref.areas)


def _econ(ref: ReferenceData, seed: int) -> IntervalSimulator:
    return EconSimulator(reference_econ.load_econ(ref.directory), ref.areas, seed)
def _health(ref: ReferenceData, seed: int) -> IntervalSimulator:
    return HealthSimulator(reference_health_edu.load_facilities(ref.directory), ref.areas, seed)


def _edu(ref: ReferenceData, seed: int) -> IntervalSimulator:
    return EduSimulator(reference_health_edu.load_schools(ref.directory), seed)
def _feedback(ref: ReferenceData, seed: int) -> IntervalSimulator:
    return FeedbackSimulator(ref.areas, reference_feedback.load_categories(ref.directory),
                             reference_feedback.load_agencies(ref.directory), seed)


def _egov(ref: ReferenceData, seed: int) -> IntervalSimulator:
    return EgovSimulator(reference_egov.load_agencies(ref.directory),
                         reference_egov.load_systems(ref.directory),
                         reference_egov.load_procedures(ref.directory), seed)


INTERVAL_SIMULATORS: dict[str, Callable[[ReferenceData, int], IntervalSimulator]] = {
    "security": _security,
    "cyber": _cyber,
    "econ": _econ,
    "health": _health,
    "edu": _edu,
    "feedback": _feedback,
    "egov": _egov,
}
"""Subsystems whose events come from a model stepped every :data:`STEP` of simulated time
(traffic is paced by ``--rate`` instead)."""

DOMAINS = ("traffic", *INTERVAL_SIMULATORS)


def _interval_simulators(settings: Settings, domains: set[str], seed: int
                         ) -> list[IntervalSimulator]:
    ref = reference.load_reference(settings.reference_dir)
    sims = [make(ref, seed) for name, make in INTERVAL_SIMULATORS.items() if name in domains]
    for sim in sims:
        if isinstance(sim, NeedsSettings):
            sim.configure(settings)
    return sims


def simulate_to_kafka(settings: Settings, domain: str, *, rate: float, duration_s: float,
                      seed: int = 0, speedup: float = 1.0,
                      stop: threading.Event | None = None,
                      on_sent: Callable[[int], None] | None = None,
                      progress: bool = True) -> int:
    """Send simulated events for ``domain`` (one of DOMAINS, several joined by commas, or
    ``all``); returns the count."""
    wanted = set(DOMAINS) if domain == "all" else set(domain.split(","))
    if not wanted <= set(DOMAINS):
        raise ValueError(f"unknown simulation domain {domain!r}; choose from {DOMAINS} or all")
    if rate <= 0 or duration_s <= 0 or speedup <= 0:
        raise ValueError("--rate, --duration and --speedup must be positive")
    producer = EventProducer(make_producer(settings.bootstrap, **settings.kafka_security),
                             serde=serde_for(settings),
                             topic_name=settings.topic,
                             pre_send=privacy.pre_send_transforms(settings))
    # With speedup > 1 simulated time runs faster than the wall clock and is placed so that it
    # ends now: the demo replays e.g. 30 minutes of traffic in 3 (windows close, alerts fire).
    wall0 = datetime.now(UTC)
    sim0 = wall0 - (speedup - 1) * timedelta(seconds=duration_s)
    end = sim0 + timedelta(seconds=duration_s * speedup)

    def sim_now() -> datetime:
        return sim0 + (datetime.now(UTC) - wall0) * speedup

    sched = None
    if "traffic" in wanted:
        sim = TrafficSimulator(reference.load_segments(settings.reference_dir), seed=seed)
        sched = sim.schedule(sim0, rate=rate / speedup, duration_s=duration_s * speedup)
    interval_sims = _interval_simulators(settings, wanted, seed)
    next_step = sim0 + STEP
    sent = 0
    started = time.monotonic()
    last_report = started
    while not (stop and stop.is_set()):
        now = sim_now()
        if sched is not None:
            for ev in sched.due(now):
                producer.send(ev.topic, ev.value)
                sent += 1
        while interval_sims and next_step <= min(now, end):
            for s in interval_sims:
                for ev in s.events_at(next_step, STEP.total_seconds()):
                    producer.send(ev.topic, ev.value)
                    sent += 1
            next_step += STEP
        if on_sent:
            on_sent(sent)
        if (sched is None or sched.done) and (not interval_sims or next_step > end):
            break
        tick = time.monotonic()
        if progress and tick - last_report >= 5:
            last_report = tick
            print(f"  simulate: {sent} events in {tick - started:.0f}s", file=sys.stderr)
        waits = [(next_step - now).total_seconds()] if interval_sims else []
        if sched is not None and not sched.done:
            waits.append(sched.seconds_until_next(now))
        time.sleep(min(max(min(waits, default=0.5) / speedup, 0.0), 0.5))
    producer.flush()
    return sent
