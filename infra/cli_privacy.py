"""``ioc privacy``: personal data — find it in clear text, delete one person's data.

    ioc privacy scan [--name "Full Name"]… [--names-file F] [--allow-phone N]… [--no-kafka]
    ioc privacy forget [PSEUDONYM…] [--phone N]… [--name "Full Name"]… [--dry-run]

``scan`` reads every string column of every ClickHouse table and every dead letter for phone
numbers and the given names (:mod:`ioc.infra.privacy_scan`); exit status 1 if anything is
found. ``forget`` deletes the reports of the people with these pseudonyms (or the pseudonyms of
these phone numbers / names, computed with the deployment's key) from every table that holds
them (:mod:`ioc.infra.privacy_forget`). Both work while ``ioc run`` runs (through its query
server) and when it is stopped. Operator's guide: ``docs/privacy.md``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ioc.infra.settings import Settings

EXIT_USAGE = 2


def cmd_scan(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.infra.cli import _kafka_needed, format_result, store_client
    from ioc.infra.privacy_scan import DLQ_TOPIC, NameRule, ScanError, scan

    names = list(args.name or [])
    if args.names_file:
        try:
            text = Path(args.names_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            print(f"ioc privacy scan: {args.names_file}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        names += [line.strip() for line in text.splitlines()
                  if line.strip() and not line.startswith("#")]
    try:
        for n in names:
            NameRule.of(n)
    except ScanError as exc:
        print(f"ioc privacy scan: {exc}", file=sys.stderr)
        return EXIT_USAGE
    topics = [] if args.no_kafka else [DLQ_TOPIC, *(args.topic or [])]
    if topics:
        _kafka_needed(settings)
    client = store_client(settings, "privacy scan")
    if client is None:
        return 1
    try:
        print(f"ioc privacy scan: {settings.database} (every table) and "
              f"{', '.join(topics) or 'no Kafka topic'}, {len(names)} name(s) …",
              file=sys.stderr)
        report = scan(client, settings, names, args.allow_phone or [], topics)
    except RuntimeError as exc:
        print(f"ioc privacy scan: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if args.format == "json":
        print(json.dumps({"clean": report.clean, "tables": report.tables,
                          "columns": report.columns, "kafka_records": report.records,
                          "findings": [f.as_dict() for f in report.findings]},
                         ensure_ascii=False))
    else:
        if report.findings:
            print(format_result(["where", "kind", "rows", "samples (masked)"],
                                [[f.where, f.kind, f.count, ", ".join(f.samples)]
                                 for f in report.findings], "table"))
        print(f"{'CLEAN' if report.clean else 'FOUND'}: {len(report.findings)} finding(s) in "
              f"{report.tables} tables ({report.columns} string columns) and "
              f"{report.records} Kafka records")
    return 0 if report.clean else 1


def _pseudonyms(args: argparse.Namespace, settings: Settings) -> list[str]:
    from ioc.connectors.privacy import PseudonymKeyError, pseudonym_key, pseudonymize

    out = list(args.pseudonym or [])
    given = [*(args.phone or []), *(args.name or [])]
    if given:
        try:
            key = pseudonym_key(settings, create=False)
        except PseudonymKeyError as exc:
            raise SystemExit(f"ioc privacy forget: {exc}") from None
        out += [pseudonymize(v, key) for v in given]
    return sorted(set(out))


def _forget_running(settings: Settings, pseudonyms: list[str], dry_run: bool) -> Any | None:
    """Through the running platform's query server, if there is one; None otherwise."""
    from ioc.connectors.query_server import ADMIN_FORGET, ADMIN_USER, discover
    from ioc.infra.privacy_forget import ForgetResult

    if settings.chdb_path is None:
        return None
    info = discover(settings)
    if info is None or not info.admin_password:
        return None
    token = base64.b64encode(f"{ADMIN_USER}:{info.admin_password}".encode()).decode()
    req = urllib.request.Request(
        f"http://{info.host}:{info.port}{ADMIN_FORGET}", method="POST",
        data=json.dumps({"pseudonyms": pseudonyms, "dry_run": dry_run}).encode(),
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:  # noqa: S310
            return ForgetResult.from_dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        raise RuntimeError(exc.read().decode("utf-8", "replace").strip()) from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"the running platform's query server did not answer: {exc}"
                           ) from None


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.clickhouse import ClickHouseUnavailable, connect
    from ioc.infra.cli import format_result
    from ioc.infra.privacy_forget import ConnectSql, forget, tombstone_alerts
    from ioc.streams.feedback import RETENTION

    pseudonyms = _pseudonyms(args, settings)
    if not pseudonyms:
        print("ioc privacy forget: give a PSEUDONYM, --phone or --name", file=sys.stderr)
        return EXIT_USAGE
    verb = "would delete" if args.dry_run else "deleted"
    try:
        result = _forget_running(settings, pseudonyms, args.dry_run)
        where = "running platform"
        if result is None:
            try:
                client = connect(settings.clickhouse)
            except ClickHouseUnavailable as exc:
                print(f"ioc privacy forget: {exc}", file=sys.stderr)
                return 1
            where = settings.clickhouse_display
            try:
                from ioc.infra.migrations import cluster_ddl

                cluster = (cluster_ddl(settings.database, settings.clickhouse_cluster)
                           if settings.clickhouse_cluster else None)
                result = forget(ConnectSql(client, cluster), settings.database, pseudonyms,
                                args.dry_run)
            finally:
                client.close()
    except ValueError as exc:
        print(f"ioc privacy forget: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as exc:
        print(f"ioc privacy forget: {exc}", file=sys.stderr)
        return 1
    tombstones, problem = 0, ""
    if not args.dry_run and result.alert_ids:
        try:
            tombstones = tombstone_alerts(settings, result.alert_ids)
        except Exception as exc:  # ClickHouse is done; say what is left
            problem = f"alert tombstones not written to Kafka: {exc}"
    if args.format == "json":
        print(json.dumps({**result.as_dict(), "kafka_tombstones": tombstones,
                          "problem": problem or None}, ensure_ascii=False))
    else:
        print(f"{len(pseudonyms)} pseudonym(s), {len(result.report_ids)} report(s), "
              f"{len(result.alert_ids)} alert(s) about them ({where})")
        rows = [[t, n] for t, n in sorted(result.deleted.items())]
        print(format_result(["table", f"rows {verb}"], rows, "table"))
        if not args.dry_run:
            print(f"Kafka: {tombstones} tombstones on the compacted alert topics; the reports "
                  f"stay on {settings.topic('ioc.feedback.report.v1')} (pseudonym only, no "
                  f"name or phone) until its retention ends, {RETENTION.days} days after "
                  "arrival — see docs/privacy.md")
    if problem:
        print(f"ioc privacy forget: {problem}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("privacy", help="personal data: scan for clear text, forget a person",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    psub = s.add_subparsers(dest="privacy_action", required=True)
    a = psub.add_parser("scan", help="look for phone numbers and names in everything stored")
    a.add_argument("--name", action="append", metavar="FULL NAME",
                   help="a person's full name to look for (repeatable)")
    a.add_argument("--names-file", help="full names to look for, one per line (keeps them out "
                                        "of the shell history)")
    a.add_argument("--allow-phone", action="append", metavar="NUMBER",
                   help="an official number that may appear (reference tables' numbers are "
                        "allowed already)")
    a.add_argument("--topic", action="append", help="another Kafka topic to read besides "
                                                    "ioc.dlq.v1 (contract name)")
    a.add_argument("--no-kafka", action="store_true", help="ClickHouse only")
    a.add_argument("--format", choices=["table", "json"], default="table")
    a.set_defaults(func=cmd_scan)
    a = psub.add_parser("forget", help="delete one person's reports everywhere ClickHouse "
                                       "holds them")
    a.add_argument("pseudonym", nargs="*", help="reporter_pseudonym value(s): 16 hex digits")
    a.add_argument("--phone", action="append", help="the person's phone number (its "
                                                    "pseudonym is computed with the key)")
    a.add_argument("--name", action="append", help="the person's name as they gave it")
    a.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    a.add_argument("--format", choices=["table", "json"], default="table")
    a.set_defaults(func=cmd_forget)
