"""Pacing simulated events onto Kafka in real time (``ioc simulate``, ``ioc demo``)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ioc.connectors.producer import EventProducer, make_producer
from ioc.connectors.simulator import TrafficSimulator
from ioc.infra import reference
from ioc.infra.settings import Settings


def simulate_to_kafka(settings: Settings, domain: str, *, rate: float, duration_s: float,
                      seed: int = 0, speedup: float = 1.0,
                      stop: threading.Event | None = None,
                      on_sent: Callable[[int], None] | None = None,
                      progress: bool = True) -> int:
    if domain != "traffic":
        raise ValueError(f"unknown simulation domain {domain!r}")
    if rate <= 0 or duration_s <= 0:
        raise ValueError("--rate and --duration must be positive")
    segments = reference.load_segments(settings.reference_dir)
    sim = TrafficSimulator(segments, seed=seed)
    producer = EventProducer(make_producer(settings.bootstrap), topic_name=settings.topic)
    # With speedup > 1 simulated time runs faster than the wall clock and is placed so that it
    # ends now: the demo replays e.g. 30 minutes of traffic in 3 (windows close, alerts fire).
    wall0 = datetime.now(UTC)
    sim0 = wall0 - (speedup - 1) * timedelta(seconds=duration_s)

    def sim_now() -> datetime:
        return sim0 + (datetime.now(UTC) - wall0) * speedup

    sched = sim.schedule(sim0, rate=rate / speedup, duration_s=duration_s * speedup)
    sent = 0
    started = time.monotonic()
    last_report = started
    while not sched.done and not (stop and stop.is_set()):
        for ev in sched.due(sim_now()):
            producer.send(ev.topic, ev.value)
            sent += 1
        if on_sent:
            on_sent(sent)
        now = time.monotonic()
        if progress and now - last_report >= 5:
            last_report = now
            print(f"  simulate: {sent} events in {now - started:.0f}s", file=sys.stderr)
        wait = sched.seconds_until_next(sim_now()) / speedup
        time.sleep(min(max(wait, 0.0), 0.5))
    producer.flush()
    return sent
