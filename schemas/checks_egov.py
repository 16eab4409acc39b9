"""Semantic checks of the e-government topics, beyond what the Avro types say.

:data:`CHECKS` maps each topic to its checks (each list complete on its own, common checks
included); :mod:`ioc.schemas.validation` merges it. A dossier event must name its dossier,
agency and procedure, and its times must be in a possible order: due after reception, a
decision (``resolved`` / ``rejected``) carries ``resolved_at`` no earlier than reception and
other statuses carry none; a fee cannot be paid online when there is no fee. A portal check
names its system and has a plausible response time and HTTP status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ioc.schemas.checks_security_cyber import common

Check = Callable[[Mapping[str, Any]], list[str]]

DOSSIER_TOPIC = "ioc.egov.dossier.v1"
PORTAL_CHECK_TOPIC = "ioc.egov.portal_check.v1"
DECIDED = ("resolved", "rejected")


def _text(r: Mapping[str, Any], name: str) -> str:
    return str(r.get(name) or "").strip()


def _time(r: Mapping[str, Any], name: str) -> datetime | None:
    value = r.get(name)
    return value if isinstance(value, datetime) else None


def egov_dossier(r: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, what in (("dossier_id", "the dossier number"),
                       ("agency", "an agency code of ref_egov_agencies"),
                       ("procedure_code", "a procedure code of the catalogue")):
        if not _text(r, name):
            problems.append(f"{name}: must not be empty ({what})")
    received, due = _time(r, "received_at"), _time(r, "due_at")
    resolved = _time(r, "resolved_at")
    if received is not None and due is not None and due < received:
        problems.append(f"due_at: must not be before received_at ({due.isoformat()} < "
                        f"{received.isoformat()})")
    status = r.get("status")
    if status in DECIDED and r.get("resolved_at") is None:
        problems.append(f"resolved_at: required when status is {status}")
    if status not in DECIDED and r.get("resolved_at") is not None:
        problems.append(f"resolved_at: must be null when status is {status} "
                        "(only resolved and rejected carry it)")
    if received is not None and resolved is not None and resolved < received:
        problems.append("resolved_at: must not be before received_at")
    if r.get("paid_online") is True and r.get("fee_required") is False:
        problems.append("paid_online: cannot be true when fee_required is false")
    return problems


def egov_portal_check(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "system_id"):
        problems.append("system_id: must not be empty (a system id of ref_egov_systems)")
    ms = r.get("response_ms")
    if isinstance(ms, int) and not 0 <= ms <= 600_000:
        problems.append(f"response_ms: must be within 0..600000, got {ms}")
    status = r.get("http_status")
    if isinstance(status, int) and not 100 <= status <= 599:
        problems.append(f"http_status: must be within 100..599, got {status}")
    return problems


CHECKS: dict[str, list[Check]] = {
    DOSSIER_TOPIC: [common, egov_dossier],
    PORTAL_CHECK_TOPIC: [common, egov_portal_check],
}
