"""The ``ioc`` command: one entry point for agencies' data, operators and the platform team.

    ioc setup                     topics, ClickHouse migrations, reference data (idempotent)
    ioc run [--exit-when-idle S]  stream worker + ClickHouse sink (+ notifier) in the foreground
    ioc produce TOPIC --file F    JSON lines, CSV, Excel → Avro events on Kafka
    ioc simulate traffic          realistic traffic events for the reference road segments
    ioc sql QUERY                 query ClickHouse (read-only), running platform or not
    ioc demo [--duration S]       everything at once on this machine, with a live summary
    ioc kafka up|down|status      the local single-node Kafka broker (KRaft)
    ioc kafka-cluster up|down|status [--brokers 3] [--secure]   a local cluster (tests, trials)
    ioc acl apply --manifest F    Kafka users, ACLs, quotas from the agencies manifest
    ioc dashboards build [--check] generate Grafana provisioning files
    ioc dashboards push --url U --token T   folders, dashboards, wall playlists into Grafana
    ioc wall show|urls            the video wall profile: screens, kiosk URLs
    ioc notify [--check]          the alert notifier alone (also part of run and demo)
    ioc alerts list|show|ack|silence  alerts for duty officers (works while run is running)
    ioc gateway [keys …]          HTTP ingestion gateway, Open311, agencies' API keys
    ioc schemas docs|check|register  data-contract docs, compatibility, schema registry
    ioc dlq list|show|replay      dead letters: inspect and re-submit
    ioc privacy scan|forget       personal data: find it in clear text, delete one person's

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

from ioc.infra import cli_acl, cli_alerts, cli_cluster, cli_wall
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

    if args.print_ddl:
        return _print_ddl(settings)
    _kafka_needed(settings)
    try:
        setup(settings)
    except SetupError as exc:
        print(f"ioc setup: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_ddl(settings: Settings) -> int:
    """The ClickHouse statements ``ioc setup`` would issue on a server (on the cluster of
    IOC_CLICKHOUSE_CLUSTER when set), for review; connects to nothing."""
    from ioc.infra.cluster_ddl import ClusterDDLError
    from ioc.infra.migrations import plan

    try:
        bootstrap, migrations = plan(settings.database, settings.clickhouse_cluster)
    except ClusterDDLError as exc:
        print(f"ioc setup: {exc}", file=sys.stderr)
        return 1
    print("-- the runner's bookkeeping\n" + "".join(f"{s};\n" for s in bootstrap))
    for mig, statements in migrations:
        note = " (server only: skipped on chDB)" if mig.server_only else ""
        print(f"-- {mig.path.name}{note}\n" + "".join(f"{s};\n\n" for s in statements))
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
    from ioc.connectors.query_server import describe

    try:
        analysts = describe(settings)
    except ValueError as exc:
        print(f"ioc run: {exc}", file=sys.stderr)
        return 1
    if analysts:
        print(f"ioc run: {analysts}", file=sys.stderr)
    try:
        return run(settings, exit_when_idle=args.exit_when_idle)
    except cli_alerts.ConfigError as exc:
        print("ioc run: the notification routing config is invalid:\n" + str(exc),
              file=sys.stderr)
        return 1


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.files import FileError, detect_format, load_mapping, upload_file
    from ioc.connectors.privacy import PseudonymKeyError, pseudonym_key
    from ioc.connectors.producer import EventProducer, make_producer
    from ioc.connectors.schema_registry import RegistryError, serde_for
    from ioc.connectors.transforms import default_transforms
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
    try:
        fmt = detect_format(path, args.format)
        mapping = load_mapping(Path(args.mapping)) if args.mapping else None
    except FileError as exc:
        print(f"ioc produce: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _kafka_needed(settings)
    transforms = default_transforms(settings)
    if args.topic in transforms:
        try:
            pseudonym_key(settings)  # a key problem stops the run before any line is sent
        except PseudonymKeyError as exc:
            print(f"ioc produce: {exc}", file=sys.stderr)
            return 1
    producer = EventProducer(make_producer(settings.bootstrap, **settings.kafka_security),
                             serde=serde_for(settings),
                             topic_name=settings.topic)
    try:
        report = upload_file(producer, args.topic, path, fmt=fmt, mapping=mapping,
                             transform=transforms.get(args.topic))
    except (FileError, RegistryError) as exc:
        print(f"ioc produce: {exc}; nothing was sent", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, FileError) else 1
    rows = report.by_row()
    for number in sorted(rows)[: args.max_errors]:
        reasons = "; ".join(f"{r.error.field + ': ' if r.error.field else ''}{r.error.en}"
                            + (f" (column {r.column!r})" if r.column and r.column
                               != r.error.field else "") for r in rows[number])
        print(f"{path}:{number}: rejected: {reasons}", file=sys.stderr)
    if len(rows) > args.max_errors:
        print(f"… and {len(rows) - args.max_errors} more rejected {report.unit}",
              file=sys.stderr)
    if report.rejected:
        out = Path(args.rejected) if args.rejected else path.with_name(path.name +
                                                                       ".rejected.csv")
        report.write_rejections(out)
        print(f"rejected {report.unit} (row, column, reason): {out}", file=sys.stderr)
    derived = (f"; {report.derived_ids} event ids derived from the rows' content"
               if report.derived_ids else "")
    print(f"{report.sent} events sent to {settings.topic(args.topic)} "
          f"(confirmed by the broker), {len(rows)} {report.unit} rejected "
          f"of {report.rows}{derived}")
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


def _query_server_client(settings: Settings) -> Any | None:
    """A client of the running platform's query server, if one serves this data dir."""
    if settings.chdb_path is None:
        return None
    from ioc.connectors.query_server import discover

    info = discover(settings)
    if info is None:
        return None
    import clickhouse_connect

    try:
        return clickhouse_connect.get_client(host=info.host, port=info.port, username=info.user,
                                             password=info.password, connect_timeout=5)
    except Exception:  # a stale run file: the direct way tells what is wrong
        return None



