"""``ioc dlq``: dead letters — what was rejected and why, and re-submitting it after a fix.

    ioc dlq list [--topic T] [--format table|json]   dead letters with their reason
    ioc dlq show ID                                  one in full: reason, position, payload
    ioc dlq replay ID… [--fixed F.json] [--force]    send back to the source topic

Dead letters are read from the ``ioc.dlq.v1`` topic (the embedded ClickHouse belongs to the
running platform). See :mod:`ioc.connectors.deadletters` for ids, replay rules and access.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ioc.infra.settings import Settings


def _letters(settings: Settings, topic: str | None = None) -> tuple[Any, list[Any]]:
    from ioc.connectors.deadletters import read_dead_letters
    from ioc.connectors.schema_registry import serde_for

    serde = serde_for(settings)
    return serde, read_dead_letters(settings, serde, topic=topic)


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.infra.cli import _kafka_needed, format_result

    _kafka_needed(settings)
    _serde, letters = _letters(settings, args.topic)
    letters = letters[-args.limit:] if args.limit else letters
    if args.format == "json":
        for d in letters:
            s = d.summary()
            s.pop("payload_hex")
            print(json.dumps(s, ensure_ascii=False))
        return 0
    cols = ["id", "failed_at", "topic", "partition", "offset", "error_type", "stage", "reason"]
    rows = [[s[c] if c != "reason" else str(s[c])[:100] for c in cols]
            for s in (d.summary() for d in letters)]
    print(format_result(cols, rows, "table"))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.deadletters import find, payload_view
    from ioc.infra.cli import _kafka_needed

    _kafka_needed(settings)
    serde, letters = _letters(settings)
    try:
        letter = find(letters, args.id)
    except KeyError as exc:
        print(f"ioc dlq show: {exc.args[0]}", file=sys.stderr)
        return 1
    out = letter.summary()
    out.pop("payload_hex")
    out["key"] = (letter.record.get("key") or b"").decode("utf-8", "replace")
    out["payload"] = payload_view(serde, letter)
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.deadletters import find
    from ioc.connectors.producer import EventProducer, make_producer
    from ioc.infra.cli import _kafka_needed
    from ioc.schemas.errors import conversion_errors, field_errors
    from ioc.schemas.jsonconv import ConversionError, json_to_record
    from ioc.schemas.serde import DecodeError, EncodeError

    _kafka_needed(settings)
    if args.fixed and len(args.id) != 1:
        print("ioc dlq replay: --fixed goes with exactly one dead-letter id", file=sys.stderr)
        return 2
    serde, letters = _letters(settings)
    try:
        chosen = [find(letters, i) for i in args.id]
    except KeyError as exc:
        print(f"ioc dlq replay: {exc.args[0]}", file=sys.stderr)
        return 1
    producer = EventProducer(make_producer(settings.bootstrap, **settings.kafka_security),
                             serde=serde,
                             topic_name=settings.topic)
    for letter in chosen:
        topic = letter.source_topic
        if args.fixed:
            try:
                obj = json.loads(Path(args.fixed).read_text(encoding="utf-8-sig"))
                record = json_to_record(serde.catalogue.get(topic), obj)
                producer.send(topic, record)
            except (OSError, ValueError, KeyError) as exc:
                if isinstance(exc, ConversionError):
                    problems = [f"{e.field}: {e.en}" for e in conversion_errors(topic, exc)]
                elif isinstance(exc, EncodeError):
                    problems = [f"{e.field}: {e.en}" for e in field_errors(exc.problems)]
                else:
                    problems = [str(exc)]
                print(f"ioc dlq replay: the corrected event is not valid for {topic}: "
                      + "; ".join(problems), file=sys.stderr)
                return 1
            print(f"{letter.id}: corrected event {record['event_id']} sent to "
                  f"{settings.topic(topic)}")
            continue
        payload = letter.record.get("payload") or b""
        try:
            serde.decode(topic, payload)
        except DecodeError as exc:
            if not args.force:
                print(f"ioc dlq replay: {letter.id} would be dead-lettered again "
                      f"({exc.error_type}: {exc.reason}); fix it with --fixed FILE.json, or "
                      "--force to send it anyway", file=sys.stderr)
                return 1
        producer.send_raw(topic, payload, key=letter.record.get("key"))
        print(f"{letter.id}: original bytes sent to {settings.topic(topic)}")
    producer.flush()
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("dlq", help="dead letters: list, show, replay",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    dsub = s.add_subparsers(dest="dlq_action", required=True)
    a = dsub.add_parser("list", help="dead letters with their reason")
    a.add_argument("--topic", help="only those of this source topic")
    a.add_argument("--limit", type=int, default=0, help="only the latest N")
    a.add_argument("--format", choices=["table", "json"], default="table")
    a.set_defaults(func=cmd_list)
    a = dsub.add_parser("show", help="one dead letter in full")
    a.add_argument("id", help="<partition>:<offset> as listed")
    a.set_defaults(func=cmd_show)
    a = dsub.add_parser("replay", help="send dead letters back to their source topic")
    a.add_argument("id", nargs="+", help="<partition>:<offset> as listed")
    a.add_argument("--fixed", help="a JSON file with the corrected event (one id only)")
    a.add_argument("--force", action="store_true",
                   help="send the original bytes even if they would fail again")
    a.set_defaults(func=cmd_replay)
