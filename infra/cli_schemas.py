"""``ioc schemas``: the data contract as documents, its evolution rules, a schema registry.

    ioc schemas docs [--out DIR] [--check]   the catalogue pages (vi + en, Markdown + HTML)
                                             and openapi.json; --check fails when stale (CI)
    ioc schemas check                        every schema against its earlier versions,
                                             backward and forward (ioc.schemas.compat)
    ioc schemas register --registry URL      register every schema (history first) under
                                             <topic>-value in a Confluent-compatible registry

Example events on the pages come from the simulators at a fixed instant (deterministic), so
they look like real data and pass validation; a topic without a simulator gets a synthetic
example built from its schema.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.infra.settings import Settings

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs" / "contracts"
EXAMPLE_AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 09:00 in Quảng Nam, a Monday


def _synthetic(raw: dict[str, Any], area: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in raw["fields"]:
        name, t = f["name"], f["type"]
        if isinstance(t, list) and "null" in t and f.get("default", "x") is None:
            out[name] = None
            continue
        base: Any = next((b for b in t if b != "null"), t) if isinstance(t, list) else t
        kind = base.get("type") if isinstance(base, dict) else base
        if isinstance(base, dict) and base.get("logicalType") == "timestamp-millis":
            out[name] = EXAMPLE_AT
        elif name == "event_id":
            out[name] = "vd-0001"
        elif name == "source":
            out[name] = "MA-CO-QUAN"
        elif name == "area_code":
            out[name] = area
        elif kind == "enum":
            out[name] = base.get("default", base["symbols"][0])
        elif kind in ("int", "long"):
            out[name] = 1
        elif kind in ("float", "double"):
            out[name] = 1.0
        elif kind == "boolean":
            out[name] = False
        elif "default" in f:
            out[name] = f["default"]
        else:
            out[name] = "vd"
    return out


def example_events(catalogue: Any, reference_dir: Path | None = None
                   ) -> dict[str, dict[str, Any]]:
    """One valid example record per event topic (simulated where a simulator exists)."""
    from datetime import timedelta

    from ioc.connectors.simulate import INTERVAL_SIMULATORS
    from ioc.connectors.simulator import TrafficSimulator
    from ioc.infra.reference import load_reference
    from ioc.schemas.serde import EncodeError, Serde

    serde = Serde(catalogue)
    ref = load_reference(reference_dir)
    candidates: list[Any] = []
    traffic = TrafficSimulator(ref.segments, seed=0)
    candidates += traffic.events_at(EXAMPLE_AT)
    candidates += traffic.incidents_between(EXAMPLE_AT - timedelta(days=7), EXAMPLE_AT)
    with tempfile.TemporaryDirectory() as tmp:
        # Simulators that pseudonymise fake reporters get a fixed key: stable pages.
        key_file = Path(tmp) / "pseudonym.key"
        key_file.write_text("contract-docs-example-key-0123456789\n", encoding="utf-8")
        key_file.chmod(0o600)
        settings = Settings(data_dir=Path(tmp))
        for make in INTERVAL_SIMULATORS.values():
            factory: Any = make
            takes_settings = len(inspect.signature(factory).parameters) >= 3
            sim = factory(ref, 0, settings) if takes_settings else factory(ref, 0)
            candidates += sim.events_at(EXAMPLE_AT, 6 * 3600)
    out: dict[str, dict[str, Any]] = {}
    for ev in candidates:
        if ev.topic in out or ev.topic not in catalogue.by_topic:
            continue
        try:
            serde.encode(ev.topic, ev.value)
        except EncodeError:
            continue
        out[ev.topic] = dict(ev.value)
    area = next((a.code for a in ref.areas.values() if a.parent_code), "")
    for topic in catalogue.event_topics:
        out.setdefault(topic, _synthetic(catalogue.get(topic).raw, area))
    return out


def render_docs() -> dict[str, str]:
    from ioc.connectors.gateway.openapi import openapi_spec
    from ioc.connectors.producer import PARTITION_KEYS
    from ioc.schemas.catalogue import Catalogue
    from ioc.schemas.docs import render_catalogue

    catalogue = Catalogue()
    keys: Mapping[str, str] = PARTITION_KEYS
    return render_catalogue(catalogue, example_events(catalogue), keys,
                            openapi_spec(catalogue))


def stale_files(out: Path, files: Mapping[str, str]) -> list[str]:
    """Files that differ from ``files``, are missing, or should not be there."""
    stale = [rel for rel, text in files.items()
             if not (out / rel).is_file() or (out / rel).read_text(encoding="utf-8") != text]
    if out.is_dir():
        stale += sorted(str(p.relative_to(out)) for p in out.rglob("*")
                        if p.is_file() and str(p.relative_to(out)) not in files)
    return sorted(stale)


def cmd_docs(args: argparse.Namespace, settings: Settings) -> int:
    out = Path(args.out) if args.out else DOCS_DIR
    files = render_docs()
    if args.check:
        stale = stale_files(out, files)
        if stale:
            print("data-contract docs out of date (run `ioc schemas docs`): "
                  + ", ".join(stale[:20]) + (" …" if len(stale) > 20 else ""), file=sys.stderr)
            return 1
        print(f"data-contract docs up to date ({len(files)} files)")
        return 0
    for rel in stale_files(out, files):
        path = out / rel
        if rel not in files:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel], encoding="utf-8")
        print(path)
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.schemas.catalogue import AVRO_DIR
    from ioc.schemas.compat import check_directory

    directory = Path(args.dir) if args.dir else AVRO_DIR
    verdicts = check_directory(directory)
    bad = [v for v in verdicts if not v.ok]
    for v in verdicts:
        state = "ok" if v.ok else "INCOMPATIBLE"
        print(f"{v.topic} vs {v.old}: {state}")
        for p in v.backward:
            print(f"  backward (new schema reading old data): {p}")
        for p in v.forward:
            print(f"  forward (old schema reading new data): {p}")
    topics = len({v.topic for v in verdicts})
    print(f"{len(verdicts)} earlier versions of {topics} topics checked, {len(bad)} "
          "incompatible" + ("" if verdicts else " (no history yet)"))
    return 1 if bad else 0


def cmd_register(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.connectors.schema_registry import RegistryClient, RegistryError, register_catalogue
    from ioc.schemas.catalogue import Catalogue

    url = args.registry or settings.schema_registry_url
    if not url:
        print("ioc schemas register: give --registry URL (or set IOC_SCHEMA_REGISTRY_URL)",
              file=sys.stderr)
        return 2
    try:
        done = register_catalogue(RegistryClient(url), Catalogue(), settings.topic)
    except RegistryError as exc:
        print(f"ioc schemas register: {exc}", file=sys.stderr)
        return 1
    for r in done:
        print(f"{r.subject}  id={r.schema_id}  {r.source}")
    print(f"{len(done)} schemas registered at {url}; set IOC_SCHEMA_REGISTRY_URL={url} so "
          "producers use Confluent framing")
    return 0


def add_parser(sub: Any) -> None:
    s = sub.add_parser("schemas", help="data-contract docs, compatibility check, registry",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ssub = s.add_subparsers(dest="schemas_action", required=True)
    d = ssub.add_parser("docs", help="write the catalogue pages (Markdown, HTML, OpenAPI)")
    d.add_argument("--out", help=f"folder (default {DOCS_DIR})")
    d.add_argument("--check", action="store_true", help="fail if the committed docs are stale")
    d.set_defaults(func=cmd_docs)
    c = ssub.add_parser("check", help="compatibility of every schema with its earlier versions")
    c.add_argument("--dir", help="a schema folder laid out like schemas/avro (tests)")
    c.set_defaults(func=cmd_check)
    r = ssub.add_parser("register", help="register the catalogue in a schema registry")
    r.add_argument("--registry", help="registry URL (default IOC_SCHEMA_REGISTRY_URL)")
    r.set_defaults(func=cmd_register)
