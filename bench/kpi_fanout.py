"""KPI and alert records per event when events arrive at their own pace, as in production.

The throughput benchmarks read a backlog, so a window sees many events between two flushes and
the worker writes few KPI records per event (~0.3). Live, the worker publishes every *changed*
window every ``flush_interval`` (2 s) and again when it closes, so a traffic reading every 10 s
makes several KPI records (its 1-minute count, 1-hour count and 5-minute speed and congestion
windows each change). The ClickHouse sink inserts raw rows *and* KPI rows, so the capacity
model needs this fan-out.

This runs the worker's own logic (decode, ``Processor`` with every domain as in ``ioc run``,
encoding every KPI and alert record) on the benchmark's mix of every subsystem
(:mod:`ioc.connectors.sim_mix`) twice: at **live pace**, with a clock that is the simulated time,
a tick every second and a flush every two (exactly the worker's timers), and at **backlog pace**,
a tick and a flush every 1,000 events (a worker reading a backlog, as in the throughput
benchmarks). It counts what the worker would publish, per source subsystem (KPI codes start with
the subsystem), and the CPU time of both: their difference is what a worker spends per event at
live pace on top of what the throughput benchmarks measure. No Kafka, no ClickHouse, no Faust;
about 20 s per simulated hour.

Usage: ``.venv/bin/python bench/kpi_fanout.py [--hours 6] [--start-hour 6] [--interval-s 10]``
"""

from __future__ import annotations

import argparse
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ioc.connectors.sim_mix import MixEvent, domain_of, mixed_events, weekday_window
from ioc.infra import reference
from ioc.infra.settings import Settings
from ioc.schemas.serde import Serde
from ioc.streams.processor import Processor, Step
from ioc.streams.registry import build_domains

TICK = timedelta(seconds=1)
FLUSH_EVERY = 2  # ticks; the worker's flush_interval / tick_interval
BACKLOG_EVERY = 1000  # events between two ticks when reading a backlog (~1 s of the worker)
KPI_TOPIC = "ioc.kpi.v1"
ALERT_TOPIC = "ioc.alert.v1"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, default=6.0, help="simulated hours (default 6)")
    p.add_argument("--start-hour", type=float, default=6.0,
                   help="local hour of the working day the run starts at (default 6)")
    p.add_argument("--interval-s", type=float, default=10.0,
                   help="seconds between two readings of one segment (default 10)")
    p.add_argument("--seed", type=int, default=49)
    args = p.parse_args(argv)
    if not 0 < args.hours <= 24 or not 0 <= args.start_hour < 24:
        p.error("--hours must be in (0, 24] and --start-hour in [0, 24)")
    day_start, _ = weekday_window(datetime.now(UTC), 24)
    start = day_start + timedelta(hours=args.start_hour)
    end = start + timedelta(hours=args.hours)
    ref = reference.load_reference()
    t = time.perf_counter()
    events = mixed_events(ref, start, end, seed=args.seed, interval_s=args.interval_s)
    print(f"{len(events)} events from {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC "
          f"({time.perf_counter() - t:.1f} s to simulate)")
    serde = Serde()
    encoded = [serde.encode(ev.topic, ev.value) for ev in events]
    live = play(ref, events, encoded, start, end, live=True)
    backlog = play(ref, events, encoded, start, end, live=False)
    n = len(events)
    print(f"live pace: per subsystem, events in → KPI records, alert records (KPI records per "
          f"event); worker logic {live.cpu_s:.1f} CPU-s")
    for domain, k in live.events_in.most_common():
        print(f"  {domain:9s} {k:8d} → {live.kpis[domain]:8d} KPI, {live.alerts[domain]:4d} "
              f"alerts ({live.kpis[domain] / k:.2f})")
    live_kpi, backlog_kpi = sum(live.kpis.values()), sum(backlog.kpis.values())
    print(f"backlog pace (tick + flush every {BACKLOG_EVERY} events, as a worker reading a "
          f"backlog): {backlog_kpi} KPI records ({backlog_kpi / n:.2f} per event); worker logic "
          f"{backlog.cpu_s:.1f} CPU-s")
    print("worker logic = decode + Processor.handle + tick/flush + encoding every output record, "
          "without Kafka or Faust; CPU time of this process")
    for name, r in (("live", live), ("backlog", backlog)):
        print(f"  {name:7s}: decode+handle {1000 * r.handle_s / n:.3f} ms per event; encoding "
              f"{1e6 * r.encode_s / max(r.records, 1):.0f} µs per output record "
              f"({r.records} records); tick+flush {1000 * r.timers_s / max(r.ticks, 1):.2f} ms "
              f"per tick ({r.ticks} ticks)")
    print(f"fanout kpi_per_event={live_kpi / n:.2f} backlog_kpi_per_event={backlog_kpi / n:.2f} "
          f"logic_live_ms_per_event={1000 * live.cpu_s / n:.3f} "
          f"logic_backlog_ms_per_event={1000 * backlog.cpu_s / n:.3f} events={n} "
          f"alert_records={sum(live.alerts.values())} hours={args.hours:g} "
          f"interval_s={args.interval_s:g}")
    return 0


