"""Schema evolution: is every schema compatible with its earlier versions, both ways?

A topic's current schema lives in ``avro/<topic>.avsc``, its earlier versions in
``avro/history/<topic>/*.avsc`` (see :mod:`ioc.schemas.catalogue`). ``ioc schemas check``
requires, against **every** earlier version (transitively, as a registry set to
``FULL_TRANSITIVE`` would):

- **backward** — the current schema reads data written with the old one (old data stays
  readable: the sink and the stream worker resolve every record to the current schema);
- **forward** — the old schema reads data written with the current one (a consumer or an agency
  still on the old version keeps working while producers move on).

The rules are the Avro specification's *schema resolution* (writer → reader): same record /
enum / fixed names (or an alias); a reader field missing in the writer needs a default; writer
fields the reader lacks are skipped; numeric promotion int → long → float → double and
string ↔ bytes; every writer enum symbol must be a reader symbol unless the reader enum has a
default; unions branch by branch; arrays and maps by their items. Changing a field's logical
type (e.g. ``long`` ↔ ``timestamp-millis``) resolves at the byte level but changes the meaning,
so it is reported too. Every verdict "compatible" is cross-checked by writing generated sample
records with one schema and reading them with the other through fastavro.

In practice: add a field **with a default**, add an enum symbol only to an enum that has a
default, never rename or remove a field without a default, never narrow a type. Anything else
is a new major version: a new topic ``…v2`` (new file, new table).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import expand_schema
from fastavro.utils import generate_many

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "double": {"double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
    "boolean": {"boolean"},
    "null": {"null"},
}


def _kind(t: Any) -> str:
    if isinstance(t, list):
        return "union"
    if isinstance(t, str):
        return t
    kind = t.get("type")
    return kind if isinstance(kind, str) else _kind(kind)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _names(t: dict[str, Any]) -> set[str]:
    return {_short(str(t.get("name", "")))} | {_short(a) for a in t.get("aliases", [])}


def _describe(t: Any) -> str:
    if isinstance(t, list):
        return "[" + ", ".join(_describe(b) for b in t) + "]"
    if isinstance(t, dict):
        if t.get("logicalType"):
            return f"{t['type']}/{t['logicalType']}"
        if t.get("name"):
            return f"{t['type']} {_short(t['name'])}"
        return str(t.get("type"))
    return str(t)


def resolution_problems(reader: Any, writer: Any, path: str = "") -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` (empty: it can).

    Both are expanded schemas (no references to named types)."""
    where = path or "record"
    wk, rk = _kind(writer), _kind(reader)
    if wk == "union":
        out = []
        for branch in writer:
            out += resolution_problems(reader, branch, path)
        return out
    if rk == "union":
        for branch in reader:
            if not resolution_problems(branch, writer, path):
                return []
        return [f"{where}: writer type {_describe(writer)} matches no branch of the reader's "
                f"union {_describe(reader)}"]
    if wk in _PROMOTIONS or rk in _PROMOTIONS:
        if wk not in _PROMOTIONS or rk not in _PROMOTIONS.get(wk, set()):
            return [f"{where}: type changed from {_describe(writer)} to {_describe(reader)}"]
        wl = writer.get("logicalType") if isinstance(writer, dict) else None
        rl = reader.get("logicalType") if isinstance(reader, dict) else None
        if wl != rl:
            return [f"{where}: logical type changed from {wl or 'none'} to {rl or 'none'} "
                    f"(same bytes, different meaning)"]
        return []
    if wk != rk:
        return [f"{where}: type changed from {_describe(writer)} to {_describe(reader)}"]
    if wk in ("record", "enum", "fixed") and not (_names(reader) & {_short(writer["name"])}):
        return [f"{where}: {wk} name changed from {_short(writer['name'])} to "
                f"{_short(reader['name'])} (add the old name to 'aliases')"]
    if wk == "record":
        return _record_problems(reader, writer, path)
    if wk == "enum":
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            return [f"{where}: enum symbols {missing} are unknown to the reader, whose enum "
                    "has no default"]
        return []
    if wk == "fixed":
        if reader["size"] != writer["size"]:
            return [f"{where}: fixed size changed from {writer['size']} to {reader['size']}"]
        return []
    if wk == "array":
        return resolution_problems(reader["items"], writer["items"], f"{where}[]")
    if wk == "map":
        return resolution_problems(reader["values"], writer["values"], f"{where}{{}}")
    return [f"{where}: unsupported type {wk}"]


def _record_problems(reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
    out = []
    wfields = {f["name"]: f for f in writer["fields"]}
    for rf in reader["fields"]:
        names = [rf["name"], *rf.get("aliases", [])]
        wf = next((wfields[n] for n in names if n in wfields), None)
        fpath = f"{path}.{rf['name']}" if path else rf["name"]
        if wf is None:
            if "default" not in rf:
                out.append(f"{fpath}: field is missing in the writer's schema and has no "
                           "default in the reader's")
            continue
        out += resolution_problems(rf["type"], wf["type"], fpath)
    return out


def _expand(raw: dict[str, Any]) -> Any:
    return expand_schema(raw)


def _sample_check(reader_raw: dict[str, Any], writer_raw: dict[str, Any], n: int = 20,
                  ) -> list[str]:
    """Write generated records with the writer, read them with the reader (fastavro)."""
    writer = parse_schema(writer_raw, _write_hint=False)
    reader = parse_schema(reader_raw, _write_hint=False)
    try:
        for rec in generate_many(writer, n):
            buf = io.BytesIO()
            schemaless_writer(buf, writer, rec)
            buf.seek(0)
            schemaless_reader(buf, writer, reader)
    except Exception as exc:
        return [f"fastavro cannot read generated data: {type(exc).__name__}: {str(exc)[:200]}"]
    return []


@dataclass
class Verdict:
    topic: str
    old: str                      # the earlier version's file (relative)
    backward: list[str] = field(default_factory=list)
    forward: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.backward and not self.forward


def compare(current: dict[str, Any], old: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(backward problems, forward problems) of ``current`` against ``old``."""
    cur, prev = _expand(current), _expand(old)
    backward = resolution_problems(cur, prev)
    forward = resolution_problems(prev, cur)
    if not backward:
        backward = _sample_check(current, old)
    if not forward:
        forward = _sample_check(old, current)
    return backward, forward


def check_directory(directory: Path) -> list[Verdict]:
    """One verdict per (topic, earlier version) found under ``directory``."""
    out = []
    for hist in sorted((directory / "history").glob("*/")):
        topic = hist.name
        current_path = directory / f"{topic}.avsc"
        olds = sorted(hist.glob("*.avsc"))
        if not current_path.exists():
            out += [Verdict(topic, str(p.relative_to(directory)),
                            [f"history for {topic} but no current schema {current_path.name}"])
                    for p in olds]
            continue
        current = json.loads(current_path.read_text(encoding="utf-8"))
        for path in olds:
            old = json.loads(path.read_text(encoding="utf-8"))
            backward, forward = compare(current, old)
            out.append(Verdict(topic, str(path.relative_to(directory)), backward, forward))
    return out
