"""Looking for personal data in clear text in everything the platform stores.

Citizens' names and phone numbers must never be stored (:mod:`ioc.connectors.privacy`); this
module checks that they are not. :func:`scan` reads **every string-like column of every table**
of the ClickHouse database (found in ``system.columns``: ``String``, ``FixedString``,
``LowCardinality``/``Nullable`` of them, and ``Array``/``Map``/``Tuple`` holding strings, read
as their text form) and **every record of the dead-letter topic** ``ioc.dlq.v1`` (its key,
reason and payload; the payload is read every way it can be — as text, as JSON with its escapes
decoded, and as an Avro record of its source topic), and reports where it finds:

**Phone numbers** (always; :data:`PHONE_PATTERN`) — Vietnamese numbers in national or
international form, with or without separators (space, ``.``, ``-``; brackets around a landline's
area code):

- mobile: ``0`` / ``84`` / ``+84``, then a mobile prefix (``32``–``39``, ``52 55 56 58 59``,
  ``70 76``–``79``, ``81``–``89``, ``90``–``99``) and 7 more digits — ``0905123456``,
  ``0905 123 456``, ``0905.123.456``, ``+84 905 123 456``, ``84905123456``;
- landline: ``0`` / ``84`` / ``+84``, then ``2`` and 9 more digits — ``(0235) 3812 345``,
  ``024 3825 1234``.

A number counts only as a whole: not glued to a digit, ``_``, ``+`` or a hex letter ``a``–``f``
before it (ids and digests are hex; ``SĐT0905123456`` and ``tel:0905123456`` are phones), nor to
a letter or digit after it, and not after ``<digit>.`` or ``<digit>,`` (a decimal such as
``15.0812345678`` is a coordinate, not a phone); a separator right after a leading ``0`` is not
accepted (``0.905123456`` is a number). Bare 9-digit runs (a number that lost its leading
zero) are not reported: offsets, counts and ids are full of them; the producers mask them in
free text anyway. Numeric columns are not read: no contract field is a phone number, and a
number stored as an integer would have lost its leading zero.

**Official numbers are allowed**: a phone number found in a reference table (``ref_*``: an
agency's hotline, a hospital's switchboard) is not a finding there nor anywhere else, and the
caller may allow more (``allow_phones``). The shipped reference data holds none.

**Names** (only those the caller gives, e.g. the reporters a test sent or a citizen asking what
is kept about them) — matched as the **full name**, compared without case, accents (``đ`` →
``d``) or extra spacing, as whole words: ``Nguyễn Văn Phúc`` is found in ``gửi: NGUYEN VAN
PHUC.``, never in ``Nguyễn Văn Phúcc`` nor from ``Văn Phúc`` alone, and ``Nguyễn Văn Trỗi``
only where that whole name stands (a school named after him is a finding only if the caller
asks for that name). A name must have at least two words: a given name alone would match
schools, streets and agencies named after people, which reference data legitimately holds.
Names written as JSON escapes (``Nguy\\u1ec5n``) are found too.

The phone rule runs inside ClickHouse (RE2, the same pattern as Python's here), so a large
table is scanned where it lives; only counts and up to :data:`SAMPLES` distinct matching values
per column come back, and findings show them masked (``09•••••456``, initials for names): the
report itself must not spread what it found.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from ioc.connectors.privacy import normalise_name, normalise_phone
from ioc.infra.settings import Settings
from ioc.schemas.serde import DecodeError, Serde

DLQ_TOPIC = "ioc.dlq.v1"
SAMPLES = 20

_SEP = r"[ .\-]?"
_MOBILE_PREFIX = (rf"(?:3{_SEP}[2-9]|5{_SEP}[25689]|7{_SEP}[06-9]|8{_SEP}[1-9]|"
                  rf"9{_SEP}[0-9])")
_COUNTRY = r"(?:\+84[ .\-]{0,2}|84[ .\-]?|0)"
_NUMBER = (rf"(?:{_COUNTRY}{_MOBILE_PREFIX}(?:{_SEP}[0-9]){{7}}"
           rf"|\(?{_COUNTRY}2(?:[ .\-()]{{0,2}}[0-9]){{9}})")
_BEFORE = r"(?:^[.,]?|[^0-9A-Fa-f_+.,]|[^0-9][.,])"
_AFTER = r"(?:[^0-9A-Za-z_]|$)"
PHONE_PATTERN = f"{_BEFORE}({_NUMBER}){_AFTER}"
"""The phone rule (see the module doc), valid both for Python's ``re`` and ClickHouse's RE2."""
_PHONE = re.compile(PHONE_PATTERN)

_STRINGY = re.compile(r"\b(?:String|FixedString)\b")
_PLAIN = re.compile(r"^(?:LowCardinality\()?(?:Nullable\()?(?:String|FixedString\(\d+\))\)?\)?$")


class ScanError(ValueError):
    """Unusable scan arguments (e.g. a name of one word)."""


@dataclass(frozen=True)
class Finding:
    where: str          # "clickhouse ioc.table.column" or "kafka ioc.dlq.v1[p]@offset field"
    kind: str           # "phone" or "name"
    count: int          # rows (ClickHouse) or 1 (a Kafka record's field)
    samples: tuple[str, ...]  # masked

    def as_dict(self) -> dict[str, Any]:
        return {"where": self.where, "kind": self.kind, "count": self.count,
                "samples": list(self.samples)}


@dataclass
class ScanReport:
    findings: list[Finding] = field(default_factory=list)
    tables: int = 0
    columns: int = 0
    records: int = 0        # Kafka records read
    allowed: set[str] = field(default_factory=set)  # official numbers (normalised)

    @property
    def clean(self) -> bool:
        return not self.findings


# -- the rules, in Python -------------------------------------------------------------------

def fold(text: str) -> str:
    """Lower case without accents (``đ`` → ``d``); spacing kept (see :func:`normalise_name`)."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()


