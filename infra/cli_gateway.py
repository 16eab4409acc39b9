"""``ioc gateway``: the HTTP ingestion gateway and its agencies' API keys.

    ioc gateway [--host H] [--port P]          run the gateway (see ioc.connectors.gateway)
    ioc gateway keys add --agency CODE --topic T [--topic T…] [--source S…] [--rate R]
                         [--burst B] [--name TEXT]      create a key (printed once)
    ioc gateway keys list                      keys with agency, topics, limits, state
    ioc gateway keys revoke KEY_ID             revoke (a running gateway notices at once)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ioc.infra.settings import Settings


def _gateway_settings(args: argparse.Namespace, settings: Settings) -> Any:
    from ioc.connectors.gateway.settings import GatewaySettings

    gs = GatewaySettings.from_env(settings)
    if getattr(args, "host", None):
        gs = gs.with_(host=args.host)
    if getattr(args, "port", None):
        gs = gs.with_(port=args.port)
    if getattr(args, "keys_file", None):
        from pathlib import Path

        gs = gs.with_(keys_file=Path(args.keys_file))
    return gs


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.gateway.server import run_gateway
    from ioc.infra.cli import _kafka_needed
    from ioc.infra.runtime import configure_logging

    configure_logging(args.verbose)
    _kafka_needed(settings)
    gs = _gateway_settings(args, settings)
    if not gs.keys_path.exists():
        print(f"ioc gateway: no keys yet ({gs.keys_path}); create one with `ioc gateway keys "
              "add`", file=sys.stderr)
    print(f"ioc gateway: http://{gs.host}:{gs.port} → Kafka {settings.bootstrap} "
          f"(keys: {gs.keys_path})", file=sys.stderr, flush=True)
    return run_gateway(gs, print_line=lambda *a, **k: None)


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.gateway.keys import KeyStore, KeyStoreError
    from ioc.schemas.catalogue import Catalogue

    store = KeyStore(_gateway_settings(args, settings).keys_path)
    try:
        if args.keys_action == "add":
            topics = Catalogue().event_topics
            import fnmatch

            for pattern in args.topic:
                if not any(fnmatch.fnmatchcase(t, pattern) for t in topics):
                    print(f"ioc gateway keys: {pattern!r} matches no event topic; known: "
                          + ", ".join(topics), file=sys.stderr)
                    return 2
            clear, entry = store.add(args.agency, args.topic, name=args.name or "",
                                     sources=args.source, rate_per_s=args.rate,
                                     burst=args.burst)
            print(clear)
            print(f"key {entry.key_id} for {entry.agency}: topics {', '.join(entry.topics)}; "
                  f"{entry.rate_per_s:g} events/s, burst {entry.burst}. Give the key above to "
                  "the agency now: only its hash is stored.", file=sys.stderr)
        elif args.keys_action == "list":
            rows = store.keys()
            if not rows:
                print(f"no keys in {store.path}")
            for k in rows:
                state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
                print(f"{k.key_id}  {k.agency:<14} {state:<30} {k.rate_per_s:g}/s burst "
                      f"{k.burst}  topics={','.join(k.topics)}"
                      + (f"  sources={','.join(k.sources)}" if k.sources else "")
                      + (f"  ({k.name})" if k.name else ""))
        else:
            entry = store.revoke(args.key_id)
            print(f"key {entry.key_id} of {entry.agency} revoked at {entry.revoked_at}")
    except KeyStoreError as exc:
        print(f"ioc gateway keys: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("gateway", help="the HTTP ingestion gateway (and its API keys)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--host", help="listen address (default IOC_GATEWAY_HOST or 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (default IOC_GATEWAY_PORT or 8088)")
    s.add_argument("--keys-file", help="keys file (default IOC_GATEWAY_KEYS_FILE or "
                                       "$IOC_DATA_DIR/gateway/keys.json)")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(func=cmd_gateway)
    gsub = s.add_subparsers(dest="gateway_command", metavar="keys")
    k = gsub.add_parser("keys", help="manage agencies' API keys")
    ksub = k.add_subparsers(dest="keys_action", required=True)
    a = ksub.add_parser("add", help="create a key for an agency (printed once)")
    a.add_argument("--agency", required=True, help="agency code, e.g. SGTVT-QNA")
    a.add_argument("--topic", action="append", required=True,
                   help="a topic or pattern it may write (repeat), e.g. 'ioc.traffic.*'")
    a.add_argument("--source", action="append", default=[],
                   help="allowed values of the events' source field (default: the agency)")
    a.add_argument("--rate", type=float, default=50.0, help="events per second (default 50)")
    a.add_argument("--burst", type=int, default=500, help="bucket size in events (default 500)")
    a.add_argument("--name", help="a note, e.g. the system that uses the key")
    ksub.add_parser("list", help="list keys (never the keys themselves)")
    r = ksub.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")
    k.set_defaults(func=cmd_keys)
