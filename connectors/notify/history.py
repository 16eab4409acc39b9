"""Records of the notification history (``ioc.alert_event.v1``), built by pure functions.

Every record has a deterministic ``event_id``: the same state change, suppression, ack or
delivery outcome always gets the same id, so a record written twice (a replay, a restart) is one
row in ``ioc.alert_events FINAL``, and a restarted notifier recognises what it already wrote.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ioc.connectors.notify.model import from_ms, ms, stable_id, transition_key

TOPIC = "ioc.alert_event.v1"
ACK_TOPIC = "ioc.alert_ack.v1"
SILENCE_TOPIC = "ioc.silence.v1"
ALERT_TOPIC = "ioc.alert.v1"

_TIME_FIELDS = ("starts_at", "ends_at", "updated_at", "acked_at")


def event(kind: str, occurred_at: datetime, event_id: str, **fields: Any) -> dict[str, Any]:
    """A history record with every field of the schema (defaults for the rest)."""
    rec: dict[str, Any] = {
        "event_id": event_id, "occurred_at": occurred_at, "kind": kind, "alert_id": "",
        "starts_at": None, "rule": "", "severity": "", "status": "", "domain": "",
        "area_code": "", "entity": "", "summary": "", "group_key": "", "route": "",
        "receiver": "", "level": 0, "reason": "", "notification_id": "", "channel": "",
        "recipient_id": "", "recipient": "", "attempt": 0, "outcome": "", "detail": "",
        "actor": "", "alert_keys": [], "payload": "",
    }
    unknown = set(fields) - set(rec)
    if unknown:
        raise KeyError(f"not fields of {TOPIC}: {sorted(unknown)}")
    rec.update(fields)
    return rec


def alert_fields(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {"alert_id": alert["alert_id"], "starts_at": alert["starts_at"],
            "rule": alert["rule"], "severity": alert["severity"], "status": alert["status"],
            "domain": alert["domain"], "area_code": alert["area_code"],
            "entity": alert["entity"], "summary": alert["summary"]}


def state_change(alert: Mapping[str, Any], seen_at: datetime) -> dict[str, Any]:
    """The notifier saw a new transition of an alert (firing, resolved, severity change)."""
    kind = "alert_firing" if alert["status"] == "firing" else "alert_resolved"
    return event(kind, seen_at, stable_id("state", transition_key(alert)),
                 **alert_fields(alert))


def suppressed(alert: Mapping[str, Any], group_key: str, route: str, receiver: str,
               reason: str, detail: str, at: datetime) -> dict[str, Any]:
    """A transition that was not notified because of a silence or an inhibition."""
    return event("suppressed", at,
                 stable_id("suppressed", transition_key(alert), group_key, reason),
                 group_key=group_key, route=route, receiver=receiver, reason=reason,
                 detail=detail, **alert_fields(alert))


def acked(ack: Mapping[str, Any], alert: Mapping[str, Any] | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"alert_id": ack["alert_id"], "starts_at": ack["starts_at"]}
    if alert is not None and alert["starts_at"] == ack["starts_at"]:
        fields = alert_fields(alert)
    return event("acked", ack["acked_at"], stable_id("ack", ack["ack_id"]),
                 actor=ack["acked_by"], detail=ack.get("comment") or "",
                 reason=ack.get("via") or "", **fields)


def ack_record(alert_id: str, starts_at: datetime, by: str, comment: str, via: str,
               now: datetime, previous: dict[str, Any] | None) -> dict[str, Any]:
    """An ``ioc.alert_ack.v1`` record; ``first_acked_at`` carries over from an earlier ack of
    the same episode (time to acknowledge counts from the first)."""
    first = now
    if previous is not None and previous["starts_at"] == starts_at:
        first = min(previous.get("first_acked_at") or previous["acked_at"], now)
    return {"ack_id": uuid.uuid4().hex, "alert_id": alert_id, "starts_at": starts_at,
            "acked_by": by, "comment": comment, "acked_at": now, "first_acked_at": first,
            "via": via}


def silence_created(s: Mapping[str, Any]) -> dict[str, Any]:
    return event("silence_created", s["created_at"], stable_id("silence", s["silence_id"],
                                                               "created"),
                 actor=s["created_by"], detail=_silence_detail(s), reason=s["silence_id"])


def silence_expired(s: Mapping[str, Any]) -> dict[str, Any]:
    return event("silence_expired", s["updated_at"],
                 stable_id("silence", s["silence_id"], "expired", ms(s["updated_at"])),
                 actor=s.get("expired_by") or "", detail=_silence_detail(s),
                 reason=s["silence_id"])


def _silence_detail(s: Mapping[str, Any]) -> str:
    text = ", ".join(s["matchers"])
    comment = s.get("comment") or ""
    return f"{text} — {comment}" if comment else text


# -- alert records as JSON (notification payloads) ----------------------------------------------

def alert_to_json(alert: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (ms(v) if k in _TIME_FIELDS and isinstance(v, datetime) else v)
            for k, v in alert.items()}


def alert_from_json(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (from_ms(v) if k in _TIME_FIELDS and isinstance(v, int) else v)
            for k, v in data.items()}


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