@dataclass(frozen=True)
class NameRule:
    """One full name: its folded words, and the patterns for Python and for RE2."""

    name: str
    words: tuple[str, ...]

    @classmethod
    def of(cls, name: str) -> NameRule:
        words = tuple(normalise_name(name).split())
        if len(words) < 2:
            raise ScanError(f"a name to look for needs at least two words (a full name), got "
                            f"{len(words)}: given names alone match streets and schools")
        return cls(name, words)

    @property
    def escaped(self) -> str:
        """The name as JSON writes it with ``ensure_ascii`` (``nguy\\u1ec5n``), lower case."""
        return json.dumps(" ".join(self.name.split()), ensure_ascii=True)[1:-1].lower()

    def body(self) -> str:
        return r"\s+".join(re.escape(w) for w in self.words) + "|" + re.escape(self.escaped)

    def search(self, text: str) -> bool:
        folded = fold(text)
        return bool(re.search(rf"(?:^|[^\w]|_)(?:{self.body()})(?:[^\w]|_|$)", folded))

    @property
    def masked(self) -> str:
        return " ".join(w[0].upper() + "." for w in self.words)


def phones_in(text: str) -> list[str]:
    """The phone numbers in ``text`` by the rule, normalised (``0905123456``)."""
    out = []
    for m in _PHONE.finditer(text):
        number = normalise_phone(m.group(1).strip("()")) or m.group(1)
        out.append(number)
    return out


