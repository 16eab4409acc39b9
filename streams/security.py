"""Public order (``security``): incident counts and the critical-incident alert.

KPI (topic ``ioc.security.incident.v1``):

- ``security.incidents`` (1h and 1d; per area, entity = ``incident_type``): number of incidents.
  The daily window is cut at Asia/Ho_Chi_Minh midnight like every daily KPI.
  ``sample_count`` is the same number.

Alert ``security.critical_incident``: an incident of severity ``critical`` (deaths or serious
injuries, a fire out of control, …) → a critical alert at once, one per incident, naming the
type and the area's Vietnamese name (from the reference areas); it resolves by itself an hour
after the incident (event time), like the traffic critical-incident rule, until incidents get a
"closed" event. Severity is the reporting agency's call: a fire or an assault reported as
``moderate`` does not alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ioc.infra.reference import Area, ReferenceData
from ioc.streams.domain import Domain
from ioc.streams.engine import KpiFamily
from ioc.streams.rules import CriticalEventRule
from ioc.streams.windows import WINDOWS

INCIDENT_TOPIC = "ioc.security.incident.v1"
INCIDENTS_KPI = "security.incidents"

INCIDENT_TYPE_VI = {
    "fire": "cháy",
    "assault": "cố ý gây thương tích",
    "theft": "trộm cắp tài sản",
    "robbery": "cướp tài sản",
    "public_disorder": "gây rối trật tự công cộng",
    "drug": "ma túy",
    "illegal_racing": "đua xe trái phép",
    "other": "vụ việc khác",
}


class Count:
    """Number of events in the window, as one KPI."""

    def __init__(self, kpi: str) -> None:
        self.kpi = kpi
        self.count = 0

    def add(self, event: Mapping[str, Any]) -> None:
        self.count += 1

    def results(self) -> list[tuple[str, float, int]]:
        return [(self.kpi, float(self.count), self.count)]


def _by_area_and_type(event: Mapping[str, Any]) -> tuple[str, str]:
    return (event["area_code"], event["incident_type"])


def security_families() -> list[KpiFamily]:
    return [
        KpiFamily(f"{INCIDENTS_KPI}.{w}", INCIDENT_TOPIC, WINDOWS[w], _by_area_and_type,
                  lambda a, e: Count(INCIDENTS_KPI))
        for w in ("1h", "1d")
    ]


def incident_summary(event: Mapping[str, Any], areas: Mapping[str, Area]) -> str:
    """``Vụ việc an ninh trật tự nghiêm trọng (cháy) tại Thành phố Hội An, 2 người thương
    vong: <description>``"""
    area = areas.get(event["area_code"])
    place = area.name_vi if area else event["area_code"]
    kind = INCIDENT_TYPE_VI.get(event["incident_type"], event["incident_type"])
    casualties = int(event.get("casualties") or 0)
    hurt = f", {casualties} người thương vong" if casualties > 0 else ""
    detail = f": {event['description']}" if event.get("description") else ""
    return f"Vụ việc an ninh trật tự nghiêm trọng ({kind}) tại {place}{hurt}{detail}"


def critical_incident_rule(areas: Mapping[str, Area],
                           auto_resolve: timedelta = timedelta(hours=1)) -> CriticalEventRule:
    return CriticalEventRule(
        rule="security.critical_incident", topic=INCIDENT_TOPIC, domain="security",
        is_critical=lambda ev: ev["severity"] == "critical",
        summary=lambda ev: incident_summary(ev, areas),
        entity=lambda ev: str(ev["incident_type"]),
        auto_resolve=auto_resolve)


def security_domain(ref: ReferenceData) -> Domain:
    return Domain(
        name="security",
        topics=(INCIDENT_TOPIC,),
        families=tuple(security_families()),
        rules=(critical_incident_rule(ref.areas),),
    )
