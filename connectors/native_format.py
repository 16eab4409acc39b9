"""ClickHouse's Native format as a client of a given protocol revision expects it.

A ClickHouse server writes Native over HTTP for the ``client_protocol_version`` the client
sends: with a revision above 0 every block starts with its block info, and from revision 54454
every column carries a "custom serialization" flag after its type. The embedded engine (chDB)
always writes revision 0. Clients that send a revision — Grafana's ClickHouse plugin
(clickhouse-go) always does, clickhouse-connect probes with 54405 — then misread the answer, so
the query server rewrites the engine's Native output with :func:`native_for_revision`.

To insert those bytes the columns' data must be walked, which needs each column's size: the
walker knows the fixed-width types, strings, ``Nullable``, ``Array``, ``Map``, ``Tuple``,
``LowCardinality``, the geo aliases and ``SimpleAggregateFunction``. Other types (``Dynamic``,
``Variant``, ``JSON``, ``AggregateFunction``…) raise :class:`UnsupportedNative`; the client can
ask for another format (or no revision) for those.
"""

from __future__ import annotations

import re

CUSTOM_SERIALIZATION_REVISION = 54454
LOW_CARDINALITY_REVISION = 54405
# field 1: is_overflows = false; field 2: bucket_num = -1; field 0: end (BlockInfo::write).
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"

_FIXED = {
    "UInt8": 1, "Int8": 1, "Bool": 1, "Enum8": 1,
    "UInt16": 2, "Int16": 2, "Date": 2, "Enum16": 2, "BFloat16": 2,
    "UInt32": 4, "Int32": 4, "Float32": 4, "DateTime": 4, "Date32": 4, "IPv4": 4,
    "Decimal32": 4, "Time": 4,
    "UInt64": 8, "Int64": 8, "Float64": 8, "DateTime64": 8, "Decimal64": 8, "Time64": 8,
    "UInt128": 16, "Int128": 16, "UUID": 16, "IPv6": 16, "Decimal128": 16,
    "UInt256": 32, "Int256": 32, "Decimal256": 32,
    "Nothing": 1,
}
_ALIASES = {
    "Point": "Tuple(Float64, Float64)",
    "Ring": "Array(Point)", "LineString": "Array(Point)",
    "Polygon": "Array(Ring)", "MultiLineString": "Array(LineString)",
    "MultiPolygon": "Array(Polygon)",
}
_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s+(\S.*)$", re.DOTALL)


class UnsupportedNative(ValueError):
    """The Native data holds a type the walker cannot size."""


