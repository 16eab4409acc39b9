"""File uploads (``ioc produce``): JSON lines, CSV and Excel, with a column mapping.

Every row becomes one event of the topic, validated like every other producer's; bad rows
are reported (row number, column, reason in English and Vietnamese) and skipped, the valid
ones are sent; the command exits 1 if any row was rejected.

**Formats** — by extension (``--format`` overrides): ``.jsonl``/``.ndjson``/``.json`` one JSON
object per line; ``.csv`` (UTF-8, with or without BOM; delimiter ``,``, ``;`` or tab, detected
from the header line); ``.xlsx`` (the first sheet unless the mapping names one). Row numbers are
what a spreadsheet shows (the header is row 1) and line numbers for JSON lines.

**Column mapping** (``--mapping M.toml`` or ``.json``; optional when the columns are named
like the fields)::

    [columns]                 # contract field = column header in the file
    occurred_at = "Thời điểm"
    segment_id = "Mã đoạn đường"
    vehicle_count = "Số xe"
    avg_speed_kmh = "Tốc độ TB (km/h)"

    [constants]               # the same value on every row
    source = "SGTVT-QNA"
    area_code = "502"

    [values.severity]         # file value = contract value
    "Nghiêm trọng" = "critical"

    [options]
    timezone = "Asia/Ho_Chi_Minh"       # for times without offset (every Excel date/time)
    datetime_format = "%d/%m/%Y %H:%M"  # when times are written that way
    decimal_comma = true                 # 42,5 → 42.5
    sheet = "Số liệu"                    # Excel sheet
    header_row = 1                       # where the header is (Excel)
    ignore = ["Ghi chú"]                 # columns deliberately not sent
    encoding = "utf-8"                   # CSV (default utf-8, BOM allowed)

A column that is neither a field, nor mapped, nor ignored stops the upload before anything is
sent (a typo in a header must not drop data silently), as does a mapped column that is missing
or a required field without a column or constant.

**Re-uploading is harmless** — when the file gives no ``event_id``, each row's id is derived
from its content: ``file-`` + the first 32 hex digits of the SHA-256 of the topic and the
row's converted record (sorted keys, timestamps in UTC, so ``07:30+07:00`` and ``00:30Z`` are
the same), with ``-2``, ``-3``… appended for the 2nd, 3rd identical row of the same file. The
same file — or the same rows in another order, or in another file — gives the same ids, and the
platform stores one row per ``event_id`` (raw tables replace by id; KPI windows count an id
once). A row that changes content is a new event: correct an event by re-sending it with its
own ``event_id`` column.

**Rejected rows** are written to ``<file>.rejected.csv`` (or ``--rejected PATH``): columns
``row, column, field, code, reason, ly_do`` — one line per problem — in UTF-8 with BOM so
Excel opens it with Vietnamese text intact.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ioc.connectors.producer import EventProducer
from ioc.schemas.catalogue import TopicSchema
from ioc.schemas.errors import FieldError, conversion_errors, field_error, field_errors
from ioc.schemas.jsonconv import ConversionError, content_digest, json_to_record
from ioc.schemas.serde import EncodeError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
           ".xlsx": "xlsx"}

Transform = Callable[[dict[str, Any]], dict[str, Any]]


class FileError(ValueError):
    """The file or mapping cannot be used at all (nothing was sent)."""


@dataclass
class ColumnMapping:
    """How a file's columns become a topic's fields (see the module doc)."""

    columns: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    timezone: ZoneInfo | None = None
    datetime_format: str | None = None
    decimal_comma: bool = False
    sheet: str | None = None
    header_row: int = 1
    ignore: list[str] = field(default_factory=list)
    encoding: str = "utf-8-sig"


def load_mapping(path: Path) -> ColumnMapping:
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise FileError(f"cannot read the mapping {path}: {exc}") from None
    known = {"columns", "constants", "values", "options"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise FileError(f"{path}: unknown sections {unknown} (use {sorted(known)})")
    opts = dict(data.get("options") or {})
    m = ColumnMapping(columns={str(k): str(v) for k, v in (data.get("columns") or {}).items()},
                      constants=dict(data.get("constants") or {}),
                      values={str(k): dict(v) for k, v in (data.get("values") or {}).items()})
    if opts.get("timezone"):
        try:
            m.timezone = ZoneInfo(str(opts.pop("timezone")))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise FileError(f"{path}: unknown timezone ({exc})") from None
    m.datetime_format = opts.pop("datetime_format", None)
    m.decimal_comma = bool(opts.pop("decimal_comma", False))
    m.sheet = opts.pop("sheet", None)
    m.header_row = int(opts.pop("header_row", 1))
    m.ignore = [str(c) for c in opts.pop("ignore", [])]
    m.encoding = str(opts.pop("encoding", "utf-8-sig"))
    opts.pop("timezone", None)
    if opts:
        raise FileError(f"{path}: unknown options {sorted(opts)}")
    return m


# -- reading rows ---------------------------------------------------------------------------

@dataclass
class Row:
    number: int
    cells: dict[str, Any] | None       # header → value (None: the row itself is unreadable)
    problem: str | None = None          # why it is unreadable
    size: int = 0                       # bytes (or 1 per row) for the progress bar


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield Row(number, None, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                                        f"column {exc.start + 1})", len(raw))
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Row(number, None, f"invalid JSON ({exc.msg}, column {exc.colno})",
                          len(raw))
                continue
            except (ValueError, RecursionError) as exc:
                yield Row(number, None, f"invalid JSON ({type(exc).__name__}: "
                                        f"{str(exc)[:120]})", len(raw))
                continue
            if not isinstance(obj, dict):
                yield Row(number, None, f"expected a JSON object, got {type(obj).__name__}",
                          len(raw))
                continue
            yield Row(number, obj, None, len(raw))


def _sniff_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","


def _csv_rows(path: Path, mapping: ColumnMapping) -> tuple[list[str], Iterator[Row]]:
    try:
        text = path.read_bytes().decode(mapping.encoding)
    except UnicodeDecodeError as exc:
        raise FileError(f"{path} is not {mapping.encoding} text (byte {exc.start}); save it as "
                        "'CSV UTF-8' or set options.encoding in the mapping") from None
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FileError(f"{path} is empty") from None

    def rows() -> Iterator[Row]:
        for number, values in enumerate(reader, start=2):
            size = sum(len(v) + 1 for v in values)
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(header) and any(v.strip() for v in values[len(header):]):
                yield Row(number, None, f"{len(values)} cells but the header has "
                                        f"{len(header)} columns", size)
                continue
            yield Row(number, {h: v.strip() for h, v in zip(header, values, strict=False)
                               if h}, None, size)

    return header, rows()


def _xlsx_rows(path: Path, mapping: ColumnMapping
               ) -> tuple[list[str], Iterator[Row], int | None]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types on a non-xlsx file
        raise FileError(f"{path} is not a readable .xlsx workbook ({type(exc).__name__}: "
                        f"{str(exc)[:200]})") from None
    if mapping.sheet is not None and mapping.sheet not in wb.sheetnames:
        raise FileError(f"{path} has no sheet {mapping.sheet!r} (sheets: {wb.sheetnames})")
    ws = wb[mapping.sheet] if mapping.sheet else wb.worksheets[0]
    it = ws.iter_rows(min_row=mapping.header_row, values_only=True)
    try:
        header = ["" if h is None else str(h).strip() for h in next(it)]
    except StopIteration:
        raise FileError(f"{path}: the sheet is empty") from None
    total = (ws.max_row - mapping.header_row) if ws.max_row else None

    def rows() -> Iterator[Row]:
        try:
            for number, values in enumerate(it, start=mapping.header_row + 1):
                if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                    continue
                cells = {}
                for h, v in zip(header, values, strict=False):
                    if h:
                        cells[h] = v.strip() if isinstance(v, str) else v
                yield Row(number, cells, None, 1)
        finally:
            wb.close()

    return header, rows(), total


# -- rows → records ---------------------------------------------------------------------------

def _is_timestamp(ftype: Any) -> bool:
    if isinstance(ftype, list):
        return any(_is_timestamp(t) for t in ftype)
    return isinstance(ftype, dict) and ftype.get("logicalType") == "timestamp-millis"


def _base(ftype: Any) -> str:
    if isinstance(ftype, list):
        non_null = [t for t in ftype if t != "null"]
        return _base(non_null[0]) if len(non_null) == 1 else "union"
    if isinstance(ftype, dict):
        return str(ftype.get("type"))
    return str(ftype)


class RowConverter:
    """Cells of one row → a JSON object for the topic, using the mapping."""

    def __init__(self, schema: TopicSchema, mapping: ColumnMapping, header: list[str] | None
                 ) -> None:
        self.schema = schema
        self.mapping = mapping
        self.fields = {f["name"]: f for f in schema.raw["fields"]}
        self.column_of: dict[str, str] = {}
        if header is not None:
            self._check_header(header)

    def _check_header(self, header: list[str]) -> None:
        m = self.mapping
        unknown_fields = sorted(set(m.columns) - set(self.fields))
        if unknown_fields:
            raise FileError(f"mapping: {unknown_fields} are not fields of {self.schema.topic} "
                            f"(fields: {', '.join(self.fields)})")
        unknown_const = sorted(set(m.constants) - set(self.fields))
        if unknown_const:
            raise FileError(f"mapping: constants {unknown_const} are not fields of "
                            f"{self.schema.topic}")
        present = set(header) - {""}
        missing = sorted(c for c in m.columns.values() if c not in present)
        if missing:
            raise FileError(f"columns {missing} named in the mapping are not in the file "
                            f"(its columns: {', '.join(h for h in header if h)})")
        used = set(m.columns.values()) | set(m.ignore)
        for name in self.fields:
            if name in m.columns:
                self.column_of[name] = m.columns[name]
            elif name in present and name not in used:
                self.column_of[name] = name
        leftover = sorted(present - used - set(self.column_of.values()))
        if leftover:
            raise FileError(f"columns {leftover} are neither fields of {self.schema.topic} nor "
                            "in the mapping; map them under [columns], or list them in "
                            "options.ignore to leave them out")
        unfilled = [n for n, f in self.fields.items()
                    if n not in self.column_of and n not in m.constants and "default" not in f
                    and n != "event_id"]
        if unfilled:
            raise FileError(f"required fields {unfilled} have no column and no constant in the "
                            "mapping")

    def column(self, field_name: str) -> str:
        return self.column_of.get(field_name, field_name if field_name in self.fields else "")

    def to_object(self, cells: Mapping[str, Any], header_known: bool
                  ) -> tuple[dict[str, Any], list[str]]:
        """The JSON object of a row, and the problems (``field: reason``) of cells that could
        not even be read (such fields are left out of the object)."""
        m = self.mapping
        obj: dict[str, Any] = dict(m.constants)
        if header_known:
            for name, col in self.column_of.items():
                value = cells.get(col)
                if value is None or value == "":
                    continue
                obj[name] = value
        else:  # JSON lines: the object's keys are the fields (or mapped names)
            reverse = {col: name for name, col in m.columns.items()}
            for key, value in cells.items():
                if key in m.ignore:
                    continue
                obj[reverse.get(key, key)] = value
        problems = []
        for name, value in list(obj.items()):
            f = self.fields.get(name)
            if f is None:
                continue
            if isinstance(value, str) and name in m.values:
                value = m.values[name].get(value, value)
            try:
                obj[name] = self._cell(f["type"], value)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                del obj[name]
        return obj, problems

    def _cell(self, ftype: Any, value: Any) -> Any:
        m = self.mapping
        base = _base(ftype)
        if _is_timestamp(ftype):
            return self._timestamp(value)
        if isinstance(value, bool):
            return value
        if base == "string" and isinstance(value, int | float):
            return str(int(value)) if float(value).is_integer() else str(value)
        if base in ("double", "float", "int", "long") and isinstance(value, str):
            text = value.replace("\u00a0", "").replace(" ", "")
            if m.decimal_comma:
                text = text.replace(".", "").replace(",", ".")
            return text
        return value

    def _timestamp(self, value: Any) -> Any:
        m = self.mapping
        if isinstance(value, str) and m.datetime_format:
            try:
                value = datetime.strptime(value, m.datetime_format)  # noqa: DTZ007
            except ValueError:
                raise ValueError(f"not an ISO-8601 timestamp: {value!r} (expected the format "
                                 f"{m.datetime_format})") from None
        if isinstance(value, str) and m.timezone is not None and not value.isdigit():
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
            value = parsed
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, dtime())
        if isinstance(value, datetime):
            if value.tzinfo is None:
                if m.timezone is None:
                    raise ValueError(f"timestamp {value.isoformat()!r} has no UTC offset "
                                     "(set options.timezone in the mapping)")
                value = value.replace(tzinfo=m.timezone)
            return value.isoformat()
        return value


# -- the upload -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rejection:
    row: int
    column: str
    error: FieldError


@dataclass
class UploadReport:
    path: Path
    format: str
    rows: int = 0
    sent: int = 0
    derived_ids: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({r.row for r in self.rejected})

    @property
    def unit(self) -> str:
        return "lines" if self.format == "jsonl" else "rows"

    def by_row(self) -> dict[int, list[Rejection]]:
        out: dict[int, list[Rejection]] = {}
        for r in self.rejected:
            out.setdefault(r.row, []).append(r)
        return out

    def write_rejections(self, path: Path) -> None:
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "column", "field", "code", "reason", "ly_do"])
            for r in self.rejected:
                w.writerow([r.row, r.column, r.error.field, r.error.code, r.error.en,
                            r.error.vi])


class ProgressBar:
    """``[#####.....]  52.0%  1,234 rows  3 rejected  2,100 rows/s`` on stderr, redrawn at
    most twice a second, from the first second on (small files finish silently)."""

    def __init__(self, total: int | None, unit: str, out: TextIO | None = sys.stderr,
                 width: int = 24) -> None:
        self.total, self.unit, self.out, self.width = total, unit, out, width
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def update(self, done: int, rows: int, rejected: int, final: bool = False) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if not final and (now - self.start < 1.0 or now - self.last < 0.5):
            return
        if final and not self.shown and now - self.start < 1.0:
            return
        self.last = now
        share = 1.0 if final else (min(done / self.total, 1.0) if self.total else 0.0)
        filled = int(share * self.width)
        rate = rows / max(now - self.start, 1e-6)
        self.out.write(f"\r  [{'#' * filled}{'.' * (self.width - filled)}] {100 * share:5.1f}%"
                       f"  {rows:,} {self.unit}  {rejected} rejected  {rate:,.0f} {self.unit}/s")
        if final:
            self.out.write("\n")
        self.out.flush()
        self.shown = True


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FileError(f"cannot tell the format of {path.name} from its extension; use "
                        f"--format {{{', '.join(sorted(set(FORMATS.values())))}}}")
    return fmt


def upload_file(producer: EventProducer, topic: str, path: Path, *,
                fmt: str | None = None, mapping: ColumnMapping | None = None,
                transform: Transform | None = None,
                progress_out: TextIO | None = sys.stderr) -> UploadReport:
    """Read, convert, validate and send every row; returns what happened (raises
    :class:`FileError` before sending anything if the file or mapping is unusable)."""
    fmt = detect_format(path, fmt)
    mapping = mapping or ColumnMapping()
    schema = producer.serde.catalogue.get(topic)
    report = UploadReport(path, fmt)
    total: int | None
    if fmt == "jsonl":
        header, rows, total = None, _jsonl_rows(path), path.stat().st_size
    elif fmt == "csv":
        header, rows = _csv_rows(path, mapping)
        total = path.stat().st_size
    elif fmt == "xlsx":
        header, rows, total = _xlsx_rows(path, mapping)
    else:
        raise FileError(f"unknown format {fmt!r}")
    converter = RowConverter(schema, mapping, header)
    progress = ProgressBar(total, report.unit, progress_out)
    identical: Counter[str] = Counter()
    done = 0
    for row in rows:
        # JSON lines count lines (blank ones too, as before); tables count data rows.
        report.rows = row.number if fmt == "jsonl" else report.rows + 1
        done += row.size
        progress.update(done, report.rows, len(report.rejected_rows))
        if row.cells is None:
            report.rejected.append(Rejection(row.number, "", field_error(row.problem or "")))
            continue
        problems = _send_row(producer, topic, schema, converter, row, header is not None,
                             transform, identical, report)
        report.rejected.extend(Rejection(row.number, converter.column(p.field), p)
                               for p in problems)
    producer.flush()
    progress.update(done, report.rows, len(report.rejected_rows), final=True)
    return report


def _send_row(producer: EventProducer, topic: str, schema: TopicSchema,
              converter: RowConverter, row: Row, header_known: bool,
              transform: Transform | None, identical: Counter[str],
              report: UploadReport) -> list[FieldError]:
    assert row.cells is not None
    obj, unreadable = converter.to_object(row.cells, header_known)
    if transform is not None:
        obj = transform(obj)
    derive = not str(obj.get("event_id") or "").strip()
    if derive:
        obj["event_id"] = "pending"
    try:
        record = json_to_record(schema, obj)
    except ConversionError as exc:
        errors = field_errors(unreadable)
        reported = {e.field for e in errors}
        return errors + [e for e in conversion_errors(topic, exc) if e.field not in reported]
    if unreadable:
        return field_errors(unreadable)
    if derive:
        digest = content_digest({"topic": topic, **record}, exclude=("event_id",))
        identical[digest] += 1
        n = identical[digest]
        record["event_id"] = f"file-{digest[:32]}" + (f"-{n}" if n > 1 else "")
        report.derived_ids += 1
    try:
        producer.send(topic, record)
    except EncodeError as exc:
        return field_errors(exc.problems)
    report.sent += 1
    return []
