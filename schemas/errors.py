"""Field-level problems in Vietnamese and English, for agencies that send data.

The converters and checks of the contract (:mod:`ioc.schemas.jsonconv`,
:mod:`ioc.schemas.validation` and each subsystem's ``checks_*`` module) describe a problem as
one English text ``"<field>: <reason>"``. :func:`field_errors` turns those texts into
:class:`FieldError` values with the field, a stable machine-readable ``code`` and the reason in
both languages, so the gateway's 4xx answers, the rejected-rows report of file uploads and the
SDK's exceptions say the same thing the same way.

Translation is by pattern over the reasons the contract's code produces (missing, null, empty,
type, enum, range, timestamp, unknown field, …). A reason no pattern knows (a new subsystem's
own wording) keeps its English text inside a Vietnamese frame — never a wrong translation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One problem with one field (``field`` is empty when it concerns the whole record)."""

    field: str
    code: str
    en: str
    vi: str

    def as_json(self, **extra: Any) -> dict[str, Any]:
        return {**extra, "field": self.field or None, "code": self.code, "en": self.en,
                "vi": self.vi}


_CMP = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}

_Rule = tuple[re.Pattern[str], str, Callable[[re.Match[str]], str]]

_RULES: list[_Rule] = [
    (re.compile(r"^required field is missing$"), "missing",
     lambda m: "thiếu trường bắt buộc"),
    (re.compile(r"^must not be null$"), "null",
     lambda m: "không được để trống (null)"),
    (re.compile(r"^must not be empty(?: \((.*)\))?$"), "empty",
     lambda m: "không được để trống" + (f" ({m.group(1)})" if m.group(1) else "")),
    (re.compile(r"^expected an integer, got (.*)$", re.S), "type",
     lambda m: f"phải là số nguyên, nhận được {m.group(1)}"),
    (re.compile(r"^expected a number, got (.*)$", re.S), "type",
     lambda m: f"phải là số, nhận được {m.group(1)}"),
    (re.compile(r"^expected a string, got (.*)$", re.S), "type",
     lambda m: f"phải là chuỗi ký tự, nhận được {m.group(1)}"),
    (re.compile(r"^expected true or false, got (.*)$", re.S), "type",
     lambda m: f"phải là true hoặc false, nhận được {m.group(1)}"),
    (re.compile(r"^expected a JSON object, got (.*)$", re.S), "type",
     lambda m: f"mỗi sự kiện phải là một đối tượng JSON, nhận được {m.group(1)}"),
    (re.compile(r"^(.*) is not one of (\[.*\])$", re.S), "enum",
     lambda m: f"{m.group(1)} không thuộc các giá trị cho phép {m.group(2)}"),
    (re.compile(r"^must be within (\S+)\.\.(\S+), got (.*)$", re.S), "range",
     lambda m: f"phải nằm trong khoảng {m.group(1)}..{m.group(2)}, nhận được {m.group(3)}"),
    (re.compile(r"^must be (>=|<=|>|<) (\S+), got (.*)$", re.S), "range",
     lambda m: f"phải {_CMP[m.group(1)]} {m.group(2)}, nhận được {m.group(3)}"),
    (re.compile(r"^must be (\S+)\.\.(\S+) or null, got (.*)$", re.S), "range",
     lambda m: f"phải từ {m.group(1)} đến {m.group(2)} hoặc null, nhận được {m.group(3)}"),
    (re.compile(r"^not an ISO-8601 timestamp: (.*)$", re.S), "timestamp",
     lambda m: f"không phải thời điểm ISO-8601: {m.group(1)}"),
    (re.compile(r"^timestamp (.*) has no UTC offset.*$", re.S), "timestamp",
     lambda m: f"thời điểm {m.group(1)} thiếu múi giờ (ghi thêm ví dụ +07:00 hoặc Z)"),
    (re.compile(r"^(?:epoch milliseconds|timestamp) out of range: (.*)$", re.S), "timestamp",
     lambda m: f"thời điểm ngoài phạm vi cho phép: {m.group(1)}"),
    (re.compile(r"^expected ISO-8601 with offset or epoch milliseconds, got (.*)$", re.S),
     "timestamp",
     lambda m: f"phải là thời điểm ISO-8601 có múi giờ hoặc số mili giây từ 1970, nhận được "
               f"{m.group(1)}"),
    (re.compile(r"^must carry a time zone$"), "timestamp",
     lambda m: "phải có múi giờ"),
    (re.compile(r"^not valid Unicode text.*$", re.S), "encoding",
     lambda m: "không phải văn bản Unicode hợp lệ"),
    (re.compile(r"^does not fit the Avro type (\S+).*$", re.S), "type",
     lambda m: f"giá trị vượt quá phạm vi của kiểu {m.group(1)}"),
]

_UNKNOWN = re.compile(r"^unknown fields (\[.*\]) \(not in (\S+)\)$", re.S)
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*): (.*)$", re.S)
# fastavro: "vn.ioc.traffic.TrafficFlow.vehicle_count is <1099511627776> of type <class 'int'>
# expected int"
_FASTAVRO = re.compile(r"^(?:[\w.]+\.)?(\w+) is <(.*)> of type <class '(\w+)'> expected (.*)$",
                       re.S)


def _translate(reason: str) -> tuple[str, str]:
    for pattern, code, vi in _RULES:
        m = pattern.match(reason)
        if m:
            return code, vi(m)
    return "invalid", f"giá trị không hợp lệ (chi tiết bằng tiếng Anh: {reason})"


def field_error(problem: str) -> FieldError:
    """One problem text of the contract's code as a :class:`FieldError`."""
    problem = problem.strip()
    m = _UNKNOWN.match(problem)
    if m:
        return FieldError("", "unknown_field", problem,
                          f"các trường {m.group(1)} không có trong hợp đồng dữ liệu "
                          f"{m.group(2)} (kiểm tra chính tả tên trường)")
    m = _FASTAVRO.match(problem)
    if m:
        name, value, _pytype, expected = m.groups()
        expected = expected.strip()
        return FieldError(name, "type", f"{value} does not fit the Avro type {expected}",
                          f"giá trị {value} vượt quá phạm vi hoặc sai kiểu {expected}")
    m = _FIELD.match(problem)
    if m:
        name, reason = m.groups()
        code, vi = _translate(reason)
        return FieldError(name, code, reason, vi)
    code, vi = _translate(problem)
    return FieldError("", code, problem, vi)


def field_errors(problems: Iterable[str]) -> list[FieldError]:
    return [field_error(p) for p in problems]


def conversion_errors(topic: str, exc: Any) -> list[FieldError]:
    """Every problem of an object that failed conversion (a
    :class:`~ioc.schemas.jsonconv.ConversionError`): the conversion's own, plus the semantic
    checks of the fields that did convert, so a row's report is complete at once."""
    from ioc.schemas.validation import semantic_errors

    errors = field_errors(exc.problems)
    reported = {e.field for e in errors}
    try:
        extra = semantic_errors(topic, exc.partial)
    except Exception:  # a check that assumed a field is present
        extra = []
    return errors + [e for e in field_errors(extra) if e.field and e.field not in reported]


def message(code: str, en: str, vi: str) -> dict[str, str]:
    """A whole-request error in both languages (the gateway's ``error`` object)."""
    return {"code": code, "en": en, "vi": vi}
