"""Semantic checks of the socio-economic indicator reports (``ioc.econ.indicator_report.v1``).

Beyond the Avro types: a report names an indicator, a well-formed period that has begun by the
time it is submitted, a finite value, a unit, the responsible agency and a revision ≥ 0.
Whether the indicator exists in the catalogue, and whether the period form matches its
reporting frequency, depends on reference data: the stream processor checks that (see
:mod:`ioc.streams.econ`). :func:`parse_period` is the one reading of the ``period`` field that
producers, checks and the processor share.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ioc.schemas.checks_security_cyber import common

Check = Callable[[Mapping[str, Any]], list[str]]

REPORT_TOPIC = "ioc.econ.indicator_report.v1"
LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")

_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})|-Q([1-4]))?$")
_CODE = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True, order=True)
class Period:
    """A reporting period of the local calendar: months ``first_month``..``last_month`` of
    ``year`` (a month: both equal; a quarter: three months; a year: 1..12)."""

    year: int
    first_month: int
    last_month: int

    @property
    def kind(self) -> str:
        """``month``, ``quarter`` or ``year``."""
        span = self.last_month - self.first_month + 1
        return {1: "month", 3: "quarter"}.get(span, "year")

    @property
    def text(self) -> str:
        if self.kind == "month":
            return f"{self.year}-{self.first_month:02d}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.last_month // 3}"
        return str(self.year)

    def start(self) -> datetime:
        """Local midnight starting the period (aware, Asia/Ho_Chi_Minh)."""
        return datetime(self.year, self.first_month, 1, tzinfo=LOCAL_TZ)


def parse_period(text: str) -> Period | None:
    """``2026-10`` → October 2026, ``2026-Q3`` → July–September, ``2026`` → the year; anything
    else (``2026-13``, ``2026-Q5``, ``26-10``) → ``None``."""
    m = _PERIOD.match(text.strip())
    if m is None:
        return None
    year = int(m.group(1))
    if not 2000 <= year <= 2100:
        return None
    if m.group(2) is not None:
        month = int(m.group(2))
        return Period(year, month, month) if 1 <= month <= 12 else None
    if m.group(3) is not None:
        q = int(m.group(3))
        return Period(year, 3 * q - 2, 3 * q)
    return Period(year, 1, 12)


def _text(r: Mapping[str, Any], name: str) -> str:
    return str(r.get(name) or "").strip()


def indicator_report(r: Mapping[str, Any]) -> list[str]:
    problems = []
    code = _text(r, "indicator_code")
    if not code:
        problems.append("indicator_code: must not be empty (a code of ref_econ_indicators)")
    elif not _CODE.match(code):
        problems.append(f"indicator_code: lower-case letters, digits and _ only, got {code!r}")
    period = parse_period(_text(r, "period"))
    if period is None:
        problems.append(f"period: must be YYYY-MM, YYYY-Qn or YYYY, got {r.get('period')!r}")
    else:
        occurred = r.get("occurred_at")
        if (isinstance(occurred, datetime) and occurred.tzinfo is not None
                and occurred < period.start()):
            problems.append(f"period: {period.text} has not begun at occurred_at "
                            f"{occurred.isoformat()} (a report comes after its period starts)")
    value = r.get("value")
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isfinite(value):
        problems.append(f"value: must be a finite number, got {value}")
    if not _text(r, "unit"):
        problems.append("unit: must not be empty (the indicator's unit)")
    if not _text(r, "reporting_agency"):
        problems.append("reporting_agency: must not be empty")
    revision = r.get("revision")
    if isinstance(revision, int) and not isinstance(revision, bool) and revision < 0:
        problems.append(f"revision: must be >= 0, got {revision}")
    return problems


CHECKS: dict[str, list[Check]] = {
    REPORT_TOPIC: [common, indicator_report],
}
