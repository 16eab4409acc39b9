"""Semantic checks of the citizen-feedback topic, beyond what the Avro types say.

:data:`CHECKS` maps the topic to its checks (the common ones of every event included), merged
into :mod:`ioc.schemas.validation`. A lifecycle step is checked on its own, not against earlier
steps of the same report (those may sit on another worker or arrive later).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ioc.schemas.checks_security_cyber import common

Check = Callable[[Mapping[str, Any]], list[str]]

REPORT_TOPIC = "ioc.feedback.report.v1"

_NEEDS_AGENCY = ("assigned", "in_progress")


def _text(r: Mapping[str, Any], name: str) -> str:
    return str(r.get(name) or "").strip()


def _number(r: Mapping[str, Any], name: str) -> float | None:
    value = r.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def feedback_report(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "report_id"):
        problems.append("report_id: must not be empty")
    if not _text(r, "area_code"):
        problems.append("area_code: must not be empty (the area the report is about)")
    status = r.get("status")
    if status in _NEEDS_AGENCY and not _text(r, "assigned_agency"):
        problems.append(f"assigned_agency: must be set when status is {status}")
    if status == "assigned" and r.get("due_at") is None:
        problems.append("due_at: must be set when status is assigned")
    due = r.get("due_at")
    if isinstance(due, datetime) and due.tzinfo is None:
        problems.append("due_at: must carry a time zone")
    rating = r.get("rating")
    if rating is not None:
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            problems.append(f"rating: must be 1..5 or null, got {rating!r}")
        elif status != "resolved":
            problems.append(f"rating: only a resolved report is rated (status is {status})")
    lat, lon = _number(r, "lat"), _number(r, "lon")
    if lat is not None and not -90 <= lat <= 90:
        problems.append(f"lat: must be within -90..90, got {lat}")
    if lon is not None and not -180 <= lon <= 180:
        problems.append(f"lon: must be within -180..180, got {lon}")
    pseudonym = _text(r, "reporter_pseudonym")
    if pseudonym and (len(pseudonym) != 16 or any(c not in "0123456789abcdef"
                                                  for c in pseudonym)):
        problems.append("reporter_pseudonym: must be empty or 16 lowercase hex digits (a keyed "
                        "pseudonym, never a name or phone number)")
    return problems


CHECKS: dict[str, list[Check]] = {
    REPORT_TOPIC: [common, feedback_report],
}
