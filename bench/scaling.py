"""Scaling: the same events through 1 and then 2 KPI worker processes in one consumer group.

For each worker count K (``--workers 1,2``) the bench makes a fresh topic set with
``--partitions`` partitions (default 6, so two workers get three each), runs ``ioc setup``, then
starts ``ioc run`` (a KPI worker + the ClickHouse sink, as deployed) and K − 1 × ``ioc run
--worker-only`` joining the same group. Only when the worker group is STABLE with K members and
the sink group has its partitions does it produce the events (pre-encoded, as fast as the
producer goes), so no rebalance happens while they are processed. It then measures, from the
first event produced:

* **workers**: the time until the worker processes have read all N events, from their own
  Prometheus counters (``ioc_events_in_total{component="streams"}``, scraped every 0.25 s from
  each process's metrics port) — the KPI workers' throughput;
* **sink**: the time until the sink has committed every raw row (it commits after its insert) —
  its insert rate while sharing the machine with the workers;
* **e2e**: the time until every raw row *and* every KPI and alert record the workers produced
  (their topics quiet for 3 s after the workers finished reading) is committed in ClickHouse.

The sums of the counters must equal N (a rebalance replay would read events twice; the bench
says so if it happens). Afterwards it checks in ClickHouse that every event is stored once and
that the traffic vehicle-count KPIs add up to the raw readings, as ``e2e_throughput.py`` does.

It ends with one line per worker count and a ratio line::

    workers=2 worker_events_per_s=… e2e_events_per_s=… sink_raw_rows_per_s=…
    ratio_2_vs_1 workers=… e2e=…

Usage: ``.venv/bin/python bench/scaling.py [--mix all|traffic] [--hours H] [--partitions P]``
(``make bench-scaling``; ``BENCH_ARGS=...`` passes options). See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient
from e2e_throughput import (
    ALERT_TOPIC,
    IDLE_S,
    KPI_TOPIC,
    WATCH_INTERVAL_S,
    BenchError,
    DataSet,
    GroupWatch,
    IocRun,
    add_workload_args,
    broker,
    broker_idle_rate,
    check_workload_args,
    cpu_costs,
    end_offsets,
    free_port_pair,
    generate,
    generate_mix,
    ioc_env,
    ioc_setup,
    load_average,
    machine_cpu,
    process_cpu,
    produce_backlog,
    say,
    verify_e2e,
)

from ioc.infra.runtime import ensure_topics
from ioc.infra.settings import Settings

SCRAPE_INTERVAL_S = 0.25
QUIET_S = 3.0  # KPI/alert topics unchanged this long after the workers read everything
_EVENTS_IN = re.compile(r'^ioc_events_in_total\{component="streams",topic="[^"]*"\} (\S+)$',
                        re.MULTILINE)


def events_read(port: int) -> float | None:
    """Events the stream worker on ``port`` has read so far (None if it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    return sum(float(v) for v in _EVENTS_IN.findall(text))


@dataclass
class ScaleResult:
    workers: int
    n: int
    produce_s: float
    read_s: float          # first event produced → all N read by the workers
    raw_s: float           # … → every raw row committed by the sink
    e2e_s: float           # … → every raw, KPI and alert row committed
    read_per_worker: list[float]
    output_records: int    # KPI and alert records written (and stored)
    cpu: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_scale(bootstrap: str, k: int, partitions: int, data: DataSet, data_dir: Path,
              broker_pid: int | None) -> ScaleResult:
    prefix = f"bench-scale{k}."
    settings = Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix,
                        topic_partitions=partitions)
    ensure_topics(settings)
    run_dir = data_dir / f"run-scale{k}"
    env = ioc_env(bootstrap, prefix, data_dir / f"ch-scale{k}", run_dir)
    env["IOC_TOPIC_PARTITIONS"] = str(partitions)
    ioc_setup(env)
    n = len(data.values)
    raw = {t: settings.topic(t) for t in data.counts}
    kpi, alert = settings.topic(KPI_TOPIC), settings.topic(ALERT_TOPIC)
    sink_group, worker_group = f"{prefix}ioc-sink", f"{prefix}ioc-streams"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    ports = [free_port_pair()] + [free_port_pair() for _ in range(k - 1)]  # ioc run: port, port + 1
    runs: list[IocRun] = []
    watch = GroupWatch(bootstrap, sink_group, [sink_group, worker_group], WATCH_INTERVAL_S,
                       members={worker_group: k})
    idle_rate = broker_idle_rate(broker_pid)
    busy0, broker0 = machine_cpu(), process_cpu(broker_pid)
    started = time.time()
    try:
        for i, port in enumerate(ports):
            penv = dict(env, IOC_METRICS_PORT=str(port))
            extra = () if i == 0 else ("--worker-only",)
            runs.append(IocRun(penv, *extra, log_name=f"ioc-run-{i}.log"))
        watch.start()
        deadline = time.monotonic() + 240
        while not watch.all_ready():
            for run in runs:
                if run.proc.poll() is not None:
                    raise BenchError(f"{run.log_path.name} exited early:\n{run.tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the groups did not form in 240 s: ready={watch.ready}")
            time.sleep(0.1)
        time.sleep(1.0)
        say(f"  {k} worker(s) in the group, sink assigned; producing {n} events ...")
        t0 = time.time()
        produce_s = produce_backlog(bootstrap, settings.topic, data)
        say(f"  produced in {produce_s:.1f} s ({n / produce_s:,.0f}/s)")
        read_at: float | None = None
        per_worker: list[float] = [0.0] * k
        next_line = time.monotonic() + 5
        deadline = time.monotonic() + 1800
        while read_at is None:
            if time.monotonic() > deadline:
                raise BenchError(f"the workers read only {sum(per_worker):.0f} of {n} events")
            for run in runs:
                if run.proc.poll() is not None:
                    raise BenchError(f"{run.log_path.name} exited:\n{run.tail()}")
                run.sample_cpu()
            got = [events_read(p) for p in ports]
            per_worker = [g if g is not None else per_worker[i] for i, g in enumerate(got)]
            if sum(per_worker) >= n:
                read_at = time.time()
                break
            if time.monotonic() >= next_line:
                next_line += 5
                say(f"  … {time.time() - t0:5.1f} s: workers read "
                    + " + ".join(f"{v:.0f}" for v in per_worker)
                    + f" of {n}; sink committed {watch.committed(*raw.values())} raw rows")
            time.sleep(SCRAPE_INTERVAL_S)
        # The outputs: wait until the KPI and alert topics are quiet and the sink has them all.
        # Their ends are taken here: stopping the workers afterwards rebalances the group, and
        # the last one standing replays held events and republishes (the same) records.
        out_ends: dict[str, dict[int, int]] = {}
        quiet_since = time.monotonic()
        while True:
            ends = {name: end_offsets(admin, name, partitions) for name in (kpi, alert)}
            if ends != out_ends:
                out_ends, quiet_since = ends, time.monotonic()
            stored = all(watch.reached(name, end) is not None for name, end in ends.items())
            if stored and time.monotonic() - quiet_since >= QUIET_S:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"the sink did not store the outputs: {ends}")
            for run in runs:
                run.sample_cpu()
            time.sleep(0.25)
        final = [events_read(p) for p in ports]
        members = len(admin.describe_consumer_groups([worker_group])[worker_group].result()
                      .members)
    finally:
        watch.stop()
        for run in runs:  # all at once, so no worker takes over another's partitions for long
            if run.proc.poll() is None:
                run.proc.send_signal(signal.SIGINT)
        for run in reversed(runs):
            run.kill()
    busy1 = machine_cpu()
    raw_done = [watch.reached(name, end_offsets(admin, name, partitions))
                for name in raw.values()]
    out_done = [watch.reached(name, end) for name, end in out_ends.items()]
    if None in raw_done or None in out_done:
        raise BenchError(f"the watch missed the run: raw={raw_done} outputs={out_done}")
    raw_at = max(t for t in raw_done if t is not None)
    out_at = max(t for t in out_done if t is not None)
    cpu: dict[str, float] = {}
    for i, run in enumerate(runs):
        for name, secs in run.cpu.items():
            cpu[name if i == 0 else name.replace("worker", f"worker {i + 1}", 1)] = secs
    if broker_pid is not None:
        cpu["broker"] = process_cpu(broker_pid) - broker0
        cpu["broker net of idle"] = cpu["broker"] - idle_rate * (time.time() - started)
    result = ScaleResult(
        workers=k, n=n, produce_s=produce_s, read_s=read_at - t0, raw_s=raw_at - t0,
        e2e_s=max(raw_at, out_at, read_at) - t0, read_per_worker=per_worker,
        output_records=sum(sum(e.values()) for e in out_ends.values()), cpu=cpu,
        machine_busy=(busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1))
    total_read = sum(v for v in final if v is not None)
    if total_read != n:
        result.notes.append(f"the workers read {total_read:.0f} events for {n} produced "
                            "(a rebalance replayed some)")
    if members != k:
        result.notes.append(f"the worker group had {members} members at the end, not {k}")
    checks = verify_e2e(env, data)
    result.problems = list(checks["problems"])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_args(p)
    p.add_argument("--workers", default="1,2",
                   help="worker process counts to compare, in order (default 1,2)")
    p.add_argument("--partitions", type=int, default=6,
                   help="partitions of every topic (default 6; at least the largest count)")
    p.add_argument("--seed", type=int, default=49)
    args = p.parse_args(argv)
    check_workload_args(p, args)
    try:
        counts = [int(w) for w in str(args.workers).split(",") if w.strip()]
    except ValueError:
        p.error("--workers takes numbers, e.g. 1,2")
    if not counts or min(counts) < 1:
        p.error("--workers must be >= 1")
    if args.partitions < max(counts):
        p.error(f"--partitions must be at least {max(counts)} (one partition per worker)")
    if (args.events is not None and args.events < 1) or not 0 < args.hours <= 168:
        p.error("--events must be >= 1 and --hours in (0, 168]")

    temp = args.data_dir is None
    data_dir = (Path(tempfile.mkdtemp(prefix="ioc-scale-")) if temp else args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.environ.get("IOC_KAFKA_BOOTSTRAP"):
        print("bench: the scaling bench runs its own broker; unset IOC_KAFKA_BOOTSTRAP",
              file=sys.stderr)
        return 2
    say(f"ioc scaling bench: workers {counts}, {args.partitions} partitions per topic, "
        f"{os.cpu_count()} CPUs, load average {load_average()}, data in {data_dir}")
    results: list[ScaleResult] = []
    try:
        with broker(data_dir, args.keep) as (bootstrap, broker_pid):
            t = time.perf_counter()
            if args.mix == "all":
                data = generate_mix(args.hours, args.interval_s, args.seed)
            else:
                data = generate(args.events, args.interval_s, args.seed)
            n = len(data.values)
            say(f"[data] {n} events ({args.mix}), {time.perf_counter() - t:.1f} s: "
                + ", ".join(f"{d} {c}" for d, c in sorted(data.by_domain().items(),
                                                         key=lambda kv: -kv[1])))
            for k in counts:
                say(f"[{k} worker(s)] ioc run" + (f" + {k - 1} × ioc run --worker-only"
                                                  if k > 1 else "") + f", load {load_average()}")
                r = run_scale(bootstrap, k, args.partitions, data, data_dir, broker_pid)
                results.append(r)
                say(f"  workers read all {n} events at {r.read_s:.2f} s = {n / r.read_s:,.0f} "
                    "events/s (per process: "
                    + ", ".join(f"{v:.0f}" for v in r.read_per_worker) + ")")
                if k > 1:
                    say(f"  split by partition keys: the busiest process read "
                        f"{100 * max(r.read_per_worker) / n:.0f} % of the events, so {k} workers "
                        f"can be at most {n / max(r.read_per_worker):.2f}× as fast as one, even "
                        "with a core each")
                say(f"  sink: every raw row committed at {r.raw_s:.2f} s = "
                    f"{n / r.raw_s:,.0f} rows/s; {r.output_records} KPI and alert records")
                say(f"  e2e: every raw, KPI and alert row committed at {r.e2e_s:.2f} s = "
                    f"{n / r.e2e_s:,.0f} events/s")
                say("  CPU seconds: " + ", ".join(f"{name} {v:.1f}" for name, v in
                                                  sorted(r.cpu.items()))
                    + f"; all CPUs {100 * r.machine_busy:.0f} % busy")
                worker_cpu = sum(v for name, v in r.cpu.items()
                                 if name.startswith("worker") and "waiting" not in name)
                cost = cpu_costs({**r.cpu, "worker": worker_cpu}, n, n + r.output_records)
                say("  CPU cost: " + "; ".join(
                    f"{name} {ms:.3f} ms per {unit} = {1000 / ms:,.0f} {unit}s/s per core"
                    for name, (ms, unit) in cost.items()))
                for note in r.notes:
                    say(f"  note: {note}")
                if r.problems:
                    raise BenchError("verification failed: " + "; ".join(r.problems))
                say("  ✓ every event stored once; vehicle-count KPIs add up to the raw readings")
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if temp and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif args.keep:
            say(f"data kept in {data_dir}")
    say(f"\nload average at the end: {load_average()}")
    say(f"# {n} events ({args.mix}), {args.partitions} partitions; workers = first event "
        "produced → all read by the worker processes; sink = → every raw row committed; e2e = "
        f"→ every raw, KPI and alert row committed (no idle wait: the run is stopped after; "
        f"exit-when-idle {IDLE_S:g} s is not used here)")
    for r in results:
        say(f"workers={r.workers} worker_events_per_s={n / r.read_s:.0f} "
            f"e2e_events_per_s={n / r.e2e_s:.0f} sink_raw_rows_per_s={n / r.raw_s:.0f}")
    if len(results) >= 2:
        a = min(results, key=lambda r: r.workers)
        b = max(results, key=lambda r: r.workers)
        say(f"ratio_{b.workers}_vs_{a.workers} workers={a.read_s / b.read_s:.2f} "
            f"e2e={a.e2e_s / b.e2e_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

