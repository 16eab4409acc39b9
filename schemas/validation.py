"""Semantic checks beyond the Avro types: what a well-typed but wrong event looks like.

Returns human-readable problems naming the field; an empty list means the event is acceptable.
Used by producers (reject before sending) and readers (dead-letter with the reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ioc.schemas.checks_econ import CHECKS as _ECON_CHECKS
from ioc.schemas.checks_egov import CHECKS as _EGOV_CHECKS
from ioc.schemas.checks_feedback import CHECKS as _FEEDBACK_CHECKS
from ioc.schemas.checks_health_edu import CHECKS as _HEALTH_EDU_CHECKS
from ioc.schemas.checks_notify import CHECKS as _NOTIFY_CHECKS
from ioc.schemas.checks_security_cyber import CHECKS as _SECURITY_CYBER_CHECKS

Check = Callable[[Mapping[str, Any]], list[str]]


def _common(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if "event_id" in r and not str(r.get("event_id") or "").strip():
        problems.append("event_id: must not be empty")
    if "source" in r and not str(r.get("source") or "").strip():
        problems.append("source: must not be empty (agency code)")
    occurred = r.get("occurred_at")
    if isinstance(occurred, datetime) and occurred.tzinfo is None:
        problems.append("occurred_at: must carry a time zone")
    return problems


def _traffic_flow(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not str(r.get("segment_id") or "").strip():
        problems.append("segment_id: must not be empty")
    count = r.get("vehicle_count")
    if isinstance(count, int) and count < 0:
        problems.append(f"vehicle_count: must be >= 0, got {count}")
    speed = r.get("avg_speed_kmh")
    if isinstance(speed, float | int) and not (0 <= speed <= 300):
        problems.append(f"avg_speed_kmh: must be within 0..300, got {speed}")
    occ = r.get("occupancy")
    if isinstance(occ, float | int) and not (0 <= occ <= 1):
        problems.append(f"occupancy: must be within 0..1, got {occ}")
    return problems


_CHECKS: dict[str, list[Check]] = {
    "ioc.traffic.flow.v1": [_common, _traffic_flow],
    "ioc.traffic.incident.v1": [_common],
}


# Subsystems keep their checks in their own modules; they are merged here.
_CHECKS.update(_SECURITY_CYBER_CHECKS)
_CHECKS.update(_ECON_CHECKS)
_CHECKS.update(_HEALTH_EDU_CHECKS)
_CHECKS.update(_FEEDBACK_CHECKS)
_CHECKS.update(_EGOV_CHECKS)
_CHECKS.update(_NOTIFY_CHECKS)


def semantic_errors(topic: str, record: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for check in _CHECKS.get(topic, []):
        problems.extend(check(record))
    return problems