def store_client(settings: Settings, command: str) -> Any | None:
    """A client of the store for a read command: the running platform's query server when it
    owns the embedded store, else a direct connection. None (after saying why on stderr,
    prefixed ``ioc <command>:``) when ClickHouse cannot be reached."""
    from ioc.connectors.clickhouse import ClickHouseUnavailable, connect

    client = _query_server_client(settings)
    if client is None:
        try:
            client = connect(settings.clickhouse)
        except ClickHouseUnavailable as exc:
            print(f"ioc {command}: {exc}", file=sys.stderr)
            return None
    return client

def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    """Read-only SQL. The embedded store is opened directly when free; while a platform owns
    it, the query goes through that platform's query server; a server URL is used as is."""
    from ioc.connectors.clickhouse import ClickHouseUnavailable, connect

    client = _query_server_client(settings)
    via_server = client is not None
    if client is None:
        try:
            client = connect(settings.clickhouse)
        except ClickHouseUnavailable as exc:
            print(f"ioc sql: {exc}", file=sys.stderr)
            return 1
    try:
        # The query server's sessions are readonly = 1 already (and refuse to change it).
        result = client.query(args.query, settings=None if via_server else {"readonly": 1})
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
    from ioc.dashboards.briefing import make_report
    from ioc.streams.windows import LOCAL_TZ

    try:
        at = date.fromisoformat(args.at) if args.at else datetime.now(LOCAL_TZ).date()
    except ValueError:
        print(f"ioc report: --at must be a date like 2026-11-30, got {args.at!r}",
              file=sys.stderr)
        return 2
    client = store_client(settings, "report")
    if client is None:
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

    s = sub.add_parser("setup", help="create topics, run migrations, load reference data",
                       description="Create the topics, apply the ClickHouse migrations (ON "
                                   "CLUSTER with replicated, sharded tables when "
                                   "IOC_CLICKHOUSE_CLUSTER is set) and load the reference "
                                   "data. Idempotent.")
    s.add_argument("--print-ddl", action="store_true",
                   help="print the ClickHouse statements the migrations issue (rewritten for "
                        "the cluster when IOC_CLICKHOUSE_CLUSTER is set) and exit; connects to "
                        "nothing")
    s.set_defaults(func=cmd_setup)

    s = sub.add_parser("run", help="run the stream worker, the ClickHouse sink and the "
                                   "notifier")
    s.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                   help="exit once all input is consumed, windows and batches are flushed, and "
                        "nothing new arrived for SECONDS")
    s.add_argument("--worker-only", action="store_true",
                   help="run one more stream worker without a sink (scale-out: workers share "
                        "the partitions of one consumer group; one `ioc run` keeps the sink)")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("produce", help="send a file (JSON lines, CSV, Excel) as Avro events",
                       description="Send a file's rows as events; see ioc.connectors.files "
                                   "and docs/onboarding.md for the column mapping. Rows of "
                                   "ioc.feedback.report.v1 may carry reporter_name and "
                                   "reporter_phone: they are replaced by a keyed pseudonym "
                                   "(IOC_PSEUDONYM_KEY) and never sent; phone numbers in the "
                                   "text are masked.")
    s.add_argument("topic", help="contract topic name, e.g. ioc.traffic.flow.v1")
    s.add_argument("--file", required=True, help="JSON lines, .csv or .xlsx")
    s.add_argument("--format", choices=["jsonl", "csv", "xlsx"],
                   help="file format (default: from the extension)")
    s.add_argument("--mapping", help="column mapping (.toml or .json): field = column, "
                                     "constants, value maps, timezone, sheet")
    s.add_argument("--rejected", help="where to write the rejected rows (default "
                                      "<file>.rejected.csv, only if there are any)")
    s.add_argument("--max-errors", type=int, default=50,
                   help="rejected lines to print (all are counted)")
    s.set_defaults(func=cmd_produce)

    from ioc.connectors.simulate import DOMAINS as SIM_DOMAINS

    s = sub.add_parser("simulate", help="produce realistic events for a subsystem")
    s.add_argument("domain", nargs="+", choices=[*SIM_DOMAINS, "all"],
                   help="one or more subsystems, or all")
    s.add_argument("--rate", type=float, default=50.0,
                   help="traffic readings per second (default 50); the other subsystems "
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
    s.add_argument("--speedup", type=float, default=25.0,
                   help="simulated time runs this much faster than the clock (default 25: "
                        "3 minutes replay 75, enough for hourly rules to fire and resolve)")
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

    cli_alerts.register(sub)  # ioc notify, ioc alerts list|show|ack|silence

    s = sub.add_parser("dashboards", help="Grafana dashboards as code")
    s.add_argument("action", choices=["build", "push"])
    s.add_argument("--check", action="store_true", help="fail if committed files are stale")
    cli_wall.add_push_arguments(s)
    s.set_defaults(func=cmd_dashboards)

    cli_wall.add_wall_parser(sub)
    from ioc.infra import cli_dlq, cli_gateway, cli_privacy, cli_schemas

    for module in (cli_gateway, cli_schemas, cli_dlq, cli_privacy):
        module.add_parser(sub)
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
