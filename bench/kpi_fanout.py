"""KPI and alert records per event when events arrive at their own pace, as in production.

The throughput benchmarks read a backlog, so a window sees many events between two flushes and
the worker writes few KPI records per event (~0.25). Live, the worker publishes every *changed*
window every ``flush_interval`` (2 s) and again when it closes, so a traffic reading every 10 s
makes several KPI records (its 1-minute count, 1-hour count and 5-minute speed and congestion
windows each change). The ClickHouse sink inserts raw rows *and* KPI rows, so the capacity
model needs this fan-out.

This runs the worker's own logic (``Processor`` with every domain, as in ``ioc run``) on the
benchmark's mix of every subsystem (:mod:`ioc.connectors.sim_mix`), with a clock that is the
simulated time: a tick every second and a flush every two, exactly the worker's timers, and
counts what it would publish, per source subsystem (KPI codes start with the subsystem).
No Kafka, no ClickHouse; a few seconds per simulated hour.

Usage: ``.venv/bin/python bench/kpi_fanout.py [--hours 6] [--start-hour 6] [--interval-s 10]``
"""

from __future__ import annotations

import argparse
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ioc.connectors.sim_mix import domain_of, mixed_events, weekday_window
from ioc.infra import reference
from ioc.infra.settings import Settings
from ioc.streams.processor import Processor
from ioc.streams.registry import build_domains

TICK = timedelta(seconds=1)
FLUSH_EVERY = 2  # ticks; the worker's flush_interval / tick_interval


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
    now = [start]
    proc = Processor(build_domains(ref), timedelta(seconds=Settings().allowed_lateness_s),
                     clock=lambda: now[0])
    events_in: Counter[str] = Counter()
    kpis: Counter[str] = Counter()
    alerts: Counter[str] = Counter()
    offsets: Counter[tuple[str, int]] = Counter()
    t = time.perf_counter()
    i, ticks = 0, 0
    while now[0] < end:
        now[0] += TICK
        while i < len(events) and events[i].value["occurred_at"] <= now[0]:
            ev = events[i]
            tp = (ev.topic, zlib.crc32(ev.key) % 6)
            step = proc.handle(ev.topic, ev.value, tp, offsets[tp])
            offsets[tp] += 1
            events_in[ev.domain] += 1
            kpis.update(str(r["kpi"]).split(".", 1)[0] for r in step.kpis)
            alerts.update(domain_of("x." + str(r["rule"])) for r in step.alerts)
            i += 1
        step = proc.tick()
        ticks += 1
        if ticks % FLUSH_EVERY == 0:
            step.kpis.extend(proc.flush())
        kpis.update(str(r["kpi"]).split(".", 1)[0] for r in step.kpis)
        alerts.update(domain_of("x." + str(r["rule"])) for r in step.alerts)
    secs = time.perf_counter() - t
    total_in, total_kpi = sum(events_in.values()), sum(kpis.values())
    print(f"processed in {secs:.1f} s; per subsystem: events in → KPI records, alert records "
          "(KPI records per event)")
    for domain, n in events_in.most_common():
        print(f"  {domain:9s} {n:8d} → {kpis[domain]:8d} KPI, {alerts[domain]:4d} alerts "
              f"({kpis[domain] / n:.2f})")
    print(f"fanout kpi_per_event={total_kpi / total_in:.2f} events={total_in} "
          f"kpi_records={total_kpi} alert_records={sum(alerts.values())} "
          f"hours={args.hours:g} interval_s={args.interval_s:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
