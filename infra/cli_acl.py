"""``ioc acl apply``: SCRAM users, ACLs and produce quotas from the agencies manifest.

    ioc acl apply --manifest agencies.toml [--dry-run] [--no-prune] [--rotate]

Runs with the cluster's super-user settings (``IOC_KAFKA_USERNAME=admin`` …, see
``ioc.infra.settings``); agency and service passwords come from the variables the manifest's
``password_env`` names. Prints the plan (never a password); exit code 0 when the cluster
matches the manifest afterwards, 1 on a Kafka error, 2 on a bad manifest. See
``ioc.infra.kafka_acl`` for the model and ``docs/operations.md`` for the procedure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ioc.infra.settings import Settings


def add_acl_parser(sub: Any) -> None:
    s = sub.add_parser("acl", help="Kafka users, ACLs and quotas from the agencies manifest")
    s.add_argument("action", choices=["apply"])
    s.add_argument("--manifest", required=True, type=Path,
                   help="agencies manifest (TOML), e.g. infra/security/agencies.example.toml")
    s.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    s.add_argument("--no-prune", dest="prune", action="store_false",
                   help="keep managed ACLs that the manifest no longer grants")
    s.add_argument("--rotate", action="store_true",
                   help="set a new SCRAM credential for every user whose password variable "
                        "is set (password rotation)")
    s.set_defaults(func=cmd_acl)


def cmd_acl(args: argparse.Namespace, settings: Settings) -> int:
    from confluent_kafka import KafkaException

    from ioc.infra.kafka_acl import ManifestError, Topics, apply_manifest, load_manifest

    try:
        manifest = load_manifest(args.manifest)
    except ManifestError as exc:
        print(f"ioc acl: {exc}", file=sys.stderr)
        return 2
    if manifest.topic_prefix != settings.topic_prefix:
        print(f"ioc acl: the manifest's topic_prefix {manifest.topic_prefix!r} differs from "
              f"IOC_TOPIC_PREFIX {settings.topic_prefix!r}", file=sys.stderr)
        return 2
    what = "plan (dry run)" if args.dry_run else "plan"
    print(f"ioc acl: {what} for {settings.bootstrap} as {settings.kafka_username or 'anonymous'}",
          file=sys.stderr)
    try:
        apply_manifest(settings, manifest, Topics.from_catalogue(), dry_run=args.dry_run,
                       prune=args.prune, rotate=args.rotate)
    except KafkaException as exc:
        print(f"ioc acl: {exc}", file=sys.stderr)
        return 1
    return 0