def mask_phone(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return digits[:2] + "•" * max(len(digits) - 5, 1) + digits[-3:]


def check_text(text: str, names: Sequence[NameRule], allowed: set[str]
               ) -> list[tuple[str, str]]:
    """``(kind, masked sample)`` for each phone number (not allowed) and name in ``text``."""
    found = [("phone", mask_phone(n)) for n in phones_in(text) if n not in allowed]
    found += [("name", r.masked) for r in names if r.search(text)]
    return found


# -- ClickHouse ---------------------------------------------------------------------------------

def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fold_sql(expr: str) -> str:
    return (f"lowerUTF8(replaceRegexpAll(normalizeUTF8NFD(replaceRegexpAll(toValidUTF8({expr}), "
            "'[đĐ]', 'd')), '\\\\p{Mn}', ''))")


def _names_sql(names: Sequence[NameRule]) -> str:
    bodies = "|".join(r.body() for r in names)
    return rf"(?:^|[^\p{{L}}\p{{N}}])(?:{bodies})(?:[^\p{{L}}\p{{N}}]|$)"


def string_columns(client: Any, database: str) -> dict[str, list[tuple[str, str]]]:
    """``table → [(column, type)]`` of the string-like columns of every table (views, whose
    rows are their tables', are left out)."""
    rows = client.query(
        "SELECT c.table, c.name, c.type FROM system.columns AS c "
        "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        f"WHERE c.database = {_sql_string(database)} "
        "AND t.engine NOT IN ('View', 'MaterializedView', 'LiveView', 'WindowView') "
        "ORDER BY c.table, c.position").result_rows
    out: dict[str, list[tuple[str, str]]] = {}
    for table, name, typ in rows:
        if _STRINGY.search(str(typ)):
            out.setdefault(str(table), []).append((str(name), str(typ)))
    return out


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _expr(column: str, typ: str) -> str:
    quoted = "`" + column.replace("`", "\\`") + "`"
    # toString() of an Array/Map/Tuple quotes its strings and doubles their backslashes
    return quoted if _PLAIN.match(typ) else (f"replaceAll(toString({quoted}), "
                                                    r"'\\\\', '\\')")


def scan_table(client: Any, database: str, table: str, columns: Sequence[tuple[str, str]],
               names: Sequence[NameRule], allowed: set[str], reference: bool = False
               ) -> tuple[list[Finding], set[str]]:
    """Findings in one table, and (for a reference table) the phone numbers it holds."""
    phone = _sql_string(PHONE_PATTERN)
    name_re = _sql_string(_names_sql(names)) if names else None
    parts = []
    for i, (col, typ) in enumerate(columns):
        e = _expr(col, typ)
        parts.append(f"countIf(match({e}, {phone})) AS p{i}, "
                     f"groupUniqArrayIf({SAMPLES})(toValidUTF8({e}), match({e}, {phone})) AS ps{i}")
        if name_re is not None:
            cond = f"match({_fold_sql(e)}, {name_re})"
            parts.append(f"countIf({cond}) AS n{i}, "
                         f"groupUniqArrayIf({SAMPLES})(toValidUTF8({e}), {cond}) AS ns{i}")
    quoted_table = "`" + table.replace("`", "\\`") + "`"
    result = client.query(f"SELECT {', '.join(parts)} FROM `{database}`.{quoted_table}")
    row = dict(zip(result.column_names, result.result_rows[0], strict=True))
    findings: list[Finding] = []
    numbers: set[str] = set()
    for i, (col, _typ) in enumerate(columns):
        where = f"clickhouse {database}.{table}.{col}"
        count, samples = int(row[f"p{i}"]), [_text(v) for v in row[f"ps{i}"]]
        if count:
            seen = [n for s in samples for n in phones_in(s)]
            if reference:
                numbers.update(seen)
            else:
                shown = [mask_phone(n) for n in seen if n not in allowed]
                # every sampled value allowed, and all of them sampled: nothing to report
                if shown or not seen or len(samples) >= SAMPLES:
                    findings.append(Finding(where, "phone", count,
                                            tuple(dict.fromkeys(shown or ["?"]))[:5]))
        if names and int(row[f"n{i}"]):
            samples = [_text(v) for v in row[f"ns{i}"]]
            shown = [r.masked for s in samples for r in names if r.search(s)]
            findings.append(Finding(where, "name", int(row[f"n{i}"]),
                                    tuple(dict.fromkeys(shown or ["?"]))[:5]))
    return findings, numbers


def scan_clickhouse(client: Any, database: str, names: Sequence[NameRule] = (),
                    allow_phones: Iterable[str] = (), report: ScanReport | None = None
                    ) -> ScanReport:
    """Every string-like column of every table of ``database`` (reference tables first: their
    phone numbers are allowed)."""
    report = report or ScanReport()
    report.allowed.update(normalise_phone(p) or p for p in allow_phones)
    tables = string_columns(client, database)
    order = sorted(tables, key=lambda t: (not t.startswith("ref_"), t))
    for table in order:
        reference = table.startswith("ref_")
        found, numbers = scan_table(client, database, table, tables[table], names,
                                    report.allowed, reference)
        report.allowed.update(numbers)
        report.findings.extend(found)
        report.tables += 1
        report.columns += len(tables[table])
    return report


# -- Kafka ------------------------------------------------------------------------------------

def read_topic(settings: Settings, topic: str, timeout: float = 10.0
               ) -> Iterator[tuple[int, int, bytes | None, bytes | None]]:
    """``(partition, offset, key, value)`` of every record now in ``topic`` (physical name)."""
    consumer = Consumer(settings.kafka_config(**{
        "group.id": f"ioc-privacy-scan-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "enable.partition.eof": False}))
    try:
        md = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if md is None or md.error is not None:
            return
        ends: dict[int, int] = {}
        starts = []
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
                starts.append(TopicPartition(topic, p, low))
        if not starts:
            return
        consumer.assign(starts)
        deadline = time.monotonic() + timeout * 6
        while ends:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not read {topic} to its end in time")
            for msg in consumer.consume(1000, timeout=0.5):
                partition, offset = msg.partition(), msg.offset()
                if msg.error() or partition is None or offset is None:
                    continue
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
                yield partition, offset, msg.key(), msg.value()
            if ends:  # offsets may have gaps (compaction): the position tells
                for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
                    if tp.offset >= ends.get(tp.partition, 0):
                        ends.pop(tp.partition, None)
    except KafkaException as exc:
        raise RuntimeError(f"cannot read {topic} at {settings.bootstrap}: {exc}") from None
    finally:
        consumer.close()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")


def payload_texts(data: bytes, topic: str | None, serde: Serde) -> list[str]:
    """Every reading of some bytes: as text, as JSON (escapes decoded), as an Avro record of
    ``topic`` (validation skipped)."""
    texts = [data.decode("utf-8", "replace")]
    try:
        texts.extend(_strings(json.loads(data.decode("utf-8"))))
    except (UnicodeDecodeError, ValueError, RecursionError):
        pass
    if topic is not None:
        try:
            texts.extend(_strings(serde.decode(topic, data, check=False)))
        except DecodeError:
            pass
    return texts


def scan_records(records: Iterable[tuple[int, int, bytes | None, bytes | None]],
                 topic: str, serde: Serde, names: Sequence[NameRule], allowed: set[str],
                 report: ScanReport) -> ScanReport:
    """Check Kafka records of ``topic`` (contract name); dead letters field by field."""
    for partition, offset, key, value in records:
        report.records += 1
        parts: dict[str, list[str]] = {"key": payload_texts(key or b"", None, serde)}
        record: dict[str, Any] | None = None
        if topic == DLQ_TOPIC and value:
            try:
                record = serde.decode(DLQ_TOPIC, value, check=False)
            except DecodeError:
                record = None
        if record is not None:
            for name in ("topic", "reason", "stage", "error_type"):
                parts[name] = [str(record.get(name) or "")]
            parts["dead letter key"] = payload_texts(record.get("key") or b"", None, serde)
            parts["payload"] = payload_texts(record.get("payload") or b"",
                                             str(record.get("topic") or ""), serde)
        else:
            parts["value"] = payload_texts(value or b"", topic if topic != DLQ_TOPIC else None,
                                           serde)
        for part, texts in parts.items():
            found: dict[str, list[str]] = {}
            for text in texts:
                for kind, sample in check_text(text, names, allowed):
                    found.setdefault(kind, []).append(sample)
            for kind, samples in found.items():
                report.findings.append(Finding(f"kafka {topic}[{partition}]@{offset} {part}",
                                               kind, 1, tuple(dict.fromkeys(samples))[:5]))
    return report


def scan(client: Any, settings: Settings, names: Iterable[str] = (),
         allow_phones: Iterable[str] = (), topics: Sequence[str] = (DLQ_TOPIC,),
         serde: Serde | None = None) -> ScanReport:
    """Every table of ``settings.database`` (through ``client``), then every record of
    ``topics`` (contract names; default the dead-letter topic). Raises :class:`ScanError` for
    a name of one word."""
    rules = [NameRule.of(n) for n in names if n.strip()]
    report = scan_clickhouse(client, settings.database, rules, allow_phones)
    serde = serde or Serde()
    for topic in topics:
        scan_records(read_topic(settings, settings.topic(topic)), topic, serde, rules,
                     report.allowed, report)
    return report
