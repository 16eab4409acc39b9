"""Semantic checks of the security and cyber topics, beyond what the Avro types say.

:data:`CHECKS` maps each topic to its checks; every check returns human-readable problems naming
the field (an empty list means acceptable). Each topic's list is complete on its own (it
includes the common checks of every event), so :mod:`ioc.schemas.validation` merges it into its
table as it is. This module imports nothing from ``validation``, so it can be imported by it.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

Check = Callable[[Mapping[str, Any]], list[str]]

SECURITY_INCIDENT_TOPIC = "ioc.security.incident.v1"
MENTION_TOPIC = "ioc.cyber.mention.v1"
SECURITY_EVENT_TOPIC = "ioc.cyber.security_event.v1"


def _text(r: Mapping[str, Any], name: str) -> str:
    return str(r.get(name) or "").strip()


def common(r: Mapping[str, Any]) -> list[str]:
    """What every event needs: ids and an aware event time."""
    problems = []
    if "event_id" in r and not _text(r, "event_id"):
        problems.append("event_id: must not be empty")
    if "source" in r and not _text(r, "source"):
        problems.append("source: must not be empty (agency code)")
    occurred = r.get("occurred_at")
    if isinstance(occurred, datetime) and occurred.tzinfo is None:
        problems.append("occurred_at: must carry a time zone")
    return problems


def _number(r: Mapping[str, Any], name: str) -> float | None:
    value = r.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def security_incident(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "area_code"):
        problems.append("area_code: must not be empty (where the incident happened)")
    casualties = _number(r, "casualties")
    if casualties is not None and casualties < 0:
        problems.append(f"casualties: must be >= 0, got {r['casualties']}")
    lat, lon = _number(r, "lat"), _number(r, "lon")
    if lat is not None and not -90 <= lat <= 90:
        problems.append(f"lat: must be within -90..90, got {lat}")
    if lon is not None and not -180 <= lon <= 180:
        problems.append(f"lon: must be within -180..180, got {lon}")
    return problems


def cyber_mention(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "topic"):
        problems.append("topic: must not be empty (a topic code of ref_cyber_topics)")
    score = _number(r, "sentiment_score")
    if score is not None and (math.isnan(score) or not -1 <= score <= 1):
        problems.append(f"sentiment_score: must be within -1..1, got {score}")
    reach = _number(r, "reach")
    if reach is not None and reach < 0:
        problems.append(f"reach: must be >= 0, got {r['reach']}")
    url = _text(r, "url")
    if url and not url.startswith(("http://", "https://")):
        problems.append(f"url: must be an http(s) link or empty, got {url!r}")
    return problems


def cyber_security_event(r: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _text(r, "system"):
        problems.append("system: must not be empty (a system id of ref_gov_systems)")
    ip = _text(r, "src_ip")
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            problems.append(f"src_ip: must be an IPv4 or IPv6 address or empty, got {ip!r}")
    return problems


CHECKS: dict[str, list[Check]] = {
    SECURITY_INCIDENT_TOPIC: [common, security_incident],
    MENTION_TOPIC: [common, cyber_mention],
    SECURITY_EVENT_TOPIC: [common, cyber_security_event],
}
