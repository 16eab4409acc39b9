"""The ``ioc`` command: one entry point for agencies' data, operators and the platform team.

    ioc setup                     topics, ClickHouse migrations, reference data (idempotent)
    ioc run [--exit-when-idle S]  stream worker + ClickHouse sink in the foreground
    ioc produce TOPIC --file F    JSON lines → Avro events on Kafka
    ioc simulate traffic          realistic traffic events for the reference road segments
    ioc sql QUERY                 query ClickHouse (read-only)
    ioc demo [--duration S]       everything at once on this machine, with a live summary
    ioc kafka up|down|status      the local single-node Kafka broker (KRaft)
    ioc kafka-cluster up|down|status [--brokers 3] [--secure]   a local cluster (tests, trials)
    ioc acl apply --manifest F    Kafka users, ACLs, quotas from the agencies manifest
    ioc dashboards build [--check] generate Grafana provisioning files
    ioc dashboards push --url U --token T   folders, dashboards, wall playlists into Grafana
    ioc wall show|urls            the video wall profile: screens, kiosk URLs

Settings come from the environment (see ``ioc.infra.settings``): IOC_DATA_DIR,
IOC_KAFKA_BOOTSTRAP, IOC_CLICKHOUSE_URL, …
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ioc.infra import cli_acl, cli_cluster, cli_wall
from ioc.infra.settings import Settings, SettingsError

EXIT_USAGE = 2


def _kafka_needed(settings: Settings) -> None:
    """Fail early with a clear message when the local broker is expected but not running."""
    if not settings.uses_local_kafka:
        return
    from ioc.infra.local_kafka import LocalKafka

    status = LocalKafka(settings).status()
    if not status.running:
        raise SystemExit(f"ioc: the local Kafka broker is not running ({status.detail}). "
                         "Start it with `ioc kafka up`, or set IOC_KAFKA_BOOTSTRAP to use "
                         "another cluster.")


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.infra.runtime import SetupError, setup

    _kafka_needed(settings)
    try:
        setup(settings)
    except SetupError as exc:
        print(f"ioc setup: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.infra.runtime import SetupError, configure_logging, missing_topics, run

    configure_logging(args.verbose)
    _kafka_needed(settings)
    try:
        missing = missing_topics(settings)
    except SetupError as exc:
        print(f"ioc run: {exc}", file=sys.stderr)
        return 1
    if missing:
        print("ioc run: topics missing: " + ", ".join(missing) + ". Run `ioc setup` first.",
              file=sys.stderr)
        return 1
    idle = f" (exits after {args.exit_when_idle:g}s idle)" if args.exit_when_idle else ""
    if args.worker_only:
        from ioc.infra.runtime import run_worker

        print(f"ioc run: stream worker on {settings.bootstrap}{idle}", file=sys.stderr)
        return run_worker(settings, exit_when_idle=args.exit_when_idle)
    print(f"ioc run: worker + sink on {settings.bootstrap} → {settings.clickhouse_display}{idle}",
          file=sys.stderr)
    return run(settings, exit_when_idle=args.exit_when_idle)


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.producer import EventProducer, make_producer, produce_file
    from ioc.schemas.catalogue import Catalogue

    catalogue = Catalogue()
    if args.topic not in catalogue.by_topic:
        print(f"ioc produce: unknown topic {args.topic!r}. Known topics: "
              + ", ".join(catalogue.event_topics), file=sys.stderr)
        return EXIT_USAGE
    path = Path(args.file)
    if not path.is_file():
        print(f"ioc produce: file not found: {path}", file=sys.stderr)
        return EXIT_USAGE
    _kafka_needed(settings)
    producer = EventProducer(make_producer(settings.bootstrap, **settings.kafka_security),
                             topic_name=settings.topic)
    report = produce_file(producer, args.topic, path)
    for number, reason in report.rejected[: args.max_errors]:
        print(f"{path}:{number}: rejected: {reason}", file=sys.stderr)
    if len(report.rejected) > args.max_errors:
        print(f"… and {len(report.rejected) - args.max_errors} more rejected lines",
              file=sys.stderr)
    print(f"{report.sent} events sent to {settings.topic(args.topic)} "
          f"(confirmed by the broker), {len(report.rejected)} lines rejected "
          f"of {report.lines}")
    return 1 if report.rejected else 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.simulate import simulate_to_kafka

    _kafka_needed(settings)
    domains = sorted(set(args.domain))
    sent = simulate_to_kafka(settings, "all" if "all" in domains else ",".join(domains),
                             rate=args.rate, duration_s=args.duration, seed=args.seed,
                             speedup=args.speedup)
    print(f"{sent} simulated events sent ({', '.join(domains)})")
    return 0


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


def format_result(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> str:
    if fmt == "json":
        return "\n".join(json.dumps({c: _jsonable(v) for c, v in zip(columns, r, strict=True)},
                                    ensure_ascii=False) for r in rows)
    if fmt == "csv":
        import io

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(columns)
        for r in rows:
            w.writerow([_jsonable(v) for v in r])
        return buf.getvalue().rstrip("\n")
    cells = [[str(_jsonable(v)) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, sep, *body, f"({len(rows)} rows)"])


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.clickhouse import ClickHouseUnavailable, connect

    try:
        client = connect(settings.clickhouse)
    except ClickHouseUnavailable as exc:
        print(f"ioc sql: {exc}", file=sys.stderr)
        return 1
    try:
        result = client.query(args.query, settings={"readonly": 1})
    except Exception as exc:
        print(f"ioc sql: query failed: {str(exc).strip()[:2000]}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(format_result(result.column_names, result.result_rows, args.format))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.infra.demo import run_demo

    return run_demo(settings, duration_s=args.duration, rate=args.rate, keep=args.keep_broker,
                    speedup=args.speedup)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.clickhouse import ClickHouseUnavailable, connect
    from ioc.dashboards.briefing import make_report
    from ioc.streams.windows import LOCAL_TZ

    try:
        at = date.fromisoformat(args.at) if args.at else datetime.now(LOCAL_TZ).date()
    except ValueError:
        print(f"ioc report: --at must be a date like 2026-11-30, got {args.at!r}",
              file=sys.stderr)
        return 2
    try:
        client = connect(settings.clickhouse)
    except ClickHouseUnavailable as exc:
        print(f"ioc report: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else settings.data_dir / "reports"
    try:
        print(f"ioc report: collecting the {args.period} of {at} …", file=sys.stderr)
        html_path, pdf_path = make_report(client, settings.database, args.period, at, out)
    except ValueError as exc:
        print(f"ioc report: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    print(html_path)
    print(pdf_path)
    return 0


def cmd_kafka(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.infra.local_kafka import KafkaLauncherError, LocalKafka

    if not settings.uses_local_kafka:
        print(f"ioc kafka: IOC_KAFKA_BOOTSTRAP is set ({settings.kafka_bootstrap}); the local "
              "broker is not used.", file=sys.stderr)
    launcher = LocalKafka(settings)
    try:
        if args.action == "up":
            st = launcher.up()
        elif args.action == "down":
            st = launcher.down()
        else:
            st = launcher.status()
    except KafkaLauncherError as exc:
        print(f"ioc kafka {args.action}: {exc}", file=sys.stderr)
        return 1
    state = "running" if st.running else "stopped"
    print(f"kafka: {state}  bootstrap={st.bootstrap}  pid={st.pid or '-'}  "
          f"data={st.data_dir}  log={st.log_file}" + (f"  ({st.detail})" if st.detail else ""))
    return 0 if (st.running or args.action != "status") else 3


def cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.dashboards.build import PROVISIONING_DIR, build_all, check

    if args.action == "push":
        return cli_wall.cmd_push(args, settings)
    if args.check:
        stale = check(PROVISIONING_DIR)
        if stale:
            print("dashboards out of date (run `ioc dashboards build`): " + ", ".join(stale),
                  file=sys.stderr)
            return 1
        print("dashboards up to date")
        return 0
    for path in build_all(PROVISIONING_DIR):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ioc", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("setup", help="create topics, run migrations, load reference data")
    s.set_defaults(func=cmd_setup)

    s = sub.add_parser("run", help="run the stream worker and the ClickHouse sink")
    s.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                   help="exit once all input is consumed, windows and batches are flushed, and "
                        "nothing new arrived for SECONDS")
    s.add_argument("--worker-only", action="store_true",
                   help="run one more stream worker without a sink (scale-out: workers share "
                        "the partitions of one consumer group; one `ioc run` keeps the sink)")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("produce", help="send a JSON-lines file as Avro events to a topic")
    s.add_argument("topic", help="contract topic name, e.g. ioc.traffic.flow.v1")
    s.add_argument("--file", required=True, help="JSON lines, one event per line")
    s.add_argument("--max-errors", type=int, default=50,
                   help="rejected lines to print (all are counted)")
    s.set_defaults(func=cmd_produce)

    from ioc.connectors.simulate import DOMAINS as SIM_DOMAINS

    s = sub.add_parser("simulate", help="produce realistic events for a subsystem")
    s.add_argument("domain", nargs="+", choices=[*SIM_DOMAINS, "all"],
                   help="one or more subsystems, or all")
    s.add_argument("--rate", type=float, default=50.0,
                   help="traffic readings per second (default 50); security and cyber events "
                        "follow their own models")
    s.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--speedup", type=float, default=1.0,
                   help="replay: simulated time runs this much faster and ends now")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("sql", help="run a read-only SQL query against ClickHouse")
    s.add_argument("query")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.set_defaults(func=cmd_sql)

    s = sub.add_parser("demo", help="run everything locally with a live summary")
    s.add_argument("--duration", type=float, default=180.0, help="seconds (default 180)")
    s.add_argument("--rate", type=float, default=200.0, help="simulated events per second")
    s.add_argument("--speedup", type=float, default=10.0,
                   help="simulated time runs this much faster than the clock (default 10)")
    s.add_argument("--keep-broker", action="store_true",
                   help="leave the local broker running at the end")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("report", help="a leadership briefing (Vietnamese HTML and PDF)")
    s.add_argument("--period", choices=["day", "week", "month"], default="day")
    s.add_argument("--at", help="a local date in the period (YYYY-MM-DD, default today)")
    s.add_argument("--out", help="output folder (default $IOC_DATA_DIR/reports)")
    s.set_defaults(func=cmd_report)

    s = sub.add_parser("kafka", help="the local single-node Kafka broker")
    s.add_argument("action", choices=["up", "down", "status"])
    s.set_defaults(func=cmd_kafka)

    s = sub.add_parser("dashboards", help="Grafana dashboards as code")
    s.add_argument("action", choices=["build", "push"])
    s.add_argument("--check", action="store_true", help="fail if committed files are stale")
    cli_wall.add_push_arguments(s)
    s.set_defaults(func=cmd_dashboards)

    cli_wall.add_wall_parser(sub)
    cli_acl.add_acl_parser(sub)
    cli_cluster.add_cluster_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"ioc: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    try:
        code = args.func(args, settings)
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