@dataclass
class Played:
    events_in: Counter[str] = field(default_factory=Counter)
    kpis: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0
    handle_s: float = 0.0   # decode + Processor.handle
    timers_s: float = 0.0   # Processor.tick + flush
    encode_s: float = 0.0   # encoding the output records
    ticks: int = 0

    @property
    def records(self) -> int:
        return sum(self.kpis.values()) + sum(self.alerts.values())


def play(ref: reference.ReferenceData, events: list[MixEvent], encoded: list[bytes],
         start: datetime, end: datetime, *, live: bool) -> Played:
    """Feed the events to a fresh ``Processor`` as the worker does (decode, handle, publish
    every output encoded). ``live``: the clock is the simulated time, a tick every simulated
    second and a flush every two (the worker's timers). Otherwise as a worker reading a
    backlog at ~1,000 events per second: a tick and a flush every ``BACKLOG_EVERY`` events."""
    now = [start]
    proc = Processor(build_domains(ref), timedelta(seconds=Settings().allowed_lateness_s),
                     clock=lambda: now[0])
    serde = Serde()
    out = Played()
    offsets: Counter[tuple[str, int]] = Counter()

    clock = time.process_time

    def publish(step: Step) -> None:
        t = clock()
        for rec in step.kpis:
            serde.encode(KPI_TOPIC, rec)
            out.kpis[str(rec["kpi"]).split(".", 1)[0]] += 1
        for rec in step.alerts:
            serde.encode(ALERT_TOPIC, rec)
            out.alerts[domain_of("x." + str(rec["rule"]))] += 1
        out.encode_s += clock() - t

    def handle(i: int) -> None:
        ev = events[i]
        t = clock()
        record = serde.decode(ev.topic, encoded[i])
        tp = (ev.topic, zlib.crc32(ev.key) % 6)
        step = proc.handle(ev.topic, record, tp, offsets[tp])
        out.handle_s += clock() - t
        publish(step)
        offsets[tp] += 1
        out.events_in[ev.domain] += 1

    def timers(flush: bool) -> None:
        t = clock()
        step = proc.tick()
        if flush:
            step.kpis.extend(proc.flush())
        out.timers_s += clock() - t
        out.ticks += 1
        publish(step)

    cpu0 = time.process_time()
    if live:
        i, ticks = 0, 0
        while now[0] < end:
            now[0] += TICK
            while i < len(events) and events[i].value["occurred_at"] <= now[0]:
                handle(i)
                i += 1
            ticks += 1
            timers(ticks % FLUSH_EVERY == 0)
    else:
        for i, ev in enumerate(events):
            now[0] = ev.value["occurred_at"]
            handle(i)
            if i % BACKLOG_EVERY == BACKLOG_EVERY - 1 or i == len(events) - 1:
                timers(True)
    out.cpu_s = time.process_time() - cpu0
    return out


if __name__ == "__main__":
    raise SystemExit(main())