def split_type(name: str) -> tuple[str, list[str]]:
    """``Map(String, Array(UInt8))`` → ``("Map", ["String", "Array(UInt8)"])``."""
    name = name.strip()
    if "(" not in name:
        return name, []
    base, rest = name.split("(", 1)
    if not rest.endswith(")"):
        raise UnsupportedNative(f"cannot parse type {name!r}")
    body = rest[:-1]
    args: list[str] = []
    depth, quote, start, i = 0, "", 0, 0
    while i < len(body):
        ch = body[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(body[start:i].strip())
            start = i + 1
        i += 1
    args.append(body[start:].strip())
    return base.strip(), [a for a in args if a]


def _element_type(element: str) -> str:
    """A tuple element: ``name Type``, ```my name` Type`` or just ``Type``."""
    if element.startswith("`"):
        end = element.index("`", 1)
        return element[end + 1:].strip()
    m = _NAMED.match(element)  # a type never has blanks before its first parenthesis
    return m.group(2) if m else element


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise UnsupportedNative("Native data ends early")
        self.pos += n

    def varint(self) -> int:
        shift = value = 0
        while True:
            if self.pos >= len(self.data):
                raise UnsupportedNative("Native data ends early")
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def uint64(self) -> int:
        start = self.pos
        self.skip(8)
        return int.from_bytes(self.data[start:self.pos], "little")

    def string(self) -> bytes:
        n = self.varint()
        start = self.pos
        self.skip(n)
        return self.data[start:self.pos]


def _fixed_width(base: str, args: list[str]) -> int | None:
    if base == "Decimal":
        precision = int(args[0])
        return 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32
    if base == "FixedString":
        return int(args[0])
    if base.startswith("Interval"):
        return 8
    return _FIXED.get(base)


def _skip_prefix(type_name: str, r: _Reader) -> None:
    """The serialization state prefix written before a column's data (LowCardinality keys
    version), recursively for nested types, in ClickHouse's order."""
    base, args = split_type(_ALIASES.get(type_name, type_name))
    if base == "LowCardinality":
        r.skip(8)
    elif base in ("Array", "Nullable"):
        _skip_prefix(args[0], r)
    elif base == "Tuple":
        for a in args:
            _skip_prefix(_element_type(a), r)
    elif base == "Map":
        _skip_prefix(args[0], r)
        _skip_prefix(args[1], r)
    elif base == "SimpleAggregateFunction":
        _skip_prefix(args[-1], r)


def _strip_nullable(type_name: str) -> str:
    base, args = split_type(type_name)
    return args[0] if base == "Nullable" else type_name


def _skip_data(type_name: str, r: _Reader, rows: int) -> None:
    base, args = split_type(_ALIASES.get(type_name, type_name))
    width = _fixed_width(base, args)
    if width is not None:
        r.skip(width * rows)
    elif base == "String":
        for _ in range(rows):
            r.skip(r.varint())
    elif base == "Nullable":
        r.skip(rows)
        _skip_data(args[0], r, rows)
    elif base in ("Array", "Map"):
        total = 0
        if rows:
            r.skip(8 * (rows - 1))
            total = r.uint64()
        if base == "Array":
            _skip_data(args[0], r, total)
        else:
            _skip_data(args[0], r, total)
            _skip_data(args[1], r, total)
    elif base == "Tuple":
        for a in args:
            _skip_data(_element_type(a), r, rows)
    elif base == "SimpleAggregateFunction":
        _skip_data(args[-1], r, rows)
    elif base == "LowCardinality":
        _skip_low_cardinality(args[0], r, rows)
    else:
        raise UnsupportedNative(f"type {type_name} is not supported in Native with a client "
                                "protocol version; ask for another format")


def _skip_low_cardinality(inner: str, r: _Reader, rows: int) -> None:
    """Granules of ``[index type][additional keys?][n indexes][indexes]``."""
    left = rows
    while left > 0:
        flags = r.uint64()
        if flags & (1 << 8):  # NeedGlobalDictionaryBit: never written to Native output
            raise UnsupportedNative("LowCardinality with a global dictionary")
        if flags & (1 << 9):  # HasAdditionalKeysBit
            keys = r.uint64()
            _skip_data(_strip_nullable(inner), r, keys)
        n = r.uint64()
        r.skip(n * (1, 2, 4, 8)[flags & 0xFF])
        if n == 0:
            raise UnsupportedNative("LowCardinality granule without rows")
        left -= n


def native_for_revision(data: bytes, revision: int) -> bytes:
    """Rewrite revision-0 Native blocks (what chDB writes) for a client of ``revision``."""
    if revision <= 0:
        return data
    if revision < LOW_CARDINALITY_REVISION:
        raise UnsupportedNative(f"client_protocol_version {revision} is older than "
                                f"{LOW_CARDINALITY_REVISION}; not supported")
    custom = revision >= CUSTOM_SERIALIZATION_REVISION
    r = _Reader(data)
    out = bytearray()
    while r.pos < len(data):
        out += BLOCK_INFO
        head = r.pos
        columns = r.varint()
        rows = r.varint()
        out += data[head:r.pos]
        for _ in range(columns):
            start = r.pos
            r.string()
            type_name = r.string().decode()
            out += data[start:r.pos]
            if custom:
                out += b"\x00"  # has_custom = false: plain serialization follows
            start = r.pos
            if rows:
                _skip_prefix(type_name, r)
                _skip_data(type_name, r, rows)
            out += data[start:r.pos]
    return bytes(out)
